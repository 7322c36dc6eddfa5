//! `cargo xtask bench proxy`: what mcpgate's MCP proxy adds to a trivial `tools/call`, and to
//! the first event of a streamed (SSE) tool result.
//!
//! Method: the rmcp fixture upstream (`mcp-fixture`), mcpgate and the load generator run in
//! this process, each on its own two-thread tokio runtime (the machine's cores are shared by
//! all three, as they would be on one box). "direct" sends the request to the fixture;
//! "through" sends the same request to mcpgate's `/mcp/fx`, which authenticates (an in-memory
//! token map standing in for the OAuth check that has not landed yet), checks the 2026-07-28
//! headers against the body, and forwards on its pooled client. Requests are 2026-07-28
//! stateless `tools/call echo` (application/json). Each concurrency level runs closed-loop:
//! N workers, each sending its next request as soon as the previous answer is read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use mcpgate_fixture_upstream::Fixture;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::stats::{self, Samples, Table};

const TOKEN: &str = "bench-token";
/// Direct and through runs alternate this many times per concurrency level.
const ROUNDS: u32 = 5;

struct BenchAuth;

#[async_trait::async_trait]
impl mcpgate_server::auth::Authenticator for BenchAuth {
    async fn authenticate(
        &self,
        token: &str,
        resource: &str,
    ) -> Result<mcpgate_core::Principal, mcpgate_server::auth::AuthError> {
        if token == TOKEN {
            Ok(mcpgate_core::Principal {
                user_id: "bench".into(),
                client_id: "bench".into(),
                scopes: vec!["mcp".into()],
                resource: resource.to_owned(),
            })
        } else {
            Err(mcpgate_server::auth::AuthError::InvalidToken("no".into()))
        }
    }
}

fn runtime(name: &str) -> anyhow::Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

fn call_body(name: &str, args: Value) -> String {
    json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
           "params":{"name": name, "arguments": args, "_meta": meta()}})
    .to_string()
}

#[derive(Clone)]
struct Target {
    url: String,
    token: Option<&'static str>,
}

impl Target {
    fn request(&self, http: &reqwest::Client, name: &str, body: String) -> reqwest::RequestBuilder {
        let mut r = http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", name)
            .body(body);
        if let Some(t) = self.token {
            r = r.bearer_auth(t);
        }
        r
    }
}

struct Run {
    samples: Samples,
    elapsed: Duration,
    errors: usize,
    /// CPU time per thread group (`load`, `mcpgate`, `fixture`) over the measured window.
    cpu: CpuTimes,
}

/// CPU time (user + system) of this process's threads, summed by thread name.
#[derive(Debug, Default, Clone)]
struct CpuTimes(std::collections::BTreeMap<String, Duration>);

impl CpuTimes {
    /// From `/proc/self/task/*/stat` (Linux; empty elsewhere). Tick resolution (10 ms), so
    /// only meaningful over runs of seconds.
    fn now() -> Self {
        let mut out = std::collections::BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Self(out);
        };
        for task in tasks.flatten() {
            let path = task.path();
            let (Ok(comm), Ok(stat)) = (
                std::fs::read_to_string(path.join("comm")),
                std::fs::read_to_string(path.join("stat")),
            ) else {
                continue;
            };
            // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            // rest starts at field 3, so field n is index n - 3.
            let total = ticks(11) + ticks(12);
            let name = comm.trim().to_owned();
            *out.entry(name).or_insert(Duration::ZERO) += Duration::from_millis(total * 10);
        }
        Self(out)
    }

    fn since(&self, before: &CpuTimes) -> CpuTimes {
        let mut out = self.0.clone();
        for (k, v) in out.iter_mut() {
            *v = v.saturating_sub(before.0.get(k).copied().unwrap_or_default());
        }
        CpuTimes(out)
    }

    fn per_request(&self, group: &str, requests: usize) -> String {
        let total: Duration = self
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(group))
            .map(|(_, v)| *v)
            .sum();
        if requests == 0 {
            return "–".into();
        }
        format!("{:.0} µs", total.as_secs_f64() * 1e6 / requests as f64)
    }
}

impl Run {
    fn empty() -> Self {
        Run {
            samples: Samples::default(),
            elapsed: Duration::ZERO,
            errors: 0,
            cpu: CpuTimes::default(),
        }
    }

    fn absorb(&mut self, other: Run) {
        self.samples.extend(other.samples);
        self.elapsed += other.elapsed;
        self.errors += other.errors;
        for (k, v) in other.cpu.0 {
            *self.cpu.0.entry(k).or_insert(Duration::ZERO) += v;
        }
    }

