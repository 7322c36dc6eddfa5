//! `client_credentials` against a strict fake authorization server.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use mcpgate_credentials::{CredentialError, Dependencies};

use super::fakes::{AsState, CLIENT_ID, CLIENT_SECRET, authorization_server};
use super::{build, header, resolve};

fn config(endpoint: &str, secret: &str, extra: &str) -> String {
    format!(
        r#"credentials = {{ kind = "client_credentials", {endpoint}, client_id = "{CLIENT_ID}", client_secret = "{secret}", scope = "read write", resource = "https://api.example/"{extra} }}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_make_one_token_request() {
    let state = Arc::new(AsState::new(3600));
    let base = authorization_server(state.clone()).await;
    let source = build(
        "cc",
        &config(
            &format!("token_endpoint = \"{base}token\""),
            CLIENT_SECRET,
            "",
        ),
        &Dependencies::default(),
    );
    let users: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    let results = join_all(users.iter().map(|u| resolve(source.as_ref(), u))).await;
    for r in results {
        let snapshot = r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            header(&snapshot, "authorization").as_deref(),
            Some("Bearer cc-token-1")
        );
    }
    assert_eq!(state.calls(), 1);
    // Still cached later.
    let again = resolve(source.as_ref(), "user-0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        header(&again, "authorization").as_deref(),
        Some("Bearer cc-token-1")
    );
    assert_eq!(state.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expiring_token_is_refreshed_exactly_once() {
    // expires_in 3 s, skew 2 s: the token is used for 1 s.
    let state = Arc::new(AsState::new(3));
    let base = authorization_server(state.clone()).await;
    let source = build(
        "cc-expiry",
        &config(
            &format!("token_endpoint = \"{base}token\""),
            CLIENT_SECRET,
            ", expiry_skew_secs = 2",
        ),
        &Dependencies::default(),
    );
    let first = resolve(source.as_ref(), "u")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        header(&first, "authorization").as_deref(),
        Some("Bearer cc-token-1")
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let results = join_all((0..50).map(|_| resolve(source.as_ref(), "u"))).await;
    for r in results {
        let snapshot = r.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            header(&snapshot, "authorization").as_deref(),
            Some("Bearer cc-token-2")
        );
    }
    assert_eq!(state.calls(), 2);
}

#[tokio::test]
async fn the_issuer_is_discovered_and_a_wrong_secret_is_refused_by_code() {
    let state = Arc::new(AsState::new(3600));
    let base = authorization_server(state.clone()).await;
    let issuer = base.as_str().trim_end_matches('/');
    let good = build(
        "cc-discovered",
        &config(&format!("issuer = \"{issuer}\""), CLIENT_SECRET, ""),
        &Dependencies::default(),
    );
    let snapshot = resolve(good.as_ref(), "u")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        header(&snapshot, "authorization").as_deref(),
        Some("Bearer cc-token-1")
    );

    let bad = build(
        "cc-bad-secret",
        &config(
            &format!("token_endpoint = \"{base}token\""),
            "wrong-secret",
            "",
        ),
        &Dependencies::default(),
    );
    let err = resolve(bad.as_ref(), "u").await.err();
    assert_eq!(
        err,
        Some(CredentialError::Refused {
            upstream: "cc-bad-secret".into(),
            error: "invalid_client".into()
        })
    );
    let shown = format!(
        "{err:?} {} {bad:?} {good:?}",
        err.as_ref().map(|e| e.to_string()).unwrap_or_default()
    );
    assert!(
        !shown.contains(CLIENT_SECRET) && !shown.contains("cc-token-1"),
        "{shown}"
    );
    assert!(
        !shown.contains("wrong-secret") && !shown.contains("echo"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_hung_authorization_server_fails_within_the_timeout() {
    let mut slow = AsState::new(3600);
    slow.delay = Duration::from_secs(30);
    let base = authorization_server(Arc::new(slow)).await;
    let source = build(
        "cc-hung",
        &config(
            &format!("token_endpoint = \"{base}token\""),
            CLIENT_SECRET,
            ", timeout_ms = 300",
        ),
        &Dependencies::default(),
    );
    let started = std::time::Instant::now();
    let err = resolve(source.as_ref(), "u").await.err();
    assert!(
        matches!(err, Some(CredentialError::Timeout { .. })),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
