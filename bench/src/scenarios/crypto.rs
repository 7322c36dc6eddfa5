//! `cargo xtask bench crypto`: what password hashing costs, how close the bounded pool gets to
//! the machine's limit, whether the async runtime stays responsive while every core hashes,
//! and what sealing and token handling cost on the request path.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use mcpgate_core::SecretString;
use mcpgate_crypto::{HasherConfig, PasswordHasher, Place, SecretBox, TokenHash, TokenKind};
use tokio::runtime::Runtime;
use zeroize::Zeroizing;

use crate::stats::{self, Samples, Table, fmt_dur, ratio};

/// How much work each part does; `--short` only proves the scenario runs.
struct Load {
    single: usize,
    per_client: usize,
    /// Each latency condition runs `rounds` times for `window`, the conditions interleaved,
    /// so a change in the machine's other load hits all of them alike.
    window: Duration,
    rounds: u32,
    iterations: u32,
}

impl Load {
    fn new(short: bool) -> Self {
        if short {
            Self {
                single: 5,
                per_client: 2,
                window: Duration::from_millis(400),
                rounds: 1,
                iterations: 5_000,
            }
        } else {
            Self {
                single: 40,
                per_client: 16,
                window: Duration::from_secs(1),
                rounds: 5,
                iterations: 200_000,
            }
        }
    }
}

pub fn run(runtime: &Runtime, short: bool) -> anyhow::Result<()> {
    stats::print_machine("crypto", short);
    let load = Load::new(short);
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let defaults = HasherConfig::default();
    println!(
        "argon2id m = {} KiB, t = {}, p = {} (the defaults); pool permits = {cores} (one per \
         core), nice {} unless a row says otherwise",
        defaults.m_cost_kib, defaults.t_cost, defaults.p_cost, defaults.nice
    );
    if let Ok(loadavg) = std::fs::read_to_string("/proc/loadavg") {
        // The machine may be shared: other work skews absolute times, ratios less so.
        println!("load average before the run: {}", loadavg.trim());
    }
    let single = runtime.block_on(single_hash(&load))?;
    runtime.block_on(throughput(&load, cores, single))?;
    runtime.block_on(runtime_latency(&load, cores))?;
    sealing(&load, single)?;
    tokens(&load)
}

fn hasher(config: HasherConfig) -> anyhow::Result<Arc<PasswordHasher>> {
    Ok(Arc::new(PasswordHasher::new(&config)?))
}

fn pw(s: &str) -> SecretString {
    SecretString::new(s)
}

/// One hash, then one verify, at a time through the pool; returns the median verify time.
async fn single_hash(load: &Load) -> anyhow::Result<Duration> {
    let hasher = hasher(HasherConfig::default())?;
    let stored = hasher.hash(pw("correct horse battery staple")).await?;
    let (mut hashes, mut verifies) = (Samples::default(), Samples::default());
    for _ in 0..load.single {
        let started = Instant::now();
        hasher.hash(pw("correct horse battery staple")).await?;
        hashes.push(started.elapsed());
        let started = Instant::now();
        hasher
            .verify(pw("correct horse battery staple"), &stored)
            .await?;
        verifies.push(started.elapsed());
    }
    let table = Table::new(
        "Single hash and verify (one at a time, through the pool)",
        &["op", "n", "p50", "p99", "mean"],
    );
    for (op, s) in [("hash", &mut hashes), ("verify", &mut verifies)] {
        table.row(&[
            op.into(),
            s.len().to_string(),
            fmt_dur(s.percentile(50.0)),
            fmt_dur(s.percentile(99.0)),
            fmt_dur(s.mean()),
        ]);
    }
    Ok(verifies.percentile(50.0))
}

/// Closed loop: `clients` logins verify back to back; the physical limit is one verify per
/// core per single-verify time (the median above, measured in the same run).
async fn throughput(load: &Load, cores: usize, single: Duration) -> anyhow::Result<()> {
    let hasher = hasher(HasherConfig {
        queue_timeout_ms: 600_000,
        ..HasherConfig::default()
    })?;
    let stored = hasher.hash(pw("pw")).await?;
    let limit = cores as f64 / single.as_secs_f64();
    let table = Table::new(
        "Hashing throughput (closed loop, verifies through the pool)",
        &[
            "concurrency",
            "verifies",
            "verifies/s",
            "physical limit/s",
            "of limit",
            "login p50",
            "login p99",
        ],
    );
    for clients in [1, cores, 4 * cores] {
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(clients);
        for _ in 0..clients {
            let (hasher, stored) = (Arc::clone(&hasher), stored.clone());
            let n = load.per_client * 4 * cores / clients;
            tasks.push(tokio::spawn(async move {
                let mut samples = Samples::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    hasher.verify(pw("pw"), &stored).await?;
                    samples.push(t.elapsed());
                }
                Ok::<_, mcpgate_crypto::CryptoError>(samples)
            }));
        }
        let mut all = Samples::default();
        for task in tasks {
            all.extend(task.await.context("login task")??);
        }
        let rate = all.len() as f64 / started.elapsed().as_secs_f64();
        table.row(&[
            clients.to_string(),
            all.len().to_string(),
            format!("{rate:.1}"),
            format!("{limit:.1}"),
            ratio(rate, limit),
            fmt_dur(all.percentile(50.0)),
            fmt_dur(all.percentile(99.0)),
        ]);
    }
    Ok(())
}

