//! A newcomer's first run: `cargo xtask dev` in a fresh dev folder, then the Python lines it
//! prints — signed in by the example's `--headless` user agent instead of a person — call the
//! demo server's `echo` through mcpgate; Ctrl-C stops everything; a second run does not show
//! the password again.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpgate_tests::fixtures::{python, workspace_path};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const LAST_LINE: &str = "Ctrl-C stops mcpgate and the demo server.";

/// `cargo xtask dev` as a person starts it, in its own process group so the test can press
/// Ctrl-C on the whole group like a terminal does.
struct Dev {
    child: Child,
    group: u32,
    output: Arc<Mutex<Vec<String>>>,
}

/// Whatever happened, nothing of the group outlives the test (mcpgate and the demo server
/// are xtask's children: killing xtask alone would orphan them).
impl Drop for Dev {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.group)])
            .stderr(Stdio::null())
            .status();
    }
}

impl Dev {
    fn start(dir: &Path, port: u16) -> Self {
        let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["xtask", "dev", "--port", &port.to_string(), "--dir"])
            .arg(dir)
            .current_dir(workspace_path(""))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(stderr),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().unwrap().push(line);
                }
            });
        }
        let group = child.id().unwrap();
        Self {
            child,
            group,
            output,
        }
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// The printed block, once it is complete (the first run builds, so allow for that).
    async fn banner(&mut self) -> String {
        for _ in 0..(20 * 60 * 10) {
            let text = self.text();
            if let (Some(start), Some(end)) =
                (text.find("mcpgate is running (dev)"), text.find(LAST_LINE))
            {
                return text[start..end + LAST_LINE.len()].to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cargo xtask dev exited ({status}):\n{}", self.text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cargo xtask dev printed no block:\n{}", self.text());
    }

    /// Ctrl-C, as a terminal sends it: SIGINT to the whole process group.
    async fn interrupt(mut self) -> ExitStatus {
        let group = self.group;
        let sent = std::process::Command::new("kill")
            .args(["-INT", "--", &format!("-{group}")])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("cargo xtask dev did not stop on Ctrl-C")
            .unwrap()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_healthy(base: &str) {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway started by cargo xtask dev never became healthy");
}

fn listening(url: &str) -> bool {
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).is_ok()
}

/// The demo upstream's URL, from the block xtask writes into the config.
fn demo_url(dir: &Path) -> String {
    let config = std::fs::read_to_string(dir.join("mcpgate.toml")).unwrap();
    let table: toml::Table = toml::from_str(&config).unwrap();
    let upstreams = table["upstreams"].as_array().unwrap();
    assert_eq!(upstreams.len(), 1, "{config}");
    assert_eq!(upstreams[0]["name"].as_str(), Some("demo"));
    upstreams[0]["url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn xtask_dev_then_the_printed_python_lines_call_a_demo_tool() {
    let test = "xtask_dev_then_the_printed_python_lines_call_a_demo_tool";
    let Some(python) = python(test).unwrap() else {
        return;
    };
    mcpgate_server::tls::ensure_provider();
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "mcpgate-first-run-{}-{}",
        std::process::id(),
        mcpgate_storage::now_ms()
    ));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let endpoint = format!("{base}/mcp/demo");

    let mut dev = Dev::start(&dir, port);
    let banner = dev.banner().await;
    // "mcpgate is running" is printed only once mcpgate answers on /healthz.
    assert!(listening(&base), "the banner came before mcpgate listened");
    let password = std::fs::read_to_string(dir.join("admin-password"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(password.len() >= 20);
    assert!(
        banner.contains(&format!("Gateway       {base}\n")),
        "{banner}"
    );
    assert!(
        banner.contains("Sign in       admin@example.com"),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("Password      {password}   (shown this once")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("MCP endpoint  {endpoint}")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("--server-url {endpoint}")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("\"url\": \"{endpoint}\"")),
        "{banner}"
    );
    wait_healthy(&base).await;
    let demo = demo_url(&dir);
    assert!(listening(&demo), "the demo server listens at {demo}");

    // The printed lines: the first makes a venv with the SDK (the test uses the one `cargo
    // xtask test` installed, the same pin), the second runs the example. A person signs in
    // in the browser; here the example's --headless user agent submits the same forms.
    let run = banner
        .lines()
        .map(str::trim)
        .find(|l| l.contains("examples/python/connect.py"))
        .unwrap_or_else(|| panic!("no Python line in:\n{banner}"));
    let words: Vec<&str> = run.split_whitespace().collect();
    assert_eq!(words.len(), 3, "{run}");
    assert_eq!(words[1], "examples/python/connect.py");
    assert_eq!(words[2], endpoint);
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new(&python)
            .args(&words[1..])
            .arg("--headless")
            .arg("--password-file")
            .arg(dir.join("admin-password"))
            .current_dir(workspace_path(""))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tools: echo, headers, slow"), "{stdout}");
    assert!(stdout.contains("echo: hello through mcpgate"), "{stdout}");
    // And as a person runs it: the example opens "the browser" (BROWSER names the program
    // Python's webbrowser starts), here headless Chromium with someone at the keyboard who
    // waits for the cursor in the email field, signs in and presses Allow; the browser lands
    // on the example's loopback listener. (It hung now and then when the keys came before
    // autofocus had run; the driver now waits for it, and no read waits for ever.)
    if let Some(chromium) = mcpgate_tests::fixtures::chromium(test).unwrap() {
        let out = tokio::time::timeout(
            Duration::from_secs(300),
            Command::new(&python)
                .args(&words[1..])
                .env(
                    "BROWSER",
                    workspace_path("tests/python/person_at_browser.py"),
                )
                .env("MCPGATE_CHROMIUM", &chromium)
                .env("MCPGATE_SIGNIN_EMAIL", "admin@example.com")
                .env("MCPGATE_SIGNIN_PASSWORD_FILE", dir.join("admin-password"))
                .current_dir(workspace_path(""))
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the browser sign-in took over five minutes")
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("echo: hello through mcpgate"), "{stdout}");
        assert!(
            stderr.contains("browser ended on: Signed in. You can close this tab"),
            "{stderr}"
        );
    }
    // The gateway saw the call and forwarded it to the demo upstream.
    let text = dev.text();
    assert!(
        text.contains("upstream=demo") || text.contains("upstream\u{1b}[0m\u{1b}[2m=\u{1b}[0mdemo"),
        "{text}"
    );
    assert_eq!(
        text.matches(&password).count(),
        1,
        "the password is printed once, in the block, and never logged"
    );

    let status = dev.interrupt().await;
    assert!(status.success(), "{status}");
    assert!(!listening(&base), "mcpgate stopped");
    assert!(!listening(&demo), "the demo server stopped with it");

    // A later run keeps the folder and does not show the password again.
    let mut again = Dev::start(&dir, port);
    let banner = again.banner().await;
    assert!(
        banner.contains(&format!(
            "Password      in {}/admin-password",
            dir.display()
        )),
        "{banner}"
    );
    wait_healthy(&base).await;
    assert!(!again.text().contains(&password), "{}", again.text());
    let status = again.interrupt().await;
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