    fn rps(&self) -> f64 {
        self.samples.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Closed loop: `concurrency` workers for `duration`, after a warm-up of a fifth of it.
async fn load(target: &Target, concurrency: usize, duration: Duration) -> anyhow::Result<Run> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()?;
    let body = call_body("echo", json!({"text": "ping"}));
    // Warm-up: open the connections, fill the pools on both hops.
    let warm = Instant::now() + duration / 5;
    let mut workers = Vec::new();
    let started = Instant::now();
    let deadline = started + duration / 5 + duration;
    for _ in 0..concurrency {
        let (http, target, body) = (http.clone(), target.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(4096);
            let mut errors = 0usize;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                // A success is a JSON-RPC result: an error answered with 200 counts as an error.
                let ok = match target.request(&http, "echo", body.clone()).send().await {
                    Ok(r) if r.status().is_success() => r
                        .bytes()
                        .await
                        .is_ok_and(|b| b.windows(9).any(|w| w == b"\"result\":")),
                    _ => false,
                };
                if now >= warm {
                    if ok {
                        samples.push(now.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (samples, errors)
        }));
    }
    tokio::time::sleep_until(warm.into()).await;
    let cpu_before = CpuTimes::now();
    let mut run = Run {
        samples: Samples::default(),
        elapsed: Duration::ZERO,
        errors: 0,
        cpu: CpuTimes::default(),
    };
    for w in workers {
        let (s, e) = w.await?;
        run.samples.extend(s);
        run.errors += e;
    }
    run.elapsed = Instant::now().saturating_duration_since(warm);
    run.cpu = CpuTimes::now().since(&cpu_before);
    Ok(run)
}

/// Time to the first SSE event and to the end of a 100-event stream.
async fn sse(
    target: &Target,
    http: &reqwest::Client,
    interval_ms: u64,
    first: &mut Samples,
    all: &mut Samples,
    record: bool,
) -> anyhow::Result<()> {
    let body = call_body("slow", json!({"count": 100, "interval_ms": interval_ms}));
    let started = Instant::now();
    {
        let response = target.request(http, "slow", body.clone()).send().await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.status());
        let mut stream = response.bytes_stream();
        let mut first_at = None;
        let mut events = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if first_at.is_none() && chunk.windows(5).any(|w| w == b"data:") {
                first_at = Some(started.elapsed());
            }
            events += chunk.windows(5).filter(|w| *w == b"data:").count();
        }
        anyhow::ensure!(
            events == 101,
            "expected 100 progress events and a result, got {events}"
        );
        if record {
            first.push(first_at.unwrap_or_default());
            all.push(started.elapsed());
        }
    }
    Ok(())
}

