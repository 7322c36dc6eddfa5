//! The real `mcpgate` binary (release), started by a benchmark with a config of its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running mcpgate process, stopped (SIGTERM, then kill) on drop.
pub struct Gateway {
    pub base: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The release binary `cargo xtask bench` built (`MCPGATE_BIN` overrides).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MCPGATE_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/mcpgate")
}

impl Gateway {
    /// Starts mcpgate with `extra` TOML appended to a base config (SQLite in a temp dir,
    /// generated keys, a free loopback port) and waits until it is ready.
    pub async fn start(extra: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let keys = Command::new(binary()).args(["keys", "generate"]).output()?;
        anyhow::ensure!(
            keys.status.success(),
            "mcpgate keys generate failed: is {} built?",
            binary().display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [log]\nlevel = \"error\"\n[database]\nurl = \"sqlite://{}\"\n{extra}\n{}",
            dir.path().join("gw.db").display(),
            String::from_utf8(keys.stdout)?
        );
        let path = dir.path().join("gw.toml");
        std::fs::write(&path, config)?;
        let mut command = Command::new(binary());
        // The bench's own MCPGATE_* variables are not gateway settings.
        for (key, _) in std::env::vars() {
            if key.starts_with("MCPGATE_") {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let gw = Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", gw.base)).send().await
                && r.status().is_success()
            {
                return Ok(gw);
            }
            anyhow::ensure!(Instant::now() < deadline, "mcpgate did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}