/// What the runtime does besides hashing: `per_ms` requests every millisecond, each costing
/// about `work` of CPU (sealing and opening a 2 KiB secret `work` times).
#[derive(Clone, Copy)]
struct Traffic {
    name: &'static str,
    per_ms: usize,
    seals: usize,
}

const LIGHT: Traffic = Traffic {
    name: "light (1 req/ms, 1 seal+open each)",
    per_ms: 1,
    seals: 1,
};
const BUSY: Traffic = Traffic {
    name: "busy (4 req/ms, 10 seal+open each)",
    per_ms: 4,
    seals: 10,
};

/// Open loop: requests start on a 1 ms timer whatever happened before (no coordinated
/// omission); a request's latency runs from its scheduled start to its end.
async fn runtime_latency(load: &Load, cores: usize) -> anyhow::Result<()> {
    let secret_box = Arc::new(secret_box()?);
    let table = Table::new(
        "Request latency on the runtime while the pool is idle or saturated (open loop, \
         conditions interleaved)",
        &[
            "traffic",
            "hashing pool",
            "requests",
            "p50",
            "p99",
            "max",
            "p99 vs idle",
            "verifies/s meanwhile",
        ],
    );
    const CONDITIONS: [(&str, Option<u8>); 3] = [
        ("idle", None),
        ("saturated, nice 0", Some(0)),
        ("saturated, nice 10", Some(10)),
    ];
    for traffic in [LIGHT, BUSY] {
        let mut results: Vec<(Samples, usize)> = vec![(Samples::default(), 0); CONDITIONS.len()];
        for _ in 0..load.rounds {
            for ((_, nice), (samples, verifies)) in CONDITIONS.iter().zip(results.iter_mut()) {
                let (s, v) =
                    latency_under(load.window, cores, traffic, *nice, Arc::clone(&secret_box))
                        .await?;
                samples.extend(s);
                *verifies += v;
            }
        }
        let seconds = (load.window * load.rounds).as_secs_f64();
        let mut idle_p99 = 0.0;
        for ((label, nice), (mut samples, verifies)) in CONDITIONS.into_iter().zip(results) {
            let p99 = samples.percentile(99.0);
            if nice.is_none() {
                idle_p99 = p99.as_secs_f64();
            }
            table.row(&[
                traffic.name.into(),
                label.into(),
                samples.len().to_string(),
                fmt_dur(samples.percentile(50.0)),
                fmt_dur(p99),
                fmt_dur(samples.max()),
                ratio(p99.as_secs_f64(), idle_p99),
                format!("{:.1}", verifies as f64 / seconds),
            ]);
        }
    }
    Ok(())
}

