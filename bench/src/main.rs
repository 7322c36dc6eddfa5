//! The `mcpgate-bench` runner behind `cargo xtask bench`.

use mcpgate_bench::stats;

use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(name = "mcpgate-bench")]
struct Cli {
    scenario: Scenario,
    /// A small load that proves the scenario runs (for CI); figures are rough.
    #[arg(long)]
    short: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    /// Placeholder until the first scenario lands: measures the harness itself.
    Harness,
    /// The MCP proxy: tools/call direct vs through mcpgate at concurrency 1/16/64; SSE first
    /// event.
    Proxy,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.scenario {
        Scenario::Proxy => mcpgate_bench::scenarios::proxy::run(cli.short),
        Scenario::Harness => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            stats::print_machine("harness", cli.short);
            let mut samples = stats::Samples::default();
            runtime.block_on(async {
                for _ in 0..if cli.short { 1_000 } else { 100_000 } {
                    let started = std::time::Instant::now();
                    tokio::task::yield_now().await;
                    samples.push(started.elapsed());
                }
            });
            let table = stats::Table::new("tokio yield_now", &["n", "p50", "p99"]);
            table.row(&[
                samples.len().to_string(),
                stats::fmt_dur(samples.percentile(50.0)),
                stats::fmt_dur(samples.percentile(99.0)),
            ]);
            Ok(())
        }
    }
}
