//! `cargo xtask test`: what CI runs, in the order that fails fastest.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::util::{cargo, root, step};

/// The PostgreSQL the suites use when reachable (override with `MCPGATE_TEST_DATABASE_URL`).
pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Each provider feature must build alone, and so must none of them.
const PROVIDER_FEATURES: &[&str] = &[
    "oidc",
    "keycloak",
    "google",
    "github",
    "atlassian",
    "salesforce",
];

#[derive(clap::Args)]
pub struct Args {
    /// Skip fmt, clippy, the dependency check and the feature builds: only run the tests.
    #[arg(long)]
    quick: bool,
    /// Also run each fuzz target of `fuzz/` this many seconds after the tests. Off by default:
    /// the instrumented build of the server alone takes longer than the whole budget on a
    /// clean clone. The server's tests replay the committed corpora either way.
    #[arg(long, default_value_t = 0)]
    fuzz_secs: u64,
    /// Extra arguments for `cargo nextest run` (e.g. a test filter).
    #[arg(trailing_var_arg = true)]
    nextest: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    if !args.quick {
        step(
            cargo().args(["fmt", "--all", "--", "--check"]),
            "cargo fmt --check",
        )?;
        step(
            cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
            "cargo clippy -D warnings",
        )?;
        crate::deps::run()?;
        supply_chain()?;
        feature_builds()?;
    }

    let pg = std::env::var("MCPGATE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG.into());
    let pg_reachable = reachable(&pg);
    if !pg_reachable {
        if ci {
            bail!(
                "PostgreSQL is not reachable at {pg} and CI is set: the PostgreSQL suites must run in CI"
            );
        }
        eprintln!(
            "\n!! PostgreSQL is not reachable at {pg}: the PostgreSQL suites are SKIPPED \
             (they run in CI)."
        );
    }

    ensure_nextest()?;
    crate::mcp_software::ensure()?;
    let mut nextest = cargo();
    nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    nextest.args(&args.nextest);
    if pg_reachable {
        nextest.env("MCPGATE_TEST_DATABASE_URL", &pg);
    } else {
        nextest.env_remove("MCPGATE_TEST_DATABASE_URL");
    }
    nextest.env("MCPGATE_TEST_CACHE", root().join(".cache"));
    step(&mut nextest, "cargo nextest run --workspace")?;
    if !args.quick && args.fuzz_secs > 0 {
        crate::fuzz::fuzz(crate::fuzz::TARGETS, args.fuzz_secs)?;
    }
    Ok(())
}

fn feature_builds() -> anyhow::Result<()> {
    step(
        cargo().args([
            "check",
            "-p",
            "mcpgate-server",
            "--no-default-features",
            "--quiet",
        ]),
        "mcpgate-server builds with no provider",
    )?;
    for feature in PROVIDER_FEATURES {
        step(
            cargo().args([
                "check",
                "-p",
                "mcpgate-server",
                "--no-default-features",
                "--features",
                feature,
                "--quiet",
            ]),
            &format!("mcpgate-server builds with only `{feature}`"),
        )?;
    }
    Ok(())
}

/// cargo-deny (`deny.toml`): licences, bans and sources always; advisories against the
/// RustSec database, fetched when the network reaches it, else the local copy from an earlier
/// fetch (the step says so), else skipped with a notice. Installed like nextest if missing.
fn supply_chain() -> anyhow::Result<()> {
    let present = cargo()
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        step(
            cargo().args(["install", "cargo-deny", "--locked"]),
            "install cargo-deny",
        )?;
    }
    step(
        cargo().args(["deny", "--offline", "check", "bans", "licenses", "sources"]),
        "cargo deny check bans licenses sources",
    )?;
    let fetched = cargo()
        .args(["deny", "fetch", "db"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let local = cargo_home().join("advisory-dbs");
    let have_local = std::fs::read_dir(&local).is_ok_and(|mut d| d.next().is_some());
    if fetched {
        step(
            cargo().args(["deny", "--offline", "check", "advisories"]),
            "cargo deny check advisories",
        )
    } else if have_local {
        eprintln!(
            "\n!! The advisory database could not be fetched: checking against the local copy \
             in {} (it may be out of date).",
            local.display()
        );
        step(
            cargo().args(["deny", "--offline", "check", "advisories"]),
            "cargo deny check advisories (local database)",
        )
    } else {
        eprintln!(
            "\n!! The advisory database cannot be fetched and there is no local copy: \
             advisories are NOT checked."
        );
        Ok(())
    }
}

/// Where cargo-deny keeps its advisory databases: `$CARGO_HOME/advisory-dbs`.
fn cargo_home() -> std::path::PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
}

fn ensure_nextest() -> anyhow::Result<()> {
    let present = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        step(
            cargo().args(["install", "cargo-nextest", "--locked"]),
            "install cargo-nextest",
        )?;
    }
    Ok(())
}

/// Whether something accepts TCP connections at the URL's host and port.
fn reachable(url: &str) -> bool {
    let Some(rest) = url.split("://").nth(1) else {
        return false;
    };
    let host_port = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .split('/')
        .next()
        .unwrap_or("");
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_postgres_is_detected() {
        // Port 1 on loopback is never a PostgreSQL server.
        assert!(!reachable("postgres://postgres@127.0.0.1:1/postgres"));
        assert!(!reachable("not a url"));
    }
}
