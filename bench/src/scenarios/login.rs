//! `cargo xtask bench login`: sign-in throughput against the physical limit, and what a
//! sign-in flood does to an unrelated request, on a release build of the real binary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcpgate_core::SecretString;
use mcpgate_crypto::{HasherConfig, PasswordHasher};
use serde_json::json;

use crate::server::Gateway;
use crate::stats::{Samples, Table, fmt_dur, ratio};

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "a benchmark password";

pub async fn run(short: bool) -> anyhow::Result<()> {
    let window = if short {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gw = Gateway::start(&format!(
        "[auth.rate_limit]\nper_account_per_minute = 0\nper_address_per_minute = 0\n\
         failures_per_account_address = 0\nfailures_per_address = 0\naccount_backoff_after = 0\n\
         [bootstrap]\nadmin_email = \"{EMAIL}\"\nadmin_password = \"{PASSWORD}\"\n"
    ))
    .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    // The physical limit, measured now: one verify at a time with the default parameters.
    let hasher = PasswordHasher::new(&HasherConfig::default())?;
    let stored = hasher.hash(SecretString::new(PASSWORD)).await?;
    let mut single = Samples::default();
    for _ in 0..if short { 5 } else { 20 } {
        let t = Instant::now();
        hasher.verify(SecretString::new(PASSWORD), &stored).await?;
        single.push(t.elapsed());
    }
    let one_hash = single.percentile(50.0);
    let limit = cores as f64 / one_hash.as_secs_f64();
    println!(
        "\nmethod: closed-loop clients on loopback against `mcpgate serve` (release, SQLite, \
         default argon2id m=19456 KiB t=2 p=1, hashing permits = cores, rate limits off), \
         {window:?} per cell; the load generator shares the {cores} cores. One verify alone \
         (same run, in-process): {} → physical limit {limit:.1} sign-ins/s.",
        fmt_dur(one_hash)
    );

    let table = Table::new(
        "(a) sign-ins: POST /api/v1/login",
        &[
            "concurrency",
            "sign-ins/s",
            "of physical limit",
            "p50",
            "p99",
            "errors",
        ],
    );
    for concurrency in [1, cores, 64] {
        let (mut s, rate, errors) = load(&client, &gw, concurrency, window, login_request).await;
        table.row(&[
            concurrency.to_string(),
            format!("{rate:.1}"),
            ratio(rate, limit),
            fmt_dur(s.percentile(50.0)),
            fmt_dur(s.percentile(99.0)),
            errors.to_string(),
        ]);
    }

    let token = token(&client, &gw).await?;
    let me = move |c: &reqwest::Client, base: &str| {
        c.get(format!("{base}/api/v1/me")).bearer_auth(&token)
    };
    let (mut alone, alone_rate, alone_err) = load(&client, &gw, 16, window, me.clone()).await;

    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let client = client.clone();
        let base = gw.base.clone();
        let flooding = flooding.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..64 {
                let client = client.clone();
                let base = base.clone();
                let flooding = flooding.clone();
                tasks.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    while flooding.load(Ordering::Relaxed) {
                        if login_request(&client, &base).send().await.is_ok() {
                            n += 1;
                        }
                    }
                    n
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap_or(0);
            }
            total
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut during, during_rate, during_err) = load(&client, &gw, 16, window, me).await;
    flooding.store(false, Ordering::Relaxed);
    let flood_logins = flood.await.unwrap_or(0);

    let table = Table::new(
        "(b) GET /api/v1/me at concurrency 16, alone and (c) during a 64-way sign-in flood",
        &[
            "condition",
            "requests/s",
            "p50",
            "p99",
            "p99 vs alone",
            "throughput vs alone",
            "errors",
        ],
    );
    let (a50, a99) = (alone.percentile(50.0), alone.percentile(99.0));
    table.row(&[
        "(b) alone".into(),
        format!("{alone_rate:.0}"),
        fmt_dur(a50),
        fmt_dur(a99),
        "1.00×".into(),
        "1.00×".into(),
        alone_err.to_string(),
    ]);
    let d99 = during.percentile(99.0);
    table.row(&[
        format!("(c) during flood ({flood_logins} sign-ins meanwhile)"),
        format!("{during_rate:.0}"),
        fmt_dur(during.percentile(50.0)),
        fmt_dur(d99),
        ratio(d99.as_secs_f64(), a99.as_secs_f64()),
        ratio(during_rate, alone_rate),
        during_err.to_string(),
    ]);
    Ok(())
}

fn login_request(client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
}

async fn token(client: &reqwest::Client, gw: &Gateway) -> anyhow::Result<String> {
    let body: serde_json::Value = login_request(client, &gw.base).send().await?.json().await?;
    body["access_token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("no token: {body}"))
}

/// `concurrency` closed-loop clients for `window`: latencies, requests/s, non-2xx count.
async fn load<F>(
    client: &reqwest::Client,
    gw: &Gateway,
    concurrency: usize,
    window: Duration,
    request: F,
) -> (Samples, f64, u64)
where
    F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let deadline = Instant::now() + window;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let base = gw.base.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                match request(&client, &base).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        samples.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (samples, errors)
        }));
    }
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
