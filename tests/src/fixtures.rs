//! Real MCP servers and clients the suites run against: the Rust fixture upstream (in
//! process), and software nobody here wrote — the Python `mcp` SDK and
//! `@modelcontextprotocol/server-everything` — installed by `cargo xtask test` into `.cache/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mcpgate_fixture_upstream::{Fixture, Stats};
use tokio::sync::oneshot;

/// The Rust fixture upstream (`mcp-fixture`) serving in this process on a free port.
pub struct FixtureUpstream {
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    pub stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
}

impl FixtureUpstream {
    pub async fn start() -> anyhow::Result<Self> {
        mcpgate_server::tls::ensure_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fixture = Fixture::default();
        let stats = fixture.stats.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(fixture.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            url: format!("http://{addr}/mcp"),
            stats,
            stop: Some(stop),
        })
    }
}

impl Drop for FixtureUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Where `cargo xtask test` installs the third-party MCP software (`MCPGATE_TEST_CACHE`, else
/// the workspace's `.cache/`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("MCPGATE_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            manifest
                .parent()
                .map(|p| p.join(".cache"))
                .unwrap_or(manifest)
        })
}

/// `Some(path)` when installed. When missing: an error under `cargo xtask test` (which
/// installs it, so missing means broken), a printed SKIPPED line otherwise.
pub fn installed(path: PathBuf, what: &str, test: &str) -> anyhow::Result<Option<PathBuf>> {
    if path.exists() {
        return Ok(Some(path));
    }
    if std::env::var_os("MCPGATE_TEST_CACHE").is_some() {
        anyhow::bail!(
            "{what} is not installed at {} although cargo xtask test should have installed it",
            path.display()
        );
    }
    eprintln!("SKIPPED {test}: {what} is not installed (run `cargo xtask test` once)");
    Ok(None)
}

/// The Python interpreter of the venv that has the `mcp` SDK.
pub fn python(test: &str) -> anyhow::Result<Option<PathBuf>> {
    installed(
        cache_dir().join("venv").join("bin").join("python"),
        "the Python mcp SDK",
        test,
    )
}

/// Runs `tests/python/mcp_client.py URL MODE TOKEN|- TOOL ARGS` and returns its JSON report.
pub async fn python_client(
    python: &std::path::Path,
    url: &str,
    mode: &str,
    token: Option<&str>,
    tool: &str,
    args: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join("mcp_client.py");
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(script)
        .arg(url)
        .arg(mode)
        .arg(token.unwrap_or("-"))
        .arg(tool)
        .arg(args.to_string());
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await??;
    if !out.status.success() {
        anyhow::bail!(
            "python client ({mode}) failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `@modelcontextprotocol/server-everything` in Streamable HTTP mode, as a child process.
pub struct ServerEverything {
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    child: Child,
}

impl ServerEverything {
    pub async fn start(test: &str) -> anyhow::Result<Option<Self>> {
        let Some(entry) = installed(
            cache_dir()
                .join("node")
                .join("node_modules")
                .join("@modelcontextprotocol")
                .join("server-everything")
                .join("dist")
                .join("index.js"),
            "@modelcontextprotocol/server-everything",
            test,
        )?
        else {
            return Ok(None);
        };
        let port = free_port()?;
        let child = Command::new("node")
            .arg(entry)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Self {
            url: format!("http://127.0.0.1:{port}/mcp"),
            child,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Some(server));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("server-everything did not start listening on port {port}")
    }
}

impl Drop for ServerEverything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Runs `tests/python/oauth_flow.py URL MODE EMAIL PASSWORD OPTIONS` — the whole OAuth flow
/// with the Python `mcp` SDK — and returns its JSON report.
pub async fn python_oauth_flow(
    python: &std::path::Path,
    url: &str,
    mode: &str,
    credentials: (&str, &str),
    options: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join("oauth_flow.py");
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(script)
        .arg(url)
        .arg(mode)
        .arg(credentials.0)
        .arg(credentials.1)
        .arg(options.to_string());
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output()).await??;
    if !out.status.success() {
        anyhow::bail!(
            "python OAuth flow ({mode}) failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Headless Chromium for the page tests: `MCPGATE_CHROMIUM`, else `chromium` or
/// `chromium-browser` on `PATH`. When missing: an error under `CI` (which installs it), a
/// printed SKIPPED line otherwise.
pub fn chromium(test: &str) -> anyhow::Result<Option<PathBuf>> {
    let found = std::env::var_os("MCPGATE_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
                .find(|candidate| candidate.is_file())
        });
    if let Some(path) = found {
        return Ok(Some(path));
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if ci {
        anyhow::bail!("Chromium is not installed although CI is set (.ci/run installs it)");
    }
    eprintln!(
        "SKIPPED {test}: Chromium is not installed (Debian: apt-get install chromium; or set MCPGATE_CHROMIUM)"
    );
    Ok(None)
}

/// Where `name` lives in the workspace.
pub fn workspace_path(name: &str) -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(|p| p.join(name)).unwrap_or(manifest)
}
