//! `cargo xtask bench <scenario>`: the release-built `mcpgate-bench` runner.

use crate::util::{cargo, step};

#[derive(clap::Args)]
pub struct Args {
    /// The scenario (`cargo xtask bench --help-scenarios` lists them via the runner's --help).
    scenario: String,
    /// Small load: proves the scenario runs; figures are rough.
    #[arg(long)]
    short: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Scenarios that drive the real binary need its release build.
    step(
        cargo().args(["build", "--release", "--quiet", "-p", "mcpgate-server"]),
        "build mcpgate (release)",
    )?;
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--quiet", "-p", "mcpgate-bench", "--"]);
    // Scenarios with third-party fixtures find them where `cargo xtask test` installs them.
    if std::env::var_os("MCPGATE_TEST_CACHE").is_none() {
        cmd.env("MCPGATE_TEST_CACHE", crate::util::root().join(".cache"));
    }
    // Scenarios on PostgreSQL use the same server as the tests (and its default).
    if std::env::var_os("MCPGATE_BENCH_DATABASE_URL").is_none()
        && std::env::var_os("MCPGATE_TEST_DATABASE_URL").is_none()
    {
        cmd.env("MCPGATE_TEST_DATABASE_URL", crate::test::DEFAULT_PG);
    }
    cmd.arg(&args.scenario);
    if args.short {
        cmd.arg("--short");
    }
    step(&mut cmd, &format!("bench {}", args.scenario))
}
