//! `cargo xtask dev`: a running gateway with a demo MCP server behind it and no config to
//! write.

mod banner;
pub mod config;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::util::{cargo, root, step, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Build and run in release mode.
    #[arg(long)]
    release: bool,
    /// Do not start the demo MCP server (for people who bring their own `[[upstreams]]`).
    #[arg(long)]
    no_demo: bool,
    /// The gateway's port on 127.0.0.1, written into the config when the folder is created.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The dev folder: config, database and admin password.
    #[arg(long, default_value = ".dev")]
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        root().join(&args.dir)
    };

    // Always both packages, so `--no-demo` reuses the same build (cargo unifies features
    // over the packages it builds: a different set would rebuild much of the tree).
    let mut build = cargo();
    build.args([
        "build",
        "-p",
        "mcpgate-server",
        "-p",
        "mcpgate-fixture-upstream",
    ]);
    if args.release {
        build.arg("--release");
    }
    step(&mut build, "build mcpgate and the demo MCP server")?;
    let bin = target_dir().join(if args.release { "release" } else { "debug" });

    let dev = config::ensure(&dir, &bin.join("mcpgate"), args.port)?;
    if dev.first_run {
        eprintln!(
            "wrote a dev config with fresh keys to {}",
            dev.path.display()
        );
    }

    // Ctrl-C reaches the whole process group: mcpgate drains and exits on it, and so does the
    // demo server; xtask just waits for both.
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    let demo = if args.no_demo {
        config::set_demo_upstream(&dev.path, None)?;
        None
    } else {
        let demo = Demo::start(&bin.join("mcp-fixture"))?;
        config::set_demo_upstream(&dev.path, Some(&demo.url))?;
        Some(demo)
    };

    let password = if dev.first_run {
        Some(
            std::fs::read_to_string(&dev.password_file)?
                .trim()
                .to_owned(),
        )
    } else {
        None
    };
    let shown_dir = shown(&args.dir);
    // The banner says "running": only once mcpgate answers.
    let mut child = Command::new(bin.join("mcpgate"))
        .arg("--config")
        .arg(&dev.path)
        .arg("serve")
        .spawn()
        .context("cannot start mcpgate")?;
    if let Err(e) = wait_healthy(&dev.base_url, &mut child) {
        let _ = child.kill();
        let _ = child.wait();
        drop(demo);
        return Err(e);
    }
    let text = banner::Banner {
        base_url: &dev.base_url,
        admin_email: config::ADMIN_EMAIL,
        new_password: password.as_deref(),
        dir: &shown_dir,
        demo: demo.is_some(),
    }
    .render();
    eprintln!("\n{text}");

    let status = child.wait().context("cannot wait for mcpgate")?;
    drop(demo);
    if !status.success() {
        bail!("mcpgate exited with {status}");
    }
    Ok(())
}

/// Waits until `GET {base_url}/healthz` answers 200 (a plain HTTP/1.1 request on loopback),
/// or fails if mcpgate exits first or does not answer within two minutes (first start of a
/// debug build migrates the database).
fn wait_healthy(base_url: &str, child: &mut Child) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let authority = base_url
        .strip_prefix("http://")
        .context("the dev gateway's public_url is not http://")?
        .trim_end_matches('/')
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("mcpgate exited with {status} before it answered on /healthz");
        }
        let answered = std::net::TcpStream::connect(&authority)
            .ok()
            .and_then(|mut stream| {
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                write!(
                    stream,
                    "GET /healthz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
                )
                .ok()?;
                let mut head = [0u8; 12];
                stream.read_exact(&mut head).ok()?;
                Some(head.starts_with(b"HTTP/1.1 200"))
            })
            .unwrap_or(false);
        if answered {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("mcpgate did not answer on {base_url}/healthz within two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The dev folder as the person typed it (or `.dev`), so printed commands can be pasted.
fn shown(dir: &Path) -> String {
    dir.display().to_string().trim_end_matches('/').to_owned()
}

/// Set once Ctrl-C arrived (the children got it too).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The demo upstream: `mcp-fixture` on a free loopback port, stopped with xtask.
struct Demo {
    url: String,
    child: Child,
}

impl Demo {
    fn start(binary: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the demo MCP server (mcp-fixture)")?;
        let Some(stdout) = child.stdout.take() else {
            bail!("the demo MCP server has no stdout");
        };
        let mut lines = BufReader::new(stdout).lines();
        // Its first line names the port it chose: `listening on http://127.0.0.1:PORT/mcp`.
        let url = match lines.next() {
            Some(Ok(line)) => line.strip_prefix("listening on ").map(str::to_owned),
            _ => None,
        };
        let Some(url) = url else {
            let _ = child.kill();
            bail!("the demo MCP server did not say where it listens");
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { url, child })
    }
}

impl Drop for Demo {
    /// After Ctrl-C the demo server is already stopping (given a few seconds); if mcpgate
    /// ended some other way, it is stopped at once so nothing is left behind.
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while INTERRUPTED.load(Ordering::SeqCst) && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