pub fn run(short: bool) -> anyhow::Result<()> {
    stats::print_machine("proxy", short);
    let upstream_rt = runtime("fixture")?;
    let gateway_rt = runtime("mcpgate")?;
    let client_rt = runtime("load")?;

    // The fixture upstream.
    let listener = upstream_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let upstream_url = format!("http://{}/mcp", listener.local_addr()?);
    upstream_rt.spawn(Fixture::default().serve(listener, std::future::pending()));

    // mcpgate in front of it.
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let listener = gateway_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let mut config = mcpgate_server::Config {
        listen: addr,
        public_url: format!("http://{addr}"),
        ..Default::default()
    };
    config.database.url = format!("sqlite://{}", db.display());
    // A fresh file: the schema is created at start, as a first run does.
    config.database.migrate_on_start = true;
    config.encryption.active_key = Some("bench".into());
    config.encryption.keys.insert(
        "bench".into(),
        mcpgate_core::SecretString::new(mcpgate_crypto::keys::generate_key_b64()?),
    );
    config
        .upstreams
        .push(mcpgate_server::config::UpstreamConfig {
            name: "fx".into(),
            url: upstream_url.clone(),
            response_timeout_ms: 10_000,
            idle_timeout_secs: None,
            credentials: Default::default(),
        });
    // RBAC on: the bench user holds a default role allowing the fixture's tools.
    config.policy = toml::from_str(
        r#"
        default_role = "bench"
        [[roles]]
        name = "bench"
        grants = [{ effect = "allow", action = "*", upstream = "fx" }]
        "#,
    )?;
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("bench config: {e:?}"))?;
    let state = gateway_rt
        .block_on(mcpgate_server::AppState::new(config))
        .context("mcpgate state")?
        .with_authenticator(Arc::new(BenchAuth));
    gateway_rt.spawn(mcpgate_server::serve::serve_app(
        state,
        listener,
        std::future::pending(),
    ));

    let direct = Target {
        url: upstream_url,
        token: None,
    };
    let through = Target {
        url: format!("http://{addr}/mcp/fx"),
        token: Some(TOKEN),
    };
    println!(
        "\nmethod: closed-loop `tools/call echo` (2026-07-28, application/json) for {} per \
         level (in 5 alternating direct/through slices, each after a warm-up of a fifth of \
         it); fixture, mcpgate and load generator in one process on \
         separate 2-thread runtimes; ratio = through / direct, same run.",
        if short { "1 s" } else { "5 s" },
    );
    let duration = Duration::from_secs(if short { 1 } else { 5 });
    let table = Table::new(
        "tools/call echo: direct vs through mcpgate",
        &[
            "concurrency",
            "p50 direct",
            "p50 through",
            "p50 added",
            "p99 direct",
            "p99 through",
            "req/s direct",
            "req/s through",
            "throughput ratio",
            "errors",
        ],
    );
    let mut cpu_rows = Vec::new();
    for concurrency in [1usize, 16, 64] {
        // Direct and through alternate in slices, so load from elsewhere on a shared machine
        // falls on both alike.
        let (mut d, mut t) = (Run::empty(), Run::empty());
        for _ in 0..ROUNDS {
            d.absorb(client_rt.block_on(load(&direct, concurrency, duration / ROUNDS))?);
            t.absorb(client_rt.block_on(load(&through, concurrency, duration / ROUNDS))?);
        }
        for (target, run) in [("direct", &d), ("through", &t)] {
            let n = run.samples.len();
            cpu_rows.push([
                concurrency.to_string(),
                target.to_owned(),
                run.cpu.per_request("load", n),
                run.cpu.per_request("mcpgate", n),
                run.cpu.per_request("fixture", n),
            ]);
        }
        let (d50, t50) = (d.samples.percentile(50.0), t.samples.percentile(50.0));
        table.row(&[
            concurrency.to_string(),
            stats::fmt_dur(d50),
            stats::fmt_dur(t50),
            stats::fmt_dur(t50.saturating_sub(d50)),
            stats::fmt_dur(d.samples.percentile(99.0)),
            stats::fmt_dur(t.samples.percentile(99.0)),
            format!("{:.0}", d.rps()),
            format!("{:.0}", t.rps()),
            stats::ratio(t.rps(), d.rps()),
            format!("{}/{}", d.errors, t.errors),
        ]);
        // Figures from failed requests would compare nothing: a run with errors fails.
        for (side, run) in [("direct", &d), ("through mcpgate", &t)] {
            anyhow::ensure!(
                run.errors == 0 && !run.samples.is_empty(),
                "c{concurrency} {side}: {} errors, {} successful requests",
                run.errors,
                run.samples.len()
            );
        }
    }

    let table = Table::new(
        "where the time goes: CPU per request by component (from /proc thread times)",
        &[
            "concurrency",
            "target",
            "load generator",
            "mcpgate",
            "fixture upstream",
        ],
    );
    for row in cpu_rows {
        table.row(&row);
    }

    // Two shapes of stream: a burst (the upstream writes all 100 events back to back, so the
    // three components compete for the cores while the first event travels) and paced (one
    // event per millisecond, as a tool reporting progress does).
    let table = Table::new(
        "SSE: `slow` tool streaming 100 progress events + result (sequential, alternating)",
        &[
            "events",
            "target",
            "n",
            "first event p50",
            "first event p99",
            "first event added (p50)",
            "whole stream p50",
            "whole stream p99",
        ],
    );
    for (shape, interval_ms, iterations) in [
        ("burst", 0u64, if short { 20 } else { 200 }),
        ("1 per ms", 1, if short { 10 } else { 50 }),
    ] {
        // Direct and through alternate request by request; the first five of each warm up.
        let mut results = [
            (Samples::default(), Samples::default()),
            (Samples::default(), Samples::default()),
        ];
        client_rt.block_on(async {
            let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
            for i in 0..iterations + 5 {
                for (target, (first, all)) in
                    [&direct, &through].into_iter().zip(results.iter_mut())
                {
                    sse(target, &http, interval_ms, first, all, i >= 5).await?;
                }
            }
            anyhow::Ok(())
        })?;
        let mut first_direct = Duration::ZERO;
        for (name, (mut first, mut all)) in ["direct", "through"].into_iter().zip(results) {
            let p50 = first.percentile(50.0);
            let added = if name == "direct" {
                first_direct = p50;
                "–".to_owned()
            } else {
                stats::fmt_dur(p50.saturating_sub(first_direct))
            };
            table.row(&[
                shape.into(),
                name.into(),
                first.len().to_string(),
                stats::fmt_dur(p50),
                stats::fmt_dur(first.percentile(99.0)),
                added,
                stats::fmt_dur(all.percentile(50.0)),
                stats::fmt_dur(all.percentile(99.0)),
            ]);
        }
    }
    drop(client_rt);
    gateway_rt.shutdown_timeout(Duration::from_millis(100));
    upstream_rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The short mode CI runs: every request through mcpgate succeeds (the scenario fails on
    /// any error or on no successful request). Figures from a debug build mean nothing.
    #[test]
    fn the_short_run_has_no_errors_on_either_side() -> anyhow::Result<()> {
        super::run(true)
    }
}
