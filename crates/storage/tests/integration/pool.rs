//! Pool discipline: a full pool answers Busy within the wait timeout; a dead database answers
//! Unavailable quickly; connections get the server-side safety nets.

use std::time::{Duration, Instant};

use mcpgate_storage::testing::hold_connection;
use mcpgate_storage::{StorageError, Store, StoreOptions};

use crate::support::Fixture;

async fn busy_when_exhausted(f: Fixture) {
    let mut options = StoreOptions::new(&f.url);
    options.max_connections = 1;
    options.wait_timeout = Duration::from_millis(300);
    let store = Store::connect(&options).await.unwrap();
    store.ping().await.unwrap();

    let parked = tokio::spawn({
        let store = store.clone();
        async move { hold_connection(&store, Duration::from_secs(3)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let result = store.find_user_by_email("x@example.com").await;
    let waited = started.elapsed();
    assert!(matches!(result, Err(StorageError::Busy)), "{result:?}");
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "did not hang: {waited:?}");
    assert_eq!(store.pool_status().max_size, 1);
    parked.abort();

    // The checkout figures saw the long hold.
    let stats = store.checkout_stats();
    assert!(stats.wait_max >= Duration::from_millis(250), "{stats:?}");
}
both_backends!(pool_busy_within_wait_timeout, super::busy_when_exhausted);

#[tokio::test(flavor = "multi_thread")]
async fn unavailable_quickly_when_postgres_is_down() {
    // Nothing listens on port 1.
    let mut options = StoreOptions::new("postgres://postgres@127.0.0.1:1/postgres");
    options.connect_timeout = Duration::from_millis(500);
    let store = Store::connect(&options).await.unwrap();
    let started = Instant::now();
    let result = store.ping().await;
    assert!(
        matches!(result, Err(StorageError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_in_an_unusable_place_is_an_error_not_a_panic() {
    let file = tempfile_path();
    std::fs::write(&file, b"not a directory").unwrap();
    let url = format!("sqlite://{}/db.sqlite", file.display());
    assert!(Store::connect(&StoreOptions::new(url)).await.is_err());
    let _ = std::fs::remove_file(file);
}

fn tempfile_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mcpgate-not-a-dir-{}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_connections_carry_the_safety_nets() {
    let Some(f) = Fixture::postgres("postgres_connections_carry_the_safety_nets").await else {
        return;
    };
    let mut options = StoreOptions::new(&f.url);
    options.statement_timeout = Duration::from_millis(1234);
    options.idle_in_transaction_timeout = Duration::from_millis(4321);
    let store = Store::connect(&options).await.unwrap();
    let settings = mcpgate_storage::testing::session_settings(&store)
        .await
        .unwrap();
    assert_eq!(
        settings,
        ["1234ms", "4321ms", "mcpgate"].map(String::from).to_vec()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_scheme_is_a_config_error() {
    let r = Store::connect(&StoreOptions::new("mysql://x")).await;
    assert!(matches!(r, Err(StorageError::Config(_))));
}
