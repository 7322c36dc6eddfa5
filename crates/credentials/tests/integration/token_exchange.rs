//! `token_exchange` (RFC 8693): per-user isolation under concurrency, single-flight per user,
//! a hung STS, refusals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use mcpgate_credentials::{AssertionSigner, CredentialError, Dependencies};
use zeroize::Zeroizing;

use super::fakes::{AsState, CLIENT_ID, CLIENT_SECRET, FakeProviderTokens, authorization_server};
use super::{build, header, resolve};

fn config(base: &url::Url, subject: &str, extra: &str) -> String {
    format!(
        r#"credentials = {{ kind = "token_exchange", token_endpoint = "{base}token", client_id = "{CLIENT_ID}", client_secret = "{CLIENT_SECRET}", {subject}, audience = "orders-api"{extra} }}"#
    )
}

fn login_tokens(users: usize) -> Dependencies {
    let tokens = (0..users)
        .map(|i| {
            (
                (format!("user-{i}"), "keycloak".to_owned()),
                format!("kc-{i}"),
            )
        })
        .collect();
    Dependencies {
        provider_tokens: Some(Arc::new(FakeProviderTokens {
            tokens,
            ..FakeProviderTokens::default()
        })),
        ..Dependencies::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_callers_of_twenty_users_each_get_their_own_token() {
    let state = Arc::new(AsState::new(3600));
    let base = authorization_server(state.clone()).await;
    let source = build(
        "orders",
        &config(
            &base,
            r#"subject_token = "login_token", provider = "keycloak""#,
            "",
        ),
        &login_tokens(20),
    );
    // 10 rounds of 20 users, interleaved so one user's callers overlap with everyone else's.
    let callers: Vec<String> = (0..200).map(|i| format!("user-{}", i % 20)).collect();
    let results = join_all(callers.iter().map(|user| {
        let source = source.clone();
        async move { (user, resolve(source.as_ref(), user).await) }
    }))
    .await;
    for (user, result) in results {
        let snapshot = result.unwrap_or_else(|e| panic!("{user}: {e}"));
        let i = user.trim_start_matches("user-");
        assert_eq!(
            header(&snapshot, "authorization"),
            Some(format!("Bearer exchanged-for-kc-{i}")),
            "{user}"
        );
    }
    assert_eq!(state.calls(), 20);
    let by_subject = state
        .by_subject
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert_eq!(by_subject.len(), 20);
    assert!(by_subject.values().all(|n| *n == 1), "{by_subject:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_sts_fails_in_time_while_another_upstream_stays_fast() {
    let mut hung = AsState::new(3600);
    hung.delay = Duration::from_secs(60);
    let hung_base = authorization_server(Arc::new(hung)).await;
    let fast_state = Arc::new(AsState::new(3600));
    let fast_base = authorization_server(fast_state.clone()).await;
    let deps = login_tokens(2);
    let subject = r#"subject_token = "login_token", provider = "keycloak""#;
    let stuck = build(
        "stuck",
        &config(&hung_base, subject, ", timeout_ms = 1000"),
        &deps,
    );
    let fine = build(
        "fine",
        &config(&fast_base, subject, ", timeout_ms = 1000"),
        &deps,
    );

    let started = Instant::now();
    let stuck_call = tokio::spawn({
        let stuck = stuck.clone();
        async move {
            let r = resolve(stuck.as_ref(), "user-0").await;
            (r.err(), started.elapsed())
        }
    });
    // While the hung STS holds its callers, the other upstream answers at once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fast_started = Instant::now();
    let snapshot = resolve(fine.as_ref(), "user-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let fast_took = fast_started.elapsed();
    assert_eq!(
        header(&snapshot, "authorization").as_deref(),
        Some("Bearer exchanged-for-kc-1")
    );
    assert!(fast_took < Duration::from_millis(500), "{fast_took:?}");

    let (err, took) = stuck_call.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        err,
        Some(CredentialError::Timeout {
            upstream: "stuck".into(),
            after: Duration::from_millis(1000)
        })
    );
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn refusals_and_missing_grants_are_clear_errors() {
    let mut refusing = AsState::new(3600);
    refusing.refuse_with = Some("invalid_grant");
    let base = authorization_server(Arc::new(refusing)).await;
    let source = build(
        "refused",
        &config(
            &base,
            r#"subject_token = "login_token", provider = "keycloak""#,
            "",
        ),
        &login_tokens(1),
    );
    assert_eq!(
        resolve(source.as_ref(), "user-0").await.err(),
        Some(CredentialError::Refused {
            upstream: "refused".into(),
            error: "invalid_grant".into()
        })
    );
    // A user without a keycloak grant is asked to sign in, before any exchange.
    assert_eq!(
        resolve(source.as_ref(), "user-without-grant").await.err(),
        Some(CredentialError::NotConnected {
            provider: "keycloak".into()
        })
    );
}

#[tokio::test]
async fn an_identity_assertion_can_be_the_subject_token() {
    let state = Arc::new(AsState::new(3600));
    let base = authorization_server(state.clone()).await;
    let seed = Zeroizing::new([7u8; 32]);
    let signer = AssertionSigner::new("https://gateway.example", "k", [("k".to_owned(), seed)])
        .unwrap_or_else(|e| panic!("{e}"));
    let deps = Dependencies {
        assertion_signer: Some(Arc::new(signer)),
        ..Dependencies::default()
    };
    let source = build(
        "asserted-sts",
        &config(&base, r#"subject_token = "identity_assertion""#, ""),
        &deps,
    );
    let a = resolve(source.as_ref(), "alice")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b = resolve(source.as_ref(), "bob")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = header(&a, "authorization").unwrap_or_default();
    let b = header(&b, "authorization").unwrap_or_default();
    assert!(a.starts_with("Bearer exchanged-jwt-"), "{a}");
    assert_ne!(a, b, "each user has their own exchanged token");
    assert_eq!(state.calls(), 2);
}
