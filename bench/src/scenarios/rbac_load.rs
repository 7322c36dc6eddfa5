//! `cargo xtask bench rbac`: RBAC on every call under sustained load, on PostgreSQL.
//!
//! 1000 closed-loop clients call an allowed tool through mcpgate; the upstream (the fixture's
//! `slow` tool) takes 1–2 s per call. Every call is decided on cached grants (100 users, each
//! allowed through a team role) and audited; every 10 s a role changes, which bumps the
//! policy version, so every user's grants are read again mid-load. A sampler reads
//! `pg_stat_activity` every second for mcpgate's connections. The claim under test: no
//! connection is held across the upstream call, so nothing sits `idle in transaction` and
//! throughput does not decay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use mcpgate_storage::{NewUser, Store, StoreOptions, StoredGrant};
use serde_json::json;
use tokio::runtime::Runtime;

use crate::stats::{self, Samples, Table, fmt_dur};

const CLIENTS: usize = 1000;
const USERS: usize = 100;

struct BenchAuth;

#[async_trait::async_trait]
impl mcpgate_server::auth::Authenticator for BenchAuth {
    async fn authenticate(
        &self,
        token: &str,
        resource: &str,
    ) -> Result<mcpgate_core::Principal, mcpgate_server::auth::AuthError> {
        match token.strip_prefix("bench-") {
            Some(user) => Ok(mcpgate_core::Principal {
                user_id: user.to_owned(),
                client_id: "bench".into(),
                scopes: vec!["mcp".into()],
                resource: resource.to_owned(),
            }),
            None => Err(mcpgate_server::auth::AuthError::InvalidToken("no".into())),
        }
    }
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// What the sampler saw, second by second.
#[derive(Default)]
struct Sampled {
    seconds: u64,
    max_connections: usize,
    max_idle_in_tx: usize,
    oldest_idle_in_tx_ms: i64,
    idle_in_tx_over_1s: u64,
    max_rss_kib: u64,
}

pub fn run(short: bool) -> anyhow::Result<()> {
    stats::print_machine("rbac", short);
    let admin_url = std::env::var("MCPGATE_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var(mcpgate_storage::testing::ENV))
        .context(
            "the rbac bench runs on PostgreSQL: set MCPGATE_BENCH_DATABASE_URL (or \
             MCPGATE_TEST_DATABASE_URL) to a server it may create a database on",
        )?;
    let (duration, window) = if short {
        (Duration::from_secs(20), Duration::from_secs(5))
    } else {
        (Duration::from_secs(300), Duration::from_secs(60))
    };
    let pool_size = 8;

    let upstream_rt = runtime("fixture", 1)?;
    let gateway_rt = runtime("mcpgate", 2)?;
    let client_rt = runtime("load", 1)?;

    let db = gateway_rt
        .block_on(mcpgate_storage::testing::TempPostgres::create_at_url(
            &admin_url,
        ))
        .context("create the bench database")?;

    // The fixture upstream.
    let listener = upstream_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let upstream_url = format!("http://{}/mcp", listener.local_addr()?);
    upstream_rt.spawn(
        mcpgate_fixture_upstream::Fixture::default().serve(listener, std::future::pending()),
    );

    // Users, a team and its role, in the database.
    let store = gateway_rt.block_on(Store::connect(&StoreOptions::new(&db.url)))?;
    gateway_rt
        .block_on(async {
            store.migrate().await?;
            let allow = |target: &str| StoredGrant {
                effect: "allow".into(),
                action: "tools/call".into(),
                upstream: "fx".into(),
                target: target.into(),
            };
            store.put_role("caller", "bench", &[allow("slow")]).await?;
            store.create_team("bench").await?;
            store.add_team_role("bench", "caller").await?;
            let mut ids = Vec::with_capacity(USERS);
            for i in 0..USERS {
                let user = store
                    .create_user(&NewUser {
                        email: format!("user{i}@bench.invalid"),
                        ..Default::default()
                    })
                    .await?;
                store.add_team_member("bench", &user.id).await?;
                ids.push(user.id);
            }
            anyhow::Ok(ids)
        })
        .map(|ids| -> anyhow::Result<()> {
            // mcpgate in front of the fixture.
            let listener = gateway_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
            let addr = listener.local_addr()?;
            let mut config = mcpgate_server::Config {
                listen: addr,
                public_url: format!("http://{addr}"),
                ..Default::default()
            };
            config.database.url = db.url.clone();
            config.database.max_connections = pool_size;
            config.encryption.active_key = Some("bench".into());
            config.encryption.keys.insert(
                "bench".into(),
                mcpgate_core::SecretString::new(mcpgate_crypto::keys::generate_key_b64()?),
            );
            config.http.request_timeout_secs = 30;
            config
                .upstreams
                .push(mcpgate_server::config::UpstreamConfig {
                    name: "fx".into(),
                    url: upstream_url.clone(),
                    response_timeout_ms: 10_000,
                    idle_timeout_secs: None,
                    credentials: Default::default(),
                });
            config
                .validate()
                .map_err(|e| anyhow::anyhow!("bench config: {e:?}"))?;
            let state = gateway_rt
                .block_on(mcpgate_server::AppState::new(config))
                .context("mcpgate state")?
                .with_authenticator(Arc::new(BenchAuth));
            let gw_store = state.store.clone();
            let audit = state.audit.clone();
            gateway_rt.spawn(mcpgate_server::serve::serve_app(
                state,
                listener,
                std::future::pending(),
            ));
            let url = format!("http://{addr}/mcp/fx");

            println!(
                "\nmethod: {CLIENTS} closed-loop clients (100 users, allowed through a team role) \
             call `tools/call slow` (2026-07-28; the fixture holds each call 1–2 s, then \
             answers over SSE) through mcpgate for {} s; a role changes every 10 s (policy \
             version bump, NOTIFY, every user's grants re-read); every decision audited. \
             PostgreSQL, mcpgate pool of {pool_size}. A sampler reads pg_stat_activity every \
             second (application_name = 'mcpgate'). Fixture, mcpgate and load generator in \
             one process on separate runtimes (1, 2, 1 threads): RSS is the process's.",
                duration.as_secs()
            );

            let rss_start = rss_kib();
            let windows = (duration.as_secs() / window.as_secs()) as usize;
            let counts: Arc<Vec<AtomicU64>> =
                Arc::new((0..windows).map(|_| AtomicU64::new(0)).collect());
            let errors = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let end = started + duration;

            // The sampler, on the client runtime, with a store of its own.
            let sampler_store = client_rt.block_on(Store::connect(&StoreOptions::new(&db.url)))?;
            let sampler = client_rt.spawn(async move {
                let mut s = Sampled::default();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                while Instant::now() < end {
                    tick.tick().await;
                    if let Ok(rows) = sampler_store.connection_activity("mcpgate").await {
                        let idle_tx: Vec<i64> = rows
                            .iter()
                            .filter(|r| r.state.as_deref() == Some("idle in transaction"))
                            .map(|r| r.in_state_ms)
                            .collect();
                        s.max_connections = s.max_connections.max(rows.len());
                        s.max_idle_in_tx = s.max_idle_in_tx.max(idle_tx.len());
                        let oldest = idle_tx.iter().copied().max().unwrap_or(0);
                        s.oldest_idle_in_tx_ms = s.oldest_idle_in_tx_ms.max(oldest);
                        s.idle_in_tx_over_1s +=
                            idle_tx.iter().filter(|ms| **ms > 1000).count() as u64;
                    }
                    s.max_rss_kib = s.max_rss_kib.max(rss_kib());
                    s.seconds += 1;
                }
                s
            });

            // Role changes every 10 s, through the store (as another replica's admin would).
            let changer_store = store.clone();
            let changer = client_rt.spawn(async move {
                let mut n = 0u64;
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                tick.tick().await;
                while Instant::now() < end {
                    tick.tick().await;
                    let grants = [StoredGrant {
                        effect: "allow".into(),
                        action: "tools/call".into(),
                        upstream: "fx".into(),
                        target: format!("other-{n}"),
                    }];
                    if changer_store
                        .put_role("churn", "bench", &grants)
                        .await
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                n
            });

            let http = reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(CLIENTS)
                .build()?;
            let ids = Arc::new(ids);
            let workers: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let (http, url, counts, errors, ids) = (
                        http.clone(),
                        url.clone(),
                        counts.clone(),
                        errors.clone(),
                        ids.clone(),
                    );
                    client_rt.spawn(async move {
                    let token = format!("bench-{}", ids[c % USERS]);
                    let mut samples = Samples::default();
                    let mut i = c as u64;
                    // Spread the start over a second, as clients arriving.
                    tokio::time::sleep(Duration::from_millis((c as u64 * 997) % 1000)).await;
                    while Instant::now() < end {
                        // 1000–2000 ms, varied per call.
                        let hold = 1000 + (i * 7919) % 1001;
                        i += CLIENTS as u64;
                        let body = json!({"jsonrpc":"2.0","id":i,"method":"tools/call","params":{
                            "name":"slow","arguments":{"count":1,"interval_ms":hold},
                            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
                                     "io.modelcontextprotocol/clientCapabilities":{}}}});
                        let t0 = Instant::now();
                        let ok = match http
                            .post(&url)
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .header("accept", "application/json, text/event-stream")
                            .header("mcp-protocol-version", "2026-07-28")
                            .header("mcp-method", "tools/call")
                            .header("mcp-name", "slow")
                            .body(body.to_string())
                            .send()
                            .await
                        {
                            Ok(r) if r.status().is_success() => r
                                .text()
                                .await
                                .is_ok_and(|t| t.contains("\"text\":\"done\"")),
                            _ => false,
                        };
                        let at = t0.saturating_duration_since(started);
                        if ok {
                            samples.push(t0.elapsed());
                            let w = (at.as_secs() / window.as_secs()) as usize;
                            if let Some(slot) = counts.get(w) {
                                slot.fetch_add(1, Ordering::Relaxed);
                            }
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    samples
                })
                })
                .collect();
            let mut latency = Samples::default();
            for w in workers {
                latency.extend(client_rt.block_on(w)?);
            }
            let sampled = client_rt.block_on(sampler)?;
            let changes = client_rt.block_on(changer)?;
            let checkout = gw_store.checkout_stats();
            let rss_end = rss_kib();
            // Let the audit writer catch up before counting.
            std::thread::sleep(Duration::from_secs(2));

            let per_window: Vec<f64> = counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed) as f64 / window.as_secs_f64())
                .collect();
            let unit = if short { "5 s" } else { "minute" };
            let table = Table::new(
                &format!("throughput per {unit} (calls started in the window that succeeded)"),
                &["window", "req/s"],
            );
            for (i, r) in per_window.iter().enumerate() {
                table.row(&[format!("{}", i + 1), format!("{r:.1}")]);
            }
            let first = per_window.first().copied().unwrap_or(0.0);
            let last = per_window.last().copied().unwrap_or(0.0);
            let drift = if first > 0.0 {
                (last - first) / first * 100.0
            } else {
                0.0
            };
            let table = Table::new("rbac under load: summary", &["measure", "value", "target"]);
            let rows: Vec<[String; 3]> = vec![
                [
                    "calls succeeded".into(),
                    latency.len().to_string(),
                    String::new(),
                ],
                [
                    "calls failed".into(),
                    errors.load(Ordering::Relaxed).to_string(),
                    "0".into(),
                ],
                [
                    "last window vs first".into(),
                    format!("{drift:+.1}%"),
                    "within ±5%".into(),
                ],
                [
                    "call latency p50 / p99".into(),
                    format!(
                        "{} / {}",
                        fmt_dur(latency.percentile(50.0)),
                        fmt_dur(latency.percentile(99.0))
                    ),
                    "1–2 s upstream".into(),
                ],
                [
                    "role changes during the run".into(),
                    changes.to_string(),
                    String::new(),
                ],
                [
                    "pg_stat_activity samples".into(),
                    sampled.seconds.to_string(),
                    String::new(),
                ],
                [
                    "max connections named mcpgate".into(),
                    sampled.max_connections.to_string(),
                    format!(
                        "≤ {} (pool {pool_size} + the bench's role changer)",
                        pool_size + 1
                    ),
                ],
                [
                    "max `idle in transaction`".into(),
                    sampled.max_idle_in_tx.to_string(),
                    String::new(),
                ],
                [
                    "oldest `idle in transaction`".into(),
                    format!("{} ms", sampled.oldest_idle_in_tx_ms),
                    "< 1000 ms".into(),
                ],
                [
                    "samples of one idle in tx > 1 s".into(),
                    sampled.idle_in_tx_over_1s.to_string(),
                    "0".into(),
                ],
                [
                    "pool checkouts".into(),
                    checkout.checkouts.to_string(),
                    String::new(),
                ],
                [
                    "pool wait p99 / max".into(),
                    format!(
                        "{} / {}",
                        fmt_dur(checkout.wait_p99),
                        fmt_dur(checkout.wait_max)
                    ),
                    String::new(),
                ],
                [
                    "checkout held p99 / max".into(),
                    format!(
                        "{} / {}",
                        fmt_dur(checkout.held_p99),
                        fmt_dur(checkout.held_max)
                    ),
                    "ms, never the upstream's 1–2 s".into(),
                ],
                [
                    "audit events written / dropped".into(),
                    format!("{} / {}", audit.written(), audit.dropped()),
                    "dropped 0".into(),
                ],
                [
                    "process RSS start / end / max".into(),
                    format!(
                        "{} / {} / {} MiB",
                        rss_start / 1024,
                        rss_end / 1024,
                        sampled.max_rss_kib / 1024
                    ),
                    String::new(),
                ],
            ];
            for r in rows {
                table.row(&r);
            }
            Ok(())
        })??;
    drop(db);
    Ok(())
}
