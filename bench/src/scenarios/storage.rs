//! `cargo xtask bench storage`: what one unit of work costs, on each backend — checkout + point
//! read (access-token lookup by hash) and checkout + small write (one audit event) — at
//! concurrency 1 and 32, with the pool's own wait reported apart from the query.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mcpgate_storage::testing::{TempPostgres, temp_sqlite};
use mcpgate_storage::{AuditEvent, NewAccessToken, NewUser, Store, StoreOptions, now_ms};

use crate::stats::{Samples, Table, fmt_dur, ratio};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const TOKENS: usize = 10_000;

pub async fn run(short: bool) -> anyhow::Result<()> {
    let ops = if short { 2_000 } else { 20_000 };
    println!(
        "\nmethod: {ops} operations per cell from N concurrent tasks on one Store (pool of 16); \
         {TOKENS} access tokens seeded; point read = find_access_token(hash) joining users and \
         token_families; small write = insert_audit_events(1 row). Pool wait and checkout hold \
         are the Store's own checkout figures. ratio = ops/s against the same backend and \
         operation at concurrency 1."
    );
    let table = Table::new(
        "storage units of work",
        &[
            "backend",
            "operation",
            "concurrency",
            "ops/s",
            "ratio vs c=1",
            "p50",
            "p99",
            "pool wait p99",
            "checkout hold p99",
        ],
    );

    let (sqlite_url, _dir) = temp_sqlite()?;
    bench_backend("SQLite", &sqlite_url, ops, &table).await?;

    if std::env::var_os(mcpgate_storage::testing::ENV).is_none() {
        println!(
            "\n(PostgreSQL: using {DEFAULT_PG}; set {} to change)",
            mcpgate_storage::testing::ENV
        );
    }
    let admin = std::env::var(mcpgate_storage::testing::ENV).unwrap_or_else(|_| DEFAULT_PG.into());
    match TempPostgres::create_at_url(&admin).await {
        Ok(db) => bench_backend("PostgreSQL", &db.url, ops, &table).await?,
        Err(e) => println!("\nPostgreSQL skipped: not reachable at {admin} ({e})"),
    }
    Ok(())
}

async fn bench_backend(name: &str, url: &str, ops: usize, table: &Table) -> anyhow::Result<()> {
    let store = Store::connect(&StoreOptions::new(url)).await?;
    store.migrate().await?;
    let user = store
        .create_user(&NewUser {
            email: "bench@example.com".into(),
            ..Default::default()
        })
        .await?;
    for i in 0..TOKENS {
        store
            .insert_access_token(&NewAccessToken {
                token_hash: hash(i),
                kind: "oauth".into(),
                family_id: None,
                user_id: user.id.clone(),
                client_id: None,
                resource: None,
                scopes: "mcp".into(),
                expires_at: now_ms() + 3_600_000,
                created_at: now_ms(),
            })
            .await?;
    }

    for (operation, write) in [("point read", false), ("small write", true)] {
        let mut base = 0.0;
        for concurrency in [1usize, 32] {
            store.reset_checkout_stats();
            let (mut samples, elapsed) = drive(&store, concurrency, ops, write, &user.id).await?;
            let rate = samples.len() as f64 / elapsed.as_secs_f64();
            if concurrency == 1 {
                base = rate;
            }
            let stats = store.checkout_stats();
            table.row(&[
                name.into(),
                operation.into(),
                concurrency.to_string(),
                format!("{rate:.0}"),
                ratio(rate, base),
                fmt_dur(samples.percentile(50.0)),
                fmt_dur(samples.percentile(99.0)),
                fmt_dur(stats.wait_p99),
                fmt_dur(stats.held_p99),
            ]);
        }
    }
    Ok(())
}

async fn drive(
    store: &Store,
    concurrency: usize,
    ops: usize,
    write: bool,
    user_id: &str,
) -> anyhow::Result<(Samples, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let store = store.clone();
        let next = next.clone();
        let user_id = user_id.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(ops / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    break;
                }
                let t = Instant::now();
                if write {
                    let mut event = AuditEvent::new("bench", "allow");
                    event.user_id = Some(user_id.clone());
                    store.insert_audit_events(&[event]).await?;
                } else {
                    let found = store.find_access_token(&hash(i * 7919 % TOKENS)).await?;
                    anyhow::ensure!(found.is_some(), "seeded token missing");
                }
                samples.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut all = Samples::with_capacity(ops);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all, started.elapsed()))
}

fn hash(i: usize) -> Vec<u8> {
    let mut h = vec![0u8; 32];
    h[..8].copy_from_slice(&(i as u64).to_be_bytes());
    h
}
