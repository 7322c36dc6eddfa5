use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mcpgate_server::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(mcpgate_server::cli::run(cli))
}
