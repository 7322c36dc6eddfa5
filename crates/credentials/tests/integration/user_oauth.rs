//! `user_oauth` and `user_secret`: discovery from the upstream's 401, DCR, PKCE, the code
//! exchange, one refresh per user across two "replicas" under concurrency, rotation,
//! `invalid_grant` → disconnected, revocation, and the refusals.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::join_all;
use mcpgate_core::SecretString;
use mcpgate_credentials::user_oauth::{Callback, ClientMetadata, UserGrant};
use mcpgate_credentials::{
    CredentialError, CredentialSource, Dependencies, UpstreamOAuth, UpstreamTarget,
    UserOAuthConfig, UserSecrets,
};
use url::Url;

use super::fakes::{DCR_CLIENT_ID, MemoryUserTokens, UpstreamAs, upstream_with_as};
use super::{header, parse, resolve};

const UPSTREAM: &str = "files";

fn target(url: Url) -> UpstreamTarget {
    UpstreamTarget {
        name: UPSTREAM.into(),
        url,
        timeout: Duration::from_secs(5),
    }
}

fn me() -> ClientMetadata {
    ClientMetadata {
        redirect_uri: Url::parse("https://gateway.example/connect/files/callback")
            .unwrap_or_else(|e| panic!("{e}")),
        client_name: "mcpgate".into(),
        metadata_document: None,
    }
}

fn oauth_config() -> UserOAuthConfig {
    match parse(r#"credentials = { kind = "user_oauth", expiry_skew_secs = 0 }"#)
        .entries()
        .next()
        .cloned()
    {
        Some(mcpgate_credentials::CredentialsConfig::UserOauth(c)) => c,
        other => panic!("{other:?}"),
    }
}

fn no_redirects() -> reqwest::Client {
    mcpgate_credentials::default_client().unwrap_or_else(|e| panic!("{e}"))
}

/// The browser's part: follows the authorization URL as `user` and returns the callback
/// query (`code`, `state`, `iss`).
async fn approve(url: &Url, user: &str) -> HashMap<String, String> {
    let mut url = url.clone();
    url.query_pairs_mut().append_pair("login_hint", user);
    let response = no_redirects()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 302, "the fake AS refused the request");
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let back = Url::parse(location).unwrap_or_else(|e| panic!("{e}"));
    back.query_pairs().into_owned().collect()
}

/// Connects `users` through the whole flow (one discovery and one registration shared).
async fn connect(
    client: &UpstreamOAuth,
    users: &[String],
    store: &MemoryUserTokens,
) -> Result<(), CredentialError> {
    let discovery = client.discover().await?;
    let registered = client.register(&discovery, &me()).await?;
    for user in users {
        let (url, pending) =
            client.authorize(discovery.clone(), registered.clone(), me().redirect_uri);
        let q = approve(&url, user).await;
        let grant = client
            .exchange(
                &pending,
                &Callback {
                    code: &q["code"],
                    state: &q["state"],
                    iss: q.get("iss").map(String::as_str),
                },
            )
            .await?;
        store.put(user, UPSTREAM, grant);
    }
    Ok(())
}

