//! The `mcpgate-bench` runner behind `cargo xtask bench`.

use mcpgate_bench::{scenarios, stats};

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
    /// Password hashing on the bounded pool, runtime latency while it is saturated, sealing,
    /// tokens.
    Crypto,
    /// Upstream credentials: time each kind adds to a request, SigV4 signing, the runtime's
    /// ticks while an AWS credential chain is slow.
    Credentials,
    /// Identity-provider calls per 1000 tool calls (cold, warm, across an expiry).
    Identity,
    /// Sign-in throughput and an unrelated request during a sign-in flood (real binary).
    Login,
    /// OAuth: refresh-grant throughput; tools/call with a warm vs a cold token cache.
    Oauth,
    /// The MCP proxy: tools/call direct vs through mcpgate at concurrency 1/16/64; SSE first
    /// event.
    Proxy,
    /// Storage units of work on SQLite and PostgreSQL: point read and small write.
    Storage,
    /// RBAC on every call under load on PostgreSQL: 1000 clients, a 1–2 s upstream,
    /// pg_stat_activity sampled every second (needs MCPGATE_BENCH_DATABASE_URL).
    Rbac,
    /// RBAC decisions per second for 50 roles × 20 grants and a user with 5 roles.
    RbacEval,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built without a default TLS provider: install ring before any client.
    mcpgate_server::tls::ensure_provider();
    match cli.scenario {
        Scenario::Crypto => scenarios::crypto::run(&runtime()?, cli.short),
        Scenario::Identity => {
            stats::print_machine("identity", cli.short);
            runtime()?.block_on(scenarios::identity::run(cli.short))
        }
        Scenario::Login => {
            stats::print_machine("login", cli.short);
            runtime()?.block_on(scenarios::login::run(cli.short))
        }
        Scenario::Oauth => {
            stats::print_machine("oauth", cli.short);
            runtime()?.block_on(scenarios::oauth::run(cli.short))
        }
        // Builds its own runtimes (one per side, so their threads can be measured apart).
        Scenario::Proxy => scenarios::proxy::run(cli.short),
        Scenario::Credentials => {
            stats::print_machine("credentials", cli.short);
            runtime()?.block_on(scenarios::credentials::run(cli.short))
        }
        // Builds its own runtimes (fixture, gateway, load).
        Scenario::Rbac => scenarios::rbac_load::run(cli.short),
        Scenario::RbacEval => scenarios::rbac::run(cli.short),
        Scenario::Storage => {
            stats::print_machine("storage", cli.short);
            runtime()?.block_on(scenarios::storage::run(cli.short))
        }
    }
}
