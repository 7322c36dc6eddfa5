//! `cargo xtask dev`: a running gateway with no config to write.

use std::fs;
use std::process::Command;

use anyhow::{Context, bail};

use crate::util::{cargo, root, step, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Build and run in release mode.
    #[arg(long)]
    release: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = root().join(".dev");
    fs::create_dir_all(&dir)?;
    let config = dir.join("mcpgate.toml");

    let mut build = cargo();
    build.args(["build", "-p", "mcpgate-server"]);
    if args.release {
        build.arg("--release");
    }
    step(&mut build, "build mcpgate")?;
    let binary = target_dir()
        .join(if args.release { "release" } else { "debug" })
        .join("mcpgate");

    if !config.exists() {
        let keys = Command::new(&binary)
            .args(["keys", "generate"])
            .output()
            .context("cannot run mcpgate keys generate")?;
        if !keys.status.success() {
            bail!("mcpgate keys generate failed");
        }
        let text = format!(
            "# Written by `cargo xtask dev` on first run; later runs reuse it. Delete this folder\n\
             # to start over. Not for production: see mcpgate.example.toml.\n\
             listen = \"127.0.0.1:8080\"\n\
             public_url = \"http://127.0.0.1:8080\"\n\n\
             [database]\n\
             url = \"sqlite://{}\"\n\n\
             {}",
            dir.join("mcpgate.db").display(),
            String::from_utf8_lossy(&keys.stdout)
        );
        fs::write(&config, text)?;
        eprintln!("wrote a dev config with fresh keys to {}", config.display());
    }

    // Ctrl-C reaches the whole process group: mcpgate drains and exits on it; xtask just waits.
    ctrlc::set_handler(|| {}).context("cannot install the Ctrl-C handler")?;
    eprintln!(
        "\nmcpgate (dev) on http://127.0.0.1:8080 — health: /healthz, readiness: /readyz, \
         metrics: /metrics. Ctrl-C stops it.\n"
    );
    let status = Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .status()
        .context("cannot start mcpgate")?;
    if !status.success() {
        bail!("mcpgate exited with {status}");
    }
    Ok(())
}