fn source(url: &Url, store: &Arc<MemoryUserTokens>) -> Arc<dyn CredentialSource> {
    let config = parse(r#"credentials = { kind = "user_oauth", expiry_skew_secs = 0 }"#);
    let deps = Dependencies {
        user_tokens: Some(store.clone()),
        ..Dependencies::default()
    };
    mcpgate_credentials::build(
        &target(url.join("mcp").unwrap_or_else(|e| panic!("{e}"))),
        &config,
        "credentials",
        &deps,
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
}

fn expire(store: &MemoryUserTokens, user: &str) {
    let mut grant: UserGrant = store
        .get(user, UPSTREAM)
        .unwrap_or_else(|| panic!("no grant"));
    grant.expires_at = Some(1);
    store.put(user, UPSTREAM, grant);
}

async fn setup(
    users: usize,
) -> (
    Url,
    Arc<UpstreamAs>,
    UpstreamOAuth,
    Arc<MemoryUserTokens>,
    Vec<String>,
) {
    let (base, fake) = upstream_with_as(3600).await;
    let client = UpstreamOAuth::new(
        &target(base.join("mcp").unwrap_or_else(|e| panic!("{e}"))),
        &oauth_config(),
        no_redirects(),
        "credentials",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let store = Arc::new(MemoryUserTokens::default());
    let users: Vec<String> = (0..users).map(|i| format!("user-{i}")).collect();
    connect(&client, &users, &store)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    (base, fake, client, store, users)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connected_users_get_their_own_token_and_one_refresh_each_across_replicas() {
    let (base, fake, _client, store, users) = setup(10).await;
    assert_eq!(fake.registrations.load(Ordering::SeqCst), 1, "one DCR");
    assert_eq!(fake.code_exchanges.load(Ordering::SeqCst), 10);
    // Two replicas sharing one store (and its lease).
    let replicas = [source(&base, &store), source(&base, &store)];
    for user in &users {
        let snap = resolve(replicas[0].as_ref(), user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let value = header(&snap, "authorization").unwrap_or_default();
        assert!(value.starts_with(&format!("Bearer at-{user}-")), "{value}");
        expire(&store, user);
    }
    // 20 concurrent calls per user, alternating replicas, every token due.
    let calls = (0..200).map(|i| {
        let user = users[i % 10].clone();
        let source = replicas[i % 2].clone();
        async move {
            let got = resolve(source.as_ref(), &user).await;
            (user, got)
        }
    });
    let mut mixups = 0;
    for (user, got) in join_all(calls).await {
        let snap = got.unwrap_or_else(|e| panic!("{user}: {e}"));
        let value = header(&snap, "authorization").unwrap_or_default();
        if !value.starts_with(&format!("Bearer at-{user}-")) {
            mixups += 1;
        }
    }
    assert_eq!(mixups, 0);
    for user in &users {
        assert_eq!(fake.refreshes_of(user), 1, "{user} refreshed once");
        // The rotated refresh token was persisted.
        let grant = store.get(user, UPSTREAM).unwrap_or_else(|| panic!("gone"));
        let rt = grant
            .refresh_token
            .map(|t| t.expose().to_owned())
            .unwrap_or_default();
        assert!(rt.starts_with(&format!("rt-{user}-")), "{rt}");
        assert!(grant.expires_at.is_some_and(|at| at > 1));
        assert_eq!(grant.client.client_id, DCR_CLIENT_ID);
    }
}

#[tokio::test]
async fn invalid_grant_disconnects_the_account_and_a_stranger_is_not_connected() {
    let (base, fake, _client, store, users) = setup(2).await;
    let source = source(&base, &store);
    fake.end_grants_of(&users[0]);
    expire(&store, &users[0]);
    let err = resolve(source.as_ref(), &users[0]).await.err();
    assert_eq!(
        err,
        Some(CredentialError::AccountNotConnected {
            upstream: UPSTREAM.into()
        })
    );
    assert!(store.get(&users[0], UPSTREAM).is_none(), "grant deleted");
    assert_eq!(store.disconnects.load(Ordering::SeqCst), 1);
    // The other user is untouched.
    assert!(resolve(source.as_ref(), &users[1]).await.is_ok());
    let err = resolve(source.as_ref(), "nobody").await.err();
    assert!(
        matches!(err, Some(CredentialError::AccountNotConnected { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_callback_must_carry_the_state_and_the_issuer() {
    let (_base, fake, client, _store, _users) = setup(0).await;
    let discovery = client.discover().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        discovery.scopes,
        ["files:read", "offline_access"],
        "challenge scope + offline_access"
    );
    let registered = client
        .register(&discovery, &me())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (state, iss) in [("forged", true), ("", false), ("ok", false)] {
        let (url, pending) =
            client.authorize(discovery.clone(), registered.clone(), me().redirect_uri);
        let q = approve(&url, "mallory").await;
        let state = if state == "ok" {
            q["state"].clone()
        } else {
            state.to_owned()
        };
        let wrong_iss = "https://evil.example".to_owned();
        let err = client
            .exchange(
                &pending,
                &Callback {
                    code: &q["code"],
                    state: &state,
                    iss: if iss {
                        q.get("iss").map(String::as_str)
                    } else {
                        Some(&wrong_iss)
                    },
                },
            )
            .await
            .err();
        assert!(
            matches!(err, Some(CredentialError::Refused { .. })),
            "{err:?}"
        );
    }
    assert_eq!(
        fake.code_exchanges.load(Ordering::SeqCst),
        0,
        "no code was exchanged"
    );
}

#[tokio::test]
async fn disconnect_revokes_the_refresh_token_at_the_upstream() {
    let (_base, fake, client, store, users) = setup(1).await;
    let grant = store
        .get(&users[0], UPSTREAM)
        .unwrap_or_else(|| panic!("no grant"));
    let revoked = client
        .revoke(&grant)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(revoked);
    let seen = fake
        .revoked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let rt = grant
        .refresh_token
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();
    assert_eq!(seen, [rt]);
    // The refresh token no longer works.
    let err = client
        .refresh(&store.get(&users[0], UPSTREAM).unwrap_or_else(|| panic!()))
        .await
        .err();
    assert_eq!(
        err.map(|e| e.to_string()).unwrap_or_default(),
        "the authorization server for upstream \"files\" refused: invalid_grant"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_or_authorization_server_is_a_clear_error() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        l.local_addr().unwrap_or_else(|e| panic!("{e}"))
    };
    let client = UpstreamOAuth::new(
        &target(Url::parse(&format!("http://{closed}/mcp")).unwrap_or_else(|e| panic!("{e}"))),
        &oauth_config(),
        no_redirects(),
        "credentials",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let err = client.discover().await.err();
    assert!(
        matches!(&err, Some(CredentialError::Unavailable { reason, .. }) if reason.contains("cannot connect")),
        "{err:?}"
    );
}

#[tokio::test]
async fn discovery_refuses_metadata_for_another_resource_and_no_pkce() {
    use axum::Json;
    use axum::routing::{get, post};
    let base = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (b1, b2) = (base.clone(), base.clone());
    let router = axum::Router::new()
        .route("/mcp", post(|| async { (axum::http::StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")]) }))
        .route("/other/mcp", post(|| async { (axum::http::StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")]) }))
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(move || {
                let b = b1.lock().unwrap_or_else(|e| e.into_inner()).clone();
                async move { Json(serde_json::json!({"resource": "https://elsewhere.example/mcp", "authorization_servers": [b]})) }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/other/mcp",
            get(move || {
                let b = b2.lock().unwrap_or_else(|e| e.into_inner()).clone();
                async move { Json(serde_json::json!({"resource": format!("{b}/other/mcp"), "authorization_servers": [b]})) }
            }),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get({
                let base = base.clone();
                move || {
                    let b = base.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    async move {
                        Json(serde_json::json!({"issuer": b, "authorization_endpoint": format!("{b}/a"), "token_endpoint": format!("{b}/t")}))
                    }
                }
            }),
        );
    let url = super::fakes::serve(router).await;
    *base.lock().unwrap_or_else(|e| e.into_inner()) = url.as_str().trim_end_matches('/').to_owned();
    for (path, why) in [("mcp", "another resource"), ("other/mcp", "PKCE S256")] {
        let client = UpstreamOAuth::new(
            &target(url.join(path).unwrap_or_else(|e| panic!("{e}"))),
            &oauth_config(),
            no_redirects(),
            "credentials",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let err = client.discover().await.err();
        assert!(
            matches!(&err, Some(CredentialError::Unavailable { reason, .. }) if reason.contains(why)),
            "{path}: {err:?}"
        );
    }
}

struct Secrets(HashMap<String, String>);

#[async_trait::async_trait]
impl UserSecrets for Secrets {
    async fn user_secret(
        &self,
        user_id: &str,
        _upstream: &str,
    ) -> Result<Option<SecretString>, CredentialError> {
        Ok(self.0.get(user_id).map(|s| SecretString::new(s.clone())))
    }
}

#[tokio::test]
async fn user_secrets_go_in_their_header_per_user() {
    let deps = Dependencies {
        user_secrets: Some(Arc::new(Secrets(HashMap::from([
            ("alice".into(), "pat-alice".into()),
            ("bob".into(), "pat-bob".into()),
        ])))),
        ..Dependencies::default()
    };
    let source = super::build(
        "tracker",
        r#"credentials = { kind = "user_secret", header = "x-api-key", scheme = "" }"#,
        &deps,
    );
    for user in ["alice", "bob"] {
        let snap = resolve(source.as_ref(), user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            header(&snap, "x-api-key").as_deref(),
            Some(format!("pat-{user}").as_str())
        );
    }
    let err = resolve(source.as_ref(), "carol").await.err();
    assert_eq!(
        err,
        Some(CredentialError::AccountNotConnected {
            upstream: "tracker".into()
        })
    );
}

#[test]
fn per_user_kinds_need_their_store_and_a_consistent_client() {
    let errors = mcpgate_credentials::build(
        &super::upstream("files"),
        &parse(r#"credentials = { kind = "user_oauth" }"#),
        "credentials",
        &Dependencies::default(),
    )
    .err()
    .unwrap_or_default();
    assert!(
        format!("{errors:?}").contains("per-user connection store"),
        "{errors:?}"
    );
    let problems = parse(
        r#"credentials = { kind = "user_oauth", registration = "pre_registered", client_secret = "x", scopes = ["a b"] }"#,
    )
    .validate("credentials");
    let text = format!("{problems:?}");
    assert!(text.contains("credentials.client_id"), "{text}");
    assert!(text.contains("credentials.scopes[0]"), "{text}");
}
