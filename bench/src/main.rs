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
    /// Storage units of work on SQLite and PostgreSQL (issue: storage).
    Storage,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.scenario {
        Scenario::Storage => {
            stats::print_machine("storage", cli.short);
            runtime.block_on(mcpgate_bench::scenarios::storage::run(cli.short))
        }
        Scenario::Harness => {
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
