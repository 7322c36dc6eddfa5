//! OAuth clients, single-use authorization codes, consents.

use mcpgate_storage::{
    AuthorizationCode, CodeOutcome, NewAccessToken, NewRefreshToken, NewTokenFamily, OAuthClient,
    StorageError, now_ms,
};

use crate::support::Fixture;

fn client(id: &str, name: &str) -> OAuthClient {
    OAuthClient {
        client_id: id.into(),
        registration: "dcr".into(),
        client_name: name.into(),
        redirect_uris: r#"["http://127.0.0.1/cb"]"#.into(),
        token_endpoint_auth_method: "none".into(),
        secret_hash: None,
        metadata: "{}".into(),
        created_at: now_ms(),
        refresh_after: None,
    }
}

fn code(hash: &str, user: &str, expires_at: i64) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: hash.as_bytes().to_vec(),
        client_id: "c1".into(),
        user_id: user.into(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        code_challenge: "challenge".into(),
        resource: "https://gw.example.com/mcp/demo".into(),
        scopes: "mcp".into(),
        family_id: format!("family-of-{hash}"),
        expires_at,
        used_at: None,
        created_at: now_ms(),
    }
}

async fn clients(f: Fixture) {
    let s = &f.store;
    assert_eq!(s.get_client("c1").await.unwrap(), None);
    s.upsert_client(&client("c1", "First")).await.unwrap();
    assert_eq!(
        s.get_client("c1").await.unwrap().unwrap().client_name,
        "First"
    );
    // Re-registration (a re-fetched metadata document) replaces it.
    let mut again = client("c1", "Renamed");
    again.refresh_after = Some(42);
    s.upsert_client(&again).await.unwrap();
    assert_eq!(s.get_client("c1").await.unwrap(), Some(again));
}
both_backends!(oauth_clients_upsert, super::clients);

/// Registered clients nobody used go after a while; used, young or configured ones stay.
async fn unused_clients(f: Fixture) {
    let s = &f.store;
    let user = f.user("sweep@example.com").await;
    let old = now_ms() - 10_000;
    let aged = |id: &str, registration: &str| {
        let mut c = client(id, id);
        c.created_at = old;
        c.registration = registration.into();
        c
    };
    for c in [
        aged("unused", "dcr"),
        aged("with-code", "dcr"),
        aged("with-token", "dcr"),
        aged("https://app.example/doc.json", "cimd"),
        client("young", "dcr"),
    ] {
        s.upsert_client(&c).await.unwrap();
    }
    let mut c = code("sweep-code", &user.id, now_ms() + 60_000);
    c.client_id = "with-code".into();
    s.insert_code(&c).await.unwrap();
    let now = now_ms();
    s.create_token_family(
        &NewTokenFamily {
            id: "sweep-family".into(),
            user_id: user.id.clone(),
            client_id: Some("with-token".into()),
            resource: Some("https://gw.example.com/mcp/demo".into()),
            scopes: "mcp".into(),
            expires_at: now + 60_000,
            created_at: now,
        },
        &NewRefreshToken {
            token_hash: b"sweep-r".to_vec(),
            family_id: "sweep-family".into(),
            user_id: user.id.clone(),
            expires_at: now + 60_000,
            created_at: now,
        },
        &NewAccessToken {
            token_hash: b"sweep-a".to_vec(),
            kind: "oauth".into(),
            family_id: Some("sweep-family".into()),
            user_id: user.id.clone(),
            client_id: Some("with-token".into()),
            resource: Some("https://gw.example.com/mcp/demo".into()),
            scopes: "mcp".into(),
            expires_at: now + 60_000,
            created_at: now,
        },
    )
    .await
    .unwrap();
    assert_eq!(s.delete_unused_clients(now_ms() - 5_000).await.unwrap(), 1);
    assert_eq!(s.get_client("unused").await.unwrap(), None);
    for kept in [
        "with-code",
        "with-token",
        "https://app.example/doc.json",
        "young",
    ] {
        assert!(s.get_client(kept).await.unwrap().is_some(), "{kept}");
    }
    assert_eq!(s.delete_unused_clients(now_ms() - 5_000).await.unwrap(), 0);
}
both_backends!(unused_registered_clients_are_swept, super::unused_clients);

