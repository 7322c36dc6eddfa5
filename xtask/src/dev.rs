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

    let password_file = dir.join("admin-password");
    let first_run = !config.exists();
    if first_run {
        std::fs::write(&password_file, random_password()?)?;
        restrict(&password_file)?;
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
             [bootstrap]\n\
             admin_email = \"{ADMIN_EMAIL}\"\n\
             admin_password_file = \"{}\"\n\n\
             {}",
            dir.join("mcpgate.db").display(),
            password_file.display(),
            String::from_utf8_lossy(&keys.stdout)
        );
        fs::write(&config, text)?;
        eprintln!("wrote a dev config with fresh keys to {}", config.display());
    }

    // Ctrl-C reaches the whole process group: mcpgate drains and exits on it; xtask just waits.
    ctrlc::set_handler(|| {}).context("cannot install the Ctrl-C handler")?;
    let admin = if first_run {
        // Shown once, on the run that created it; later runs point at the file.
        format!(
            "{ADMIN_EMAIL} / {}   (saved in .dev/admin-password)",
            fs::read_to_string(&password_file)?.trim()
        )
    } else {
        format!("{ADMIN_EMAIL}   (password in .dev/admin-password)")
    };
    eprintln!(
        "\nmcpgate (dev)\n  gateway      http://127.0.0.1:8080\n  sign in      \
         http://127.0.0.1:8080/login\n  admin        {admin}\n  health       /healthz, \
         /readyz, /metrics\nCtrl-C stops it.\n"
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

const ADMIN_EMAIL: &str = "admin@example.com";

/// 24 random characters from the OS (no crate needed for a dev password).
fn random_password() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// Only the owner may read the password file.
fn restrict(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    let _ = path;
    Ok(())
}
