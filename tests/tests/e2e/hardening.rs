//! Abuse found when the gateway was attacked as a penetration tester would (issue 19): each
//! test shows what a client sees once it is fixed.

use std::time::{Duration, Instant};

use mcpgate_tests::{TestDb, TestServer};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::oauth::{AuthRig, call_ok, list_tools_with_host, tokens};

// ---- 7. A refresh retried or sent twice at once is not theft ----

async fn refresh(rig: &AuthRig, client_id: &str, token: &str) -> (StatusCode, Value) {
    let r = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn refresh_twice_at_once(db: TestDb) {
    let rig = AuthRig::start_on(db, |_| {}).await;
    // The default `oauth.refresh_reuse_grace_secs`.
    let grace = Duration::from_secs(5);
    let (client_id, first) = tokens(&rig).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let ((s1, a), (s2, b)) = tokio::join!(
        refresh(&rig, &client_id, rt1),
        refresh(&rig, &client_id, rt1)
    );
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{a} {b}");
    assert_eq!(a["access_token"], b["access_token"], "the same pair");
    assert_eq!(a["refresh_token"], b["refresh_token"], "the same pair");
    assert_ne!(a["refresh_token"].as_str(), Some(rt1));
    let access = a["access_token"].as_str().unwrap();
    assert_eq!(call_ok(&rig, access).await, StatusCode::OK);
    // A retry a moment later: still the same pair.
    let (s3, c) = refresh(&rig, &client_id, rt1).await;
    assert_eq!(s3, StatusCode::OK);
    assert_eq!(c["refresh_token"], a["refresh_token"]);
    // After the grace period the old token is reuse: the whole family goes.
    tokio::time::sleep(grace + Duration::from_millis(500)).await;
    let (s4, d) = refresh(&rig, &client_id, rt1).await;
    assert_eq!(
        (s4, d["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(call_ok(&rig, access).await, StatusCode::UNAUTHORIZED);
    let (s5, _) = refresh(&rig, &client_id, a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s5, StatusCode::BAD_REQUEST);
}

mod refresh_twice_at_once_gets_one_pair_and_reuse_after_the_grace_revokes {
    #[tokio::test(flavor = "multi_thread")]
    async fn sqlite() {
        super::refresh_twice_at_once(mcpgate_tests::TestDb::sqlite().unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn postgres() {
        if let Some(db) = mcpgate_tests::TestDb::postgres("hardening_refresh_grace")
            .await
            .unwrap()
        {
            super::refresh_twice_at_once(db).await;
        }
    }
}

// ---- 10. Revocation reaches every replica at once ----

async fn revoke(rig: &AuthRig, client_id: &str, token: &str) {
    let r = Client::new()
        .post(rig.url("/oauth/revoke"))
        .form(&[("token", token), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// How long until `replica` refuses `access` (a panic after 5 s).
async fn refused_after(replica: &TestServer, host: &str, access: &str) -> Duration {
    let started = Instant::now();
    loop {
        let status = list_tools_with_host(&replica.base, access, Some(host)).await;
        if status == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the other replica still accepts a revoked token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_on_one_replica_is_refused_by_another_within_a_second() {
    let Some(db) = TestDb::postgres("hardening_revoke_two_replicas")
        .await
        .unwrap()
    else {
        return;
    };
    // A long cache: only the announcement can make replica B notice in time.
    let rig = AuthRig::start_on(db, |c| c.oauth.token_cache_ttl_secs = 600).await;
    let b = rig.replica().await;
    let host = rig.gateway.base.trim_start_matches("http://").to_owned();
    let (client_id, first) = tokens(&rig).await;
    // An access token, revoked by itself.
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        list_tools_with_host(&b.base, access, Some(&host)).await,
        StatusCode::OK
    );
    revoke(&rig, &client_id, access).await;
    let took = refused_after(&b, &host, access).await;
    assert!(
        took < Duration::from_secs(1),
        "replica B refused it after {took:?}"
    );
    // A refresh token's family: its access tokens go with it.
    let (status, second) =
        refresh(&rig, &client_id, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        list_tools_with_host(&b.base, access, Some(&host)).await,
        StatusCode::OK
    );
    revoke(&rig, &client_id, second["refresh_token"].as_str().unwrap()).await;
    let took = refused_after(&b, &host, access).await;
    assert!(
        took < Duration::from_secs(1),
        "replica B refused the family after {took:?}"
    );
    b.stop().await.unwrap();
}
