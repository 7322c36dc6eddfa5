//! `cargo xtask bench oauth`: what mcpgate's own tokens cost. Token-endpoint throughput for the
//! refresh grant (rotation on every call), and an authenticated `tools/call` through the proxy
//! with a warm token cache vs a cold one (cache off: one database read per call), so the cost
//! of the token check is visible.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpgate_core::SecretString;
use mcpgate_fixture_upstream::Fixture;
use mcpgate_server::config::UpstreamConfig;
use mcpgate_server::{AppState, Config};
use mcpgate_storage::NewUser;
use serde_json::{Value, json};

use crate::stats::{Samples, Table, fmt_dur, ratio};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub struct Gateway {
    pub base: String,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

async fn gateway(upstream: &str, token_cache_secs: u64) -> anyhow::Result<Gateway> {
    gateway_with(upstream, |c| {
        c.oauth.token_cache_ttl_secs = token_cache_secs
    })
    .await
}

/// mcpgate in this process on SQLite with `demo` → `upstream`, adjusted by `adjust`.
pub async fn gateway_with(
    upstream: &str,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<Gateway> {
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = Config {
        listen: addr,
        public_url: format!("http://{addr}"),
        ..Default::default()
    };
    config.database.url = format!("sqlite://{}", dir.path().join("gw.db").display());
    config.encryption.active_key = Some("k".into());
    config
        .encryption
        .keys
        .insert("k".into(), SecretString::new(KEY));
    config.log.level = "error".into();
    config.upstreams = vec![UpstreamConfig {
        name: "demo".into(),
        url: upstream.into(),
        response_timeout_ms: 10_000,
        idle_timeout_secs: None,
        credentials: Default::default(),
    }];
    // RBAC denies what no role allows: the bench users hold a default role on `demo`.
    config.policy = toml::from_str(
        r#"
        default_role = "bench"
        [[roles]]
        name = "bench"
        grants = [{ effect = "allow", action = "*", upstream = "demo" }]
        "#,
    )?;
    adjust(&mut config);
    let state = AppState::new(config).await?;
    state.store.migrate().await?;
    let serving = state.clone();
    tokio::spawn(mcpgate_server::serve::serve_app(
        serving,
        listener,
        std::future::pending(),
    ));
    Ok(Gateway {
        base: format!("http://{addr}"),
        state,
        _dir: dir,
    })
}

/// A token family for the demo resource, as a code exchange would create it.
pub async fn family(gw: &Gateway, user_id: &str, i: usize) -> anyhow::Result<(String, String)> {
    let t = mcpgate_server::oauth::issue::start_family(
        &gw.state,
        &format!("family-{i}"),
        user_id,
        "bench-client",
        &format!("{}/mcp/demo", gw.base),
        "mcp",
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let refresh = t
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("a code exchange issues a refresh token"))?;
    Ok((t.access_token, refresh))
}

pub async fn run(short: bool) -> anyhow::Result<()> {
    let window = if short {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(8)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(Fixture::default().serve(listener, std::future::pending()));
    let warm = gateway(&upstream, 30).await?;
    let cold = gateway(&upstream, 0).await?;
    let mut users = Vec::new();
    for gw in [&warm, &cold] {
        users.push(
            gw.state
                .store
                .create_user(&NewUser {
                    email: "bench@example.com".into(),
                    ..Default::default()
                })
                .await?
                .id,
        );
    }
    // The client the families belong to (public, registered like DCR would).
    warm.state
        .store
        .upsert_client(&mcpgate_storage::OAuthClient {
            client_id: "bench-client".into(),
            registration: "dcr".into(),
            client_name: "bench".into(),
            redirect_uris: r#"["http://127.0.0.1/cb"]"#.into(),
            token_endpoint_auth_method: "none".into(),
            secret_hash: None,
            metadata: "{}".into(),
            created_at: 0,
            refresh_after: None,
        })
        .await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    println!(
        "\nmethod: in-process mcpgate (SQLite) and the Rust fixture upstream on loopback, closed-loop \
         clients sharing the machine, {window:?} per cell. Refresh: each client rotates its own \
         family (POST /oauth/token, grant_type=refresh_token). tools/call: 2026-07-28 `echo` \
         through /mcp/demo with one access token per client; warm = token cache on (30 s), cold \
         = token cache off (every call reads the token from the database)."
    );

    let table = Table::new(
        "refresh grant (rotation every call)",
        &["concurrency", "refreshes/s", "p50", "p99", "errors"],
    );
    for concurrency in [1usize, 8] {
        let mut tokens = Vec::new();
        for i in 0..concurrency {
            tokens.push(family(&warm, &users[0], 1000 * concurrency + i).await?.1);
        }
        let deadline = Instant::now() + window;
        let started = Instant::now();
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|mut rt| {
                let http = http.clone();
                let url = format!("{}/oauth/token", warm.base);
                tokio::spawn(async move {
                    let mut s = Samples::default();
                    let mut errors = 0u64;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let r = http
                            .post(&url)
                            .form(&[
                                ("grant_type", "refresh_token"),
                                ("refresh_token", rt.as_str()),
                                ("client_id", "bench-client"),
                            ])
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status().is_success() => {
                                let body: Value = r.json().await.unwrap_or_default();
                                rt = body["refresh_token"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned();
                                s.push(t.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    (s, errors)
                })
            })
            .collect();
        let mut all = Samples::default();
        let mut errors = 0;
        for t in tasks {
            let (s, e) = t.await?;
            all.extend(s);
            errors += e;
        }
        let rate = all.len() as f64 / started.elapsed().as_secs_f64();
        table.row(&[
            concurrency.to_string(),
            format!("{rate:.0}"),
            fmt_dur(all.percentile(50.0)),
            fmt_dur(all.percentile(99.0)),
            errors.to_string(),
        ]);
    }

    let table = Table::new(
        "authenticated tools/call: the token check, warm vs cold",
        &[
            "concurrency",
            "cache",
            "calls/s",
            "p50",
            "p99",
            "p50 vs warm",
            "throughput vs warm",
        ],
    );
    for concurrency in [1usize, 16] {
        let mut base = (0.0, Duration::ZERO);
        for (label, gw, user) in [("warm", &warm, &users[0]), ("cold", &cold, &users[1])] {
            let mut access = Vec::new();
            for i in 0..concurrency {
                access.push(Arc::new(
                    family(gw, user, 50_000 + 100 * concurrency + i).await?.0,
                ));
            }
            let (mut s, rate, errors) = calls(&http, &gw.base, &access, window).await;
            anyhow::ensure!(errors == 0, "{errors} failed calls ({label})");
            let p50 = s.percentile(50.0);
            if label == "warm" {
                base = (rate, p50);
            }
            table.row(&[
                concurrency.to_string(),
                label.into(),
                format!("{rate:.0}"),
                fmt_dur(p50),
                fmt_dur(s.percentile(99.0)),
                ratio(p50.as_secs_f64(), base.1.as_secs_f64()),
                ratio(rate, base.0),
            ]);
        }
    }
    Ok(())
}

pub async fn calls(
    http: &reqwest::Client,
    base: &str,
    tokens: &[Arc<String>],
    window: Duration,
) -> (Samples, f64, u64) {
    let deadline = Instant::now() + window;
    let started = Instant::now();
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                       "io.modelcontextprotocol/clientCapabilities": {} });
    let tasks: Vec<_> = tokens
        .iter()
        .cloned()
        .map(|token| {
            let http = http.clone();
            let url = format!("{base}/mcp/demo");
            let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                               "params": { "name": "echo", "arguments": { "text": "x" }, "_meta": meta } });
            tokio::spawn(async move {
                let mut s = Samples::default();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .bearer_auth(token.as_str())
                        .header("accept", "application/json, text/event-stream")
                        .header("mcp-protocol-version", "2026-07-28")
                        .header("mcp-method", "tools/call")
                        .header("mcp-name", "echo")
                        .json(&body)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            s.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (s, errors)
            })
        })
        .collect();
    let mut all = Samples::default();
    let mut errors = 0;
    for t in tasks {
        if let Ok((s, e)) = t.await {
            all.extend(s);
            errors += e;
        }
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (all, rate, errors)
}
