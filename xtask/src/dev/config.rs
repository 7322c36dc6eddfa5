//! The dev folder: a config with generated keys and a bootstrap admin, written once and kept,
//! and the demo upstream block, rewritten on every run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub const ADMIN_EMAIL: &str = "admin@example.com";

/// Marks the part of the config that `cargo xtask dev` owns. Folders from before the demo
/// upstream existed have no block: it is appended.
const DEMO_BEGIN: &str =
    "# >>> demo upstream: rewritten by `cargo xtask dev` on every run (--no-demo removes it)";
const DEMO_END: &str = "# <<< demo upstream";

/// What a run needs to know about the dev folder.
pub struct DevConfig {
    pub path: PathBuf,
    pub password_file: PathBuf,
    /// `public_url` from the config (the gateway's base URL, no trailing slash).
    pub base_url: String,
    /// Whether this run created the folder's config (and so the admin password).
    pub first_run: bool,
}

/// Writes `dir/mcpgate.toml` on the first run (keys from `mcpgate keys generate`, a random
/// admin password in `dir/admin-password`); later runs keep it as it is.
pub fn ensure(dir: &Path, mcpgate: &Path, port: u16) -> anyhow::Result<DevConfig> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("mcpgate.toml");
    let password_file = dir.join("admin-password");
    let first_run = !path.exists();
    if first_run {
        fs::write(&password_file, random_password()?)?;
        restrict(&password_file)?;
        let keys = Command::new(mcpgate)
            .args(["keys", "generate"])
            .output()
            .context("cannot run mcpgate keys generate")?;
        if !keys.status.success() {
            bail!("mcpgate keys generate failed");
        }
        let text = format!(
            "# Written by `cargo xtask dev` on first run; later runs reuse it. Delete this folder\n\
             # to start over. Not for production: see mcpgate.example.toml.\n\
             listen = \"127.0.0.1:{port}\"\n\
             public_url = \"http://127.0.0.1:{port}\"\n\n\
             [database]\n\
             url = \"sqlite://{}\"\n\n\
             [bootstrap]\n\
             admin_email = \"{ADMIN_EMAIL}\"\n\
             admin_password_file = \"{}\"\n\n\
             # The MCP Inspector's page (`npx @modelcontextprotocol/inspector`) calls /mcp/* from\n\
             # its own origin.\n\
             [proxy]\n\
             allowed_origins = [\"http://localhost:6274\", \"http://127.0.0.1:6274\"]\n\n\
             {}",
            dir.join("mcpgate.db").display(),
            password_file.display(),
            String::from_utf8_lossy(&keys.stdout)
        );
        fs::write(&path, text)?;
        restrict(&path)?;
    }
    let text = fs::read_to_string(&path)?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let base_url = table
        .get("public_url")
        .and_then(toml::Value::as_str)
        .unwrap_or("http://127.0.0.1:8080")
        .trim_end_matches('/')
        .to_owned();
    Ok(DevConfig {
        path,
        password_file,
        base_url,
        first_run,
    })
}

/// Puts the demo upstream (at `url`) into the config, or takes it out (`None`), leaving
/// everything else in the file as the person left it.
pub fn set_demo_upstream(config: &Path, url: Option<&str>) -> anyhow::Result<()> {
    let text = fs::read_to_string(config)?;
    let mut out = without_demo_block(&text);
    if let Some(url) = url {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "\n{DEMO_BEGIN}\n[[upstreams]]\nname = \"demo\"\nurl = \"{url}\"\n{DEMO_END}\n"
        ));
    }
    if out != text {
        fs::write(config, out)?;
    }
    Ok(())
}

fn without_demo_block(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == DEMO_BEGIN {
            inside = true;
        } else if inside && trimmed == DEMO_END {
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    // The blank line written before the block goes with it.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

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

/// Only the owner may read the file (it holds a password or keys).
fn restrict(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "listen = \"127.0.0.1:8080\"\n\n[encryption]\nactive_key = \"k\"\n";

    #[test]
    fn demo_block_is_added_to_an_old_config_replaced_and_removed() {
        let dir = std::env::temp_dir().join(format!("xtask-dev-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let config = dir.join("mcpgate.toml");
        fs::write(&config, OLD).unwrap();

        set_demo_upstream(&config, Some("http://127.0.0.1:1111/mcp")).unwrap();
        set_demo_upstream(&config, Some("http://127.0.0.1:2222/mcp")).unwrap();
        let text = fs::read_to_string(&config).unwrap();
        assert!(text.starts_with(OLD), "{text}");
        assert_eq!(text.matches("[[upstreams]]").count(), 1, "{text}");
        assert!(
            text.contains("url = \"http://127.0.0.1:2222/mcp\""),
            "{text}"
        );
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(table["upstreams"][0]["name"].as_str(), Some("demo"));

        set_demo_upstream(&config, None).unwrap();
        assert_eq!(fs::read_to_string(&config).unwrap(), OLD);
        fs::remove_dir_all(&dir).unwrap();
    }
}