async fn codes(f: Fixture) {
    let s = &f.store;
    let user = f.user("code@example.com").await;
    s.insert_code(&code("k1", &user.id, now_ms() + 60_000))
        .await
        .unwrap();
    s.insert_code(&code("old", &user.id, now_ms() - 1))
        .await
        .unwrap();

    match s.consume_code(b"k1").await.unwrap() {
        CodeOutcome::Fresh(c) => assert_eq!(c.resource, "https://gw.example.com/mcp/demo"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.consume_code(b"k1").await.unwrap(),
        CodeOutcome::Reused {
            family_id: "family-of-k1".into()
        }
    );
    assert_eq!(s.consume_code(b"old").await.unwrap(), CodeOutcome::Invalid);
    assert_eq!(s.consume_code(b"nope").await.unwrap(), CodeOutcome::Invalid);
    let dup = s
        .insert_code(&code("k1", &user.id, now_ms() + 60_000))
        .await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))));
}
both_backends!(authorization_codes_single_use, super::codes);

async fn consents(f: Fixture) {
    let s = &f.store;
    let user = f.user("consent@example.com").await;
    let (a, b) = ("https://gw.example/mcp/a", "https://gw.example/mcp/b");
    assert_eq!(s.get_consent(&user.id, "c1", a).await.unwrap(), None);
    s.put_consent(&user.id, "c1", a, "mcp:read").await.unwrap();
    s.put_consent(&user.id, "c1", a, "mcp mcp:read")
        .await
        .unwrap();
    assert_eq!(
        s.get_consent(&user.id, "c1", a).await.unwrap().as_deref(),
        Some("mcp mcp:read")
    );
    // Per upstream: consent for `a` is none for `b`; each keeps its own scopes.
    assert_eq!(s.get_consent(&user.id, "c1", b).await.unwrap(), None);
    s.put_consent(&user.id, "c1", b, "mcp:read").await.unwrap();
    assert_eq!(
        s.get_consent(&user.id, "c1", b).await.unwrap().as_deref(),
        Some("mcp:read")
    );
    assert_eq!(
        s.get_consent(&user.id, "c1", a).await.unwrap().as_deref(),
        Some("mcp mcp:read")
    );
    assert_eq!(s.get_consent(&user.id, "c2", a).await.unwrap(), None);
    // Withdrawing a client's consent withdraws it for every upstream.
    s.delete_consent(&user.id, "c1").await.unwrap();
    assert_eq!(s.get_consent(&user.id, "c1", b).await.unwrap(), None);
    assert!(matches!(
        s.delete_consent(&user.id, "c1").await,
        Err(StorageError::NotFound)
    ));
}
both_backends!(
    consents_remembered_per_user_client_and_upstream,
    super::consents
);

async fn pending_logins(f: Fixture) {
    use mcpgate_storage::PendingLogin;
    let s = &f.store;
    let login = |hash: &str, expires_at: i64| PendingLogin {
        state_hash: hash.as_bytes().to_vec(),
        provider_id: "corp".into(),
        nonce: "n".into(),
        pkce_verifier: b"sealed".to_vec(),
        authorize_request: r#"{"return_to":"/"}"#.into(),
        browser_binding: b"binding".to_vec(),
        expires_at,
        used_at: None,
        created_at: now_ms(),
    };
    s.create_pending_login(&login("s1", now_ms() + 60_000))
        .await
        .unwrap();
    s.create_pending_login(&login("old", now_ms() - 1))
        .await
        .unwrap();
    let got = s.consume_pending_login(b"s1").await.unwrap().unwrap();
    assert_eq!(got.provider_id, "corp");
    assert!(got.used_at.is_some());
    assert_eq!(
        s.consume_pending_login(b"s1").await.unwrap(),
        None,
        "single use"
    );
    assert_eq!(
        s.consume_pending_login(b"old").await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(s.consume_pending_login(b"none").await.unwrap(), None);
}
both_backends!(pending_logins_single_use, super::pending_logins);
