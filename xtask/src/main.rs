//! `cargo xtask …`: mcpgate's developer commands.

mod bench;
mod deps;
mod dev;
mod fuzz;
mod mcp_software;
mod test;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "mcpgate developer commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway on its embedded default (SQLite, generated dev keys), config in `.dev/`.
    Dev(dev::Args),
    /// Everything CI checks: fmt, clippy, dependency rules, feature builds, all tests.
    Test(test::Args),
    /// Check the crate dependency rules of ARCHITECTURE.md against `cargo metadata`.
    Deps,
    /// Run a benchmark scenario in a release build (`--short` for a quick proof that it runs).
    Bench(bench::Args),
    /// Run the fuzz targets of `fuzz/` (cargo-fuzz on the stable toolchain), 5 min each.
    Fuzz(fuzz::Args),
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Dev(args) => dev::run(args),
        Command::Test(args) => test::run(args),
        Command::Deps => deps::run(),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
