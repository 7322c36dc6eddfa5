//! Proof under faults: a TCP fault proxy between mcpgate and PostgreSQL cuts, black-holes and
//! restores the database while requests keep coming. mcpgate must answer every request in
//! time — 503 with `Retry-After` while the database is gone, never a 500 or a hang — report
//! itself not ready, and recover on its own once the database is back.

use std::time::{Duration, Instant};

use mcpgate_core::SecretString;
use mcpgate_tests::faults::{Fault, FaultProxy};
use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "correct horse battery staple";

/// One request that needs the database every time (the user list is never cached).
async fn users(client: &Client, server: &TestServer, token: &str) -> (StatusCode, bool, Duration) {
    let started = Instant::now();
    match client
        .get(server.url("/api/v1/admin/users"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(r) => (
            r.status(),
            r.headers().contains_key("retry-after"),
            started.elapsed(),
        ),
        Err(e) => panic!("no answer at all: {e}"),
    }
}

async fn ready(client: &Client, server: &TestServer) -> (StatusCode, bool) {
    let r = client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    (r.status(), r.headers().contains_key("retry-after"))
}

async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what} not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn database_outage(fault: Fault) -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres("faults_database").await? else {
        return Ok(());
    };
    let proxy = FaultProxy::start("127.0.0.1:5432").await?;
    let url = db
        .url()
        .replacen(":5432/", &format!(":{}/", proxy.addr.port()), 1);
    let mut config = test_config(&url);
    config.database.wait_timeout_ms = 1000;
    config.database.connect_timeout_ms = 1000;
    config.database.statement_timeout_ms = 2000;
    config.bootstrap.admin_email = Some(ADMIN.into());
    config.bootstrap.admin_password = Some(SecretString::new(ADMIN_PW));
    let server = TestServer::start(config).await?;
    let client = Client::builder().timeout(Duration::from_secs(30)).build()?;
    let login: Value = client
        .post(server.url("/api/v1/login"))
        .json(&json!({ "email": ADMIN, "password": ADMIN_PW }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(users(&client, &server, &token).await.0, StatusCode::OK);

    // Load from 16 clients all through the outage.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..16 {
        let (client, url, token, stop) = (
            client.clone(),
            server.url("/api/v1/admin/users"),
            token.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let r = client.get(&url).bearer_auth(&token).send().await;
                let r = r.expect("every request is answered");
                seen.push((
                    r.status(),
                    r.headers().contains_key("retry-after"),
                    started.elapsed(),
                ));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.set(fault);
    // Not ready, and requests that need the database get 503 + Retry-After, in time.
    wait_until("/readyz 503", Duration::from_secs(10), async || {
        ready(&client, &server).await == (StatusCode::SERVICE_UNAVAILABLE, true)
    })
    .await;
    wait_until(
        "a 503 for a database request",
        Duration::from_secs(10),
        async || {
            let (status, retry_after, took) = users(&client, &server, &token).await;
            assert!(took < Duration::from_secs(6), "a request took {took:?}");
            status == StatusCode::SERVICE_UNAVAILABLE && retry_after
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Back: ready again and serving, without a restart.
    proxy.set(Fault::None);
    wait_until("recovery", Duration::from_secs(15), async || {
        ready(&client, &server).await.0 == StatusCode::OK
            && users(&client, &server, &token).await.0 == StatusCode::OK
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    let mut slowest = Duration::ZERO;
    for task in load {
        for (status, retry_after, took) in task.await? {
            *counts.entry(status.as_u16()).or_default() += 1;
            slowest = slowest.max(took);
            assert!(
                status == StatusCode::OK
                    || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after),
                "{status} (retry-after: {retry_after})"
            );
        }
    }
    eprintln!(
        "{fault:?}: statuses {counts:?}, slowest {slowest:?}, connections {}",
        proxy.accepted()
    );
    assert!(counts.get(&503).copied().unwrap_or(0) > 0, "{counts:?}");
    assert!(
        slowest < Duration::from_secs(6),
        "slowest answer {slowest:?}"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn database_reset_mid_load_gives_503_then_recovers() -> anyhow::Result<()> {
    database_outage(Fault::Reset).await
}

#[tokio::test(flavor = "multi_thread")]
async fn database_blackholed_mid_load_gives_503_in_time_then_recovers() -> anyhow::Result<()> {
    database_outage(Fault::Blackhole).await
}