async fn latency_under(
    window: Duration,
    cores: usize,
    traffic: Traffic,
    nice: Option<u8>,
    secret_box: Arc<SecretBox>,
) -> anyhow::Result<(Samples, usize)> {
    let stop = Arc::new(AtomicBool::new(false));
    let verified = Arc::new(AtomicUsize::new(0));
    let mut hashing = Vec::new();
    if let Some(nice) = nice {
        let hasher = hasher(HasherConfig {
            nice,
            queue_timeout_ms: 600_000,
            ..HasherConfig::default()
        })?;
        let stored = hasher.hash(pw("pw")).await?;
        // Twice as many logins as permits: the pool never runs dry.
        for _ in 0..2 * cores {
            let (hasher, stored) = (Arc::clone(&hasher), stored.clone());
            let (stop, verified) = (Arc::clone(&stop), Arc::clone(&verified));
            hashing.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if hasher.verify(pw("pw"), &stored).await.is_ok() {
                        verified.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        verified.store(0, Ordering::Relaxed);
    }

    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let ticks = window.as_millis() as usize;
    let mut requests = Vec::with_capacity(ticks * traffic.per_ms);
    for _ in 0..ticks {
        let scheduled = ticker.tick().await.into_std();
        for _ in 0..traffic.per_ms {
            let secret_box = Arc::clone(&secret_box);
            requests.push(tokio::spawn(async move {
                tokio::task::yield_now().await;
                let place = Place::new("upstreams", "secret", "bench");
                for _ in 0..traffic.seals {
                    let sealed = secret_box.seal(&[7u8; 2048], &place).ok();
                    let opened = sealed.and_then(|s| secret_box.open(&s, &place).ok());
                    std::hint::black_box(opened);
                }
                scheduled.elapsed()
            }));
        }
    }
    let mut samples = Samples::with_capacity(requests.len());
    for request in requests {
        samples.push(request.await.context("request task")?);
    }
    stop.store(true, Ordering::Relaxed);
    let verifies = verified.load(Ordering::Relaxed);
    for task in hashing {
        task.await.context("login task")?;
    }
    Ok((samples, verifies))
}

fn secret_box() -> anyhow::Result<SecretBox> {
    let key = mcpgate_crypto::keys::decode_key_b64(&mcpgate_crypto::keys::generate_key_b64()?)
        .map_err(anyhow::Error::msg)?;
    Ok(SecretBox::new(
        "bench",
        [("bench".to_owned(), Zeroizing::new(key))],
    )?)
}

/// Nanoseconds per call of `f`, over `n` calls after `n / 10` warm-up calls.
fn ns_per_op(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

fn sealing(load: &Load, verify: Duration) -> anyhow::Result<()> {
    let b = secret_box()?;
    let place = Place::new("upstreams", "secret", "row-1");
    let secret = vec![42u8; 2048];
    let sealed = b.seal(&secret, &place)?;
    let n = load.iterations;
    let seal = ns_per_op(n, || {
        std::hint::black_box(b.seal(std::hint::black_box(&secret), &place).ok());
    });
    let open = ns_per_op(n, || {
        std::hint::black_box(b.open(std::hint::black_box(&sealed), &place).ok());
    });
    let kdf = verify.as_nanos() as f64;
    let table = Table::new(
        "SecretBox, 2 KiB secret (keys loaded once, XChaCha20-Poly1305 inline)",
        &[
            "op",
            "calls",
            "ns/op",
            "an argon2 key derivation per call would cost",
        ],
    );
    for (op, ns) in [("seal", seal), ("open", open)] {
        table.row(&[
            op.into(),
            n.to_string(),
            format!("{ns:.0}"),
            ratio(kdf + ns, ns),
        ]);
    }
    Ok(())
}

fn tokens(load: &Load) -> anyhow::Result<()> {
    let n = load.iterations;
    let (token, _) = mcpgate_crypto::token::mint(TokenKind::Access)?;
    let stored = TokenHash::of(token.expose());
    let challenge = mcpgate_crypto::pkce::s256_challenge(VERIFIER);
    let rows = [
        (
            "mint (OS RNG, 256 bits, prefix, SHA-256)",
            ns_per_op(n, || {
                std::hint::black_box(mcpgate_crypto::token::mint(TokenKind::Access).ok());
            }),
        ),
        (
            "hash a presented token (SHA-256)",
            ns_per_op(n, || {
                std::hint::black_box(TokenHash::of(std::hint::black_box(token.expose())));
            }),
        ),
        (
            "hash + constant-time compare",
            ns_per_op(n, || {
                std::hint::black_box(stored.matches(std::hint::black_box(token.expose())));
            }),
        ),
        (
            "PKCE S256 verify",
            ns_per_op(n, || {
                std::hint::black_box(
                    mcpgate_crypto::pkce::verify_s256(std::hint::black_box(VERIFIER), &challenge)
                        .is_ok(),
                );
            }),
        ),
    ];
    let table = Table::new("Tokens and PKCE", &["op", "calls", "ns/op"]);
    for (op, ns) in rows {
        table.row(&[op.into(), n.to_string(), format!("{ns:.0}")]);
    }
    Ok(())
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheap_parts_run() -> anyhow::Result<()> {
        let load = Load {
            iterations: 200,
            ..Load::new(true)
        };
        sealing(&load, Duration::from_millis(20))?;
        tokens(&load)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_latency_probe_counts_every_request() -> anyhow::Result<()> {
        let (samples, verifies) = latency_under(
            Duration::from_millis(50),
            1,
            LIGHT,
            Some(10),
            Arc::new(secret_box()?),
        )
        .await?;
        assert_eq!(samples.len(), 50);
        assert!(samples.max() < Duration::from_secs(5));
        std::hint::black_box(verifies);
        Ok(())
    }
}
