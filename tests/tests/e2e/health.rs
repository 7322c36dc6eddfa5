//! The skeleton's promises: alive, ready (and honest when the database is not), metrics,
//! request ids, errors in JSON, graceful stop.

use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::StatusCode;

async fn ready_on(db: TestDb) -> anyhow::Result<()> {
    let server = TestServer::start(test_config(db.url())).await?;
    let client = reqwest::Client::new();

    let health = client.get(server.url("/healthz")).send().await?;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<serde_json::Value>().await?["status"], "ok");

    let ready = client.get(server.url("/readyz")).send().await?;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<serde_json::Value>().await?["status"], "ready");

    server.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_on_sqlite() -> anyhow::Result<()> {
    ready_on(TestDb::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_on_postgres() -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres("ready_on_postgres").await? else {
        return Ok(());
    };
    ready_on(db).await
}

#[tokio::test(flavor = "multi_thread")]
async fn not_ready_when_the_database_is_down() -> anyhow::Result<()> {
    // Nothing listens on port 1: every connection attempt fails at once. The server still
    // starts (connections are lazy, migrations off) and must say it is not ready.
    let mut config = test_config("postgres://postgres@127.0.0.1:1/postgres");
    config.database.migrate_on_start = false;
    config.database.connect_timeout_ms = 500;
    let server = TestServer::start(config).await?;
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let ready = client.get(server.url("/readyz")).send().await?;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let body: serde_json::Value = ready.json().await?;
    assert_eq!(body["error"], "temporarily_unavailable");
    // Alive all the same: liveness does not depend on the database.
    let health = client.get(server.url("/healthz")).send().await?;
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_route_and_status() -> anyhow::Result<()> {
    let db = TestDb::sqlite()?;
    let server = TestServer::start(test_config(db.url())).await?;
    let client = reqwest::Client::new();
    client.get(server.url("/healthz")).send().await?;
    client.get(server.url("/no/such/thing")).send().await?;
    let text = client
        .get(server.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        text.contains(r#"mcpgate_http_requests_total{route="/healthz",method="GET",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",method="GET",status="404""#),
        "{text}"
    );
    assert!(
        text.contains("mcpgate_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("mcpgate_db_pool_max_size"), "{text}");
    // Every family is explained, and the build is named.
    let helped: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for family in text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
    {
        assert!(helped.contains(&family), "no # HELP for {family}:\n{text}");
    }
    let build = text
        .lines()
        .find(|l| l.starts_with("mcpgate_build_info{"))
        .unwrap_or_default();
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.ends_with(" 1"),
        "{text}"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_errors_and_body_limit() -> anyhow::Result<()> {
    let db = TestDb::sqlite()?;
    let mut config = test_config(db.url());
    config.http.body_limit_bytes = 1024;
    let server = TestServer::start(config).await?;
    let client = reqwest::Client::new();

    // A request id is minted, or the caller's is kept.
    let r = client.get(server.url("/healthz")).send().await?;
    assert!(r.headers().get("x-request-id").is_some());
    let r = client
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await?;
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");

    // Unknown endpoints answer JSON in the OAuth error shape.
    let r = client.get(server.url("/nope")).send().await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<serde_json::Value>().await?["error"], "not_found");

    // Bodies over the limit are refused before any handler reads them.
    let r = client
        .post(server.url("/healthz"))
        .body(vec![b'x'; 4096])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_can_require_a_bearer_token_or_a_separate_address() -> anyhow::Result<()> {
    let db = TestDb::sqlite()?;
    let mut config = test_config(db.url());
    config.metrics.bearer_token =
        Some(mcpgate_core::SecretString::new("scraper-secret-0123456789"));
    let server = TestServer::start(config).await?;
    let client = reqwest::Client::new();
    let none = client.get(server.url("/metrics")).send().await?;
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers().contains_key("www-authenticate"));
    let wrong = client
        .get(server.url("/metrics"))
        .bearer_auth("scraper-secret-wrong")
        .send()
        .await?;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = client
        .get(server.url("/metrics"))
        .bearer_auth("scraper-secret-0123456789")
        .send()
        .await?;
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await?.contains("mcpgate_http_requests_total"));
    server.stop().await?;

    // On its own address: the main one answers 404, the admin one the metrics.
    let db = TestDb::sqlite()?;
    let free = std::net::TcpListener::bind("127.0.0.1:0")?;
    let admin = free.local_addr()?;
    drop(free);
    let mut config = test_config(db.url());
    config.metrics.listen = Some(admin);
    let server = TestServer::start(config).await?;
    let main = client.get(server.url("/metrics")).send().await?;
    assert_eq!(main.status(), StatusCode::NOT_FOUND);
    let mut served = None;
    for _ in 0..50 {
        if let Ok(r) = client.get(format!("http://{admin}/metrics")).send().await {
            served = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let served = served.expect("the metrics address answers");
    assert_eq!(served.status(), StatusCode::OK);
    server.stop().await
}
