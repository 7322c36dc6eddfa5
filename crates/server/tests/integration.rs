//! The `mcpgate` binary as an operator uses it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its message"
)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mcpgate");

fn mcpgate(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    // The harness's own variables must not leak into the gateway's settings.
    for (key, _) in std::env::vars() {
        if key.starts_with("MCPGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn temp_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::tempdir()
}

#[test]
fn check_config_reports_all_three_mistakes_with_key_paths() -> anyhow::Result<()> {
    let dir = temp_dir()?;
    std::fs::write(
        dir.path().join("bad.toml"),
        r#"
public_url = "http://gateway.example.com"
[encryption]
active_key = "k1"
keys = { k1 = "dG9vIHNob3J0" }
[[providers]]
id = "corp"
kind = "myspace"
client_id = "x"
"#,
    )?;
    let out = mcpgate(dir.path())
        .args(["--config", "bad.toml", "check-config"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr)?;
    assert!(stderr.contains("has 3 problems"), "{stderr}");
    for path in ["public_url:", "encryption.keys.k1:", "providers[0].kind:"] {
        assert!(stderr.contains(path), "missing {path} in:\n{stderr}");
    }
    Ok(())
}

#[test]
fn generated_keys_paste_into_a_config_and_stay_redacted() -> anyhow::Result<()> {
    let dir = temp_dir()?;
    let keys = mcpgate(dir.path()).args(["keys", "generate"]).output()?;
    assert!(keys.status.success());
    let ring = String::from_utf8(keys.stdout)?;
    let config = format!("[database]\nurl = \"sqlite://gw.db\"\n\n{ring}");
    std::fs::write(dir.path().join("ok.toml"), config)?;
    let out = mcpgate(dir.path())
        .args(["--config", "ok.toml", "check-config"])
        .output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = ring
        .lines()
        .rev()
        .find_map(|l| l.split('"').nth(1))
        .unwrap_or_default();
    assert_eq!(key.len(), 44, "a base64 key of 32 bytes");
    assert!(!stdout.contains(key), "the key leaked:\n{stdout}");
    assert!(stdout.contains("[redacted]"));
    Ok(())
}

#[test]
fn environment_overrides_reach_the_binary() -> anyhow::Result<()> {
    let dir = temp_dir()?;
    let keys = mcpgate(dir.path()).args(["keys", "generate"]).output()?;
    std::fs::write(dir.path().join("ok.toml"), keys.stdout)?;
    let out = mcpgate(dir.path())
        .args(["check-config"])
        .env("MCPGATE_CONFIG", "ok.toml")
        .env("MCPGATE_PUBLIC_URL", "https://gw.example.com")
        .env(
            "MCPGATE_DATABASE__URL",
            "postgres://mcpgate@db.internal:5432/mcpgate",
        )
        .output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("public_url = \"https://gw.example.com\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("postgres://mcpgate@db.internal:5432/mcpgate"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn serve_migrates_answers_and_stops_cleanly_on_sigterm() -> anyhow::Result<()> {
    let dir = temp_dir()?;
    let keys = mcpgate(dir.path()).args(["keys", "generate"]).output()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite://data/gw.db\"\n\n{}",
        String::from_utf8(keys.stdout)?
    );
    std::fs::write(dir.path().join("gw.toml"), config)?;
    let mut child = mcpgate(dir.path())
        .args(["--config", "gw.toml", "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;

    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        if let Ok(status) = http_status(port, "/readyz") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("mcpgate did not start");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready, 200);
    assert!(
        dir.path().join("data/gw.db").exists(),
        "SQLite file created"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait()? {
            break exit;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            anyhow::bail!("mcpgate did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut stderr)?;
    }
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    Ok(())
}

/// A minimal HTTP/1.1 GET, so this test needs no client library.
fn http_status(port: u16, path: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))
}
