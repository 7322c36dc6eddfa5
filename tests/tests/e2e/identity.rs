//! Federated sign-in through a real, certified OIDC server (`oidc-provider`, shaped as a
//! Keycloak realm), and the identity service under concurrency: one user-info call per grant
//! and TTL, one refresh per expiry across requests and replicas, dead grants end sessions.

use std::sync::Arc;
use std::time::Duration;

use mcpgate_core::{ProviderSettings, SecretString};
use mcpgate_fixture_oidc_provider::{CLIENT_SECRET, Realm, RealmOptions};
use mcpgate_server::Config;
use mcpgate_tests::fixtures::FixtureUpstream;
use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::oauth::{browser, pkce};
use crate::proxy::upstream_config;

const CB: &str = "http://127.0.0.1/callback";

struct IdRig {
    realm: Realm,
    gateway: TestServer,
    /// The gateway's state, to call the identity service as the proxy does.
    state: mcpgate_server::app::AppState,
    db: TestDb,
    _upstream: FixtureUpstream,
    config: Config,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl IdRig {
    async fn start(
        test: &str,
        options: RealmOptions,
        db: TestDb,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let options = RealmOptions {
            redirect_uris: vec![format!("{base}/callback/corp")],
            ..options
        };
        let realm = Realm::start(test, options).await.unwrap()?;
        let upstream = FixtureUpstream::start().await.unwrap();
        let mut config = test_config(db.url());
        config.listen = format!("127.0.0.1:{port}").parse().unwrap();
        config.public_url = base;
        config.upstreams = vec![upstream_config("demo", &upstream.url)];
        config.auth.provider_token_skew_secs = 0;
        config.providers = vec![ProviderSettings {
            id: "corp".into(),
            kind: "keycloak".into(),
            display_name: Some("Corp SSO".into()),
            client_id: "mcpgate".into(),
            client_secret: Some(SecretString::new(CLIENT_SECRET)),
            scopes: vec!["email".into(), "profile".into()],
            options: json!({ "server_url": realm.server_url, "realm": "test", "token_auth": "client_secret_post" })
                .as_object()
                .cloned()
                .unwrap(),
            ..Default::default()
        }];
        adjust(&mut config);
        let mut state = None;
        let gateway = TestServer::start_with(config.clone(), |s| {
            state = Some(s.clone());
            s
        })
        .await
        .unwrap();
        Some(Self {
            realm,
            gateway,
            state: state.unwrap(),
            db,
            _upstream: upstream,
            config,
        })
    }

    fn url(&self, path: &str) -> String {
        self.gateway.url(path)
    }

    /// A rig on a fresh SQLite database with alice signed in; her mcpgate access token.
    async fn with_alice(
        test: &str,
        options: RealmOptions,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<(Self, String)> {
        let rig = Self::start(test, options, TestDb::sqlite().unwrap(), adjust).await?;
        let t = federated_tokens(&rig, &browser(), "alice").await.unwrap();
        let access = t["access_token"].as_str().unwrap().to_owned();
        Some((rig, access))
    }
}

/// Registers a public client (DCR) redirecting to `CB`; its client id.
async fn register(rig: &IdRig) -> String {
    let r = Client::new()
        .post(rig.url("/oauth/register"))
        .json(&json!({ "client_name": "Federated Client", "redirect_uris": [CB] }))
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// "Sign in with Corp SSO" on the way through the client's authorization request.
fn sign_in_url(rig: &IdRig, client_id: &str, challenge: &str, login_hint: &str) -> String {
    let mut authorize = Url::parse(&rig.url("/oauth/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CB)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "s")
        .append_pair("resource", &rig.url("/mcp/demo"));
    let return_to = format!("{}?{}", authorize.path(), authorize.query().unwrap());
    let mut url = Url::parse(&rig.url("/login/corp")).unwrap();
    url.query_pairs_mut()
        .append_pair("return_to", &return_to)
        .append_pair("login_hint", login_hint);
    url.to_string()
}

/// An OAuth client that signs in through the realm: DCR, authorize, "Sign in with Corp SSO",
/// the realm's headless login (by login_hint), consent, code exchange. Returns the tokens (and
/// the client's id as `client_id`).
async fn federated_tokens(rig: &IdRig, b: &Client, login_hint: &str) -> Result<Value, String> {
    let client_id = register(rig).await;
    let p = pkce();
    let mut next = sign_in_url(rig, &client_id, &p.challenge, login_hint);
    for _ in 0..20 {
        if next.starts_with(CB) {
            let back = Url::parse(&next).unwrap();
            let code = back
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| format!("no code: {next}"))?;
            let token_url = rig.url("/oauth/token");
            let mut t =
                crate::oauth::exchange_plain(&token_url, &client_id, &code, &p.verifier, CB).await;
            t["client_id"] = json!(client_id);
            return Ok(t);
        }
        let r = b.get(&next).send().await.unwrap();
        if r.status().is_redirection() {
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            next = Url::parse(&next).unwrap().join(&loc).unwrap().to_string();
            continue;
        }
        let status = r.status();
        let html = r.text().await.unwrap();
        // Consent before federating: approve, then on to the realm.
        if status == StatusCode::OK && html.contains("action=\"/login/corp\"") {
            let field = |name: &str| crate::oauth::hidden_field(&html, name);
            let r = b
                .post(rig.url("/login/corp"))
                .form(&[
                    ("csrf", field("csrf")),
                    ("return_to", field("return_to")),
                    ("login_hint", field("login_hint")),
                    ("decision", "approve".into()),
                ])
                .send()
                .await
                .unwrap();
            assert!(r.status().is_redirection(), "{}", r.status());
            next = r.headers()["location"].to_str().unwrap().to_owned();
            continue;
        }
        if status == StatusCode::OK && html.contains("action=\"/oauth/authorize\"") {
            let field = |name: &str| crate::oauth::hidden_field(&html, name);
            let r = b
                .post(rig.url("/oauth/authorize"))
                .form(&[
                    ("csrf", field("csrf")),
                    ("request", field("request")),
                    ("decision", "approve".into()),
                ])
                .send()
                .await
                .unwrap();
            next = r.headers()["location"].to_str().unwrap().to_owned();
            if next.starts_with('/') {
                next = rig.url(&next);
            }
            continue;
        }
        return Err(format!("{status}: {html}"));
    }
    Err("too many redirects".into())
}

async fn tools_list(base: &str, token: &str) -> StatusCode {
    crate::oauth::list_tools(base, token).await
}

/// Opaque access tokens that expire after 2 s (a refresh comes quickly).
fn short_lived_opaque() -> RealmOptions {
    RealmOptions {
        access_token_ttl: 2,
        ..keycloak_opaque()
    }
}

fn keycloak_opaque() -> RealmOptions {
    RealmOptions {
        jwt_access_tokens: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn federated_sign_in_through_keycloak_inside_the_oauth_flow() {
    let db = TestDb::sqlite().unwrap();
    let Some(rig) = IdRig::start("federated_sign_in", RealmOptions::default(), db, |_| {}).await
    else {
        return;
    };
    // The sign-in page offers the provider.
    let page = browser()
        .get(rig.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with Corp SSO"), "{page}");
    let t = federated_tokens(&rig, &browser(), "alice").await.unwrap();
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(tools_list(&rig.gateway.base, access).await, StatusCode::OK);
    assert!(
        t.get("id_token").is_none(),
        "the provider's tokens never reach the client"
    );
    // The user was created from the provider's verified email and linked.
    let store = rig.db.store().await.unwrap();
    let user = store
        .find_user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    let grant = store.latest_live_grant(&user.id).await.unwrap().unwrap();
    assert!(
        !grant.access_token.windows(3).any(|w| w == b"eyJ"),
        "sealed at rest"
    );
    // Signing in again links to the same user.
    federated_tokens(&rig, &browser(), "alice").await.unwrap();
    assert_eq!(store.list_users(None, 100).await.unwrap().len(), 1);
}

/// The Python `mcp` SDK, headless, in both protocol eras: discovers mcpgate, registers,
/// chooses "Sign in with Corp SSO" on the sign-in page, signs in at the realm, consents, calls
/// a tool, and keeps calling after mcpgate's access token expired (a refresh).
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_signs_in_through_keycloak_and_calls_a_tool() {
    let Some(python) =
        mcpgate_tests::fixtures::python("python_sdk_signs_in_through_keycloak").unwrap()
    else {
        return;
    };
    let db = TestDb::sqlite().unwrap();
    let Some(rig) = IdRig::start("python_federated", RealmOptions::default(), db, |c| {
        c.oauth.access_token_ttl_secs = 2;
    })
    .await
    else {
        return;
    };
    for mode in ["legacy", "2026-07-28"] {
        rig.realm.reset_counts().await.unwrap();
        let report = mcpgate_tests::fixtures::python_oauth_flow(
            &python,
            &rig.url("/mcp/demo"),
            mode,
            ("", ""),
            &json!({ "federated": { "provider": "corp", "login_hint": "alice" }, "wait_for_expiry": 2.5 }),
        )
        .await
        .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let what = format!("{mode}: {report}");
        assert!(
            report["tools"].as_array().unwrap().contains(&json!("echo")),
            "{what}"
        );
        assert_eq!(report["echo"], json!(["first call"]), "{what}");
        assert_eq!(
            report["echo_after_expiry"],
            json!(["after expiry"]),
            "{what}"
        );
        assert!(report["tokens_issued"].as_u64().unwrap() >= 2, "{what}");
        // The sign-in went through the realm (its authorization endpoint, the code exchange).
        assert!(rig.realm.count("auth").await.unwrap() >= 1, "{what}");
        assert!(rig.realm.count("token").await.unwrap() >= 1, "{what}");
    }
    let store = rig.db.store().await.unwrap();
    let alice = store
        .find_user_by_email("alice@example.com")
        .await
        .unwrap()
        .expect("the realm's user was created");
    assert!(store.latest_live_grant(&alice.id).await.unwrap().is_some());
    assert_eq!(
        store.list_users(None, 100).await.unwrap().len(),
        1,
        "both sign-ins link one user"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_concurrent_requests_make_one_userinfo_call_per_ttl() {
    let db = TestDb::sqlite().unwrap();
    let Some(rig) = IdRig::start("one_userinfo", keycloak_opaque(), db, |c| {
        c.auth.user_context_ttl_secs = 5
    })
    .await
    else {
        return;
    };
    let t = federated_tokens(&rig, &browser(), "alice").await.unwrap();
    let access = Arc::new(t["access_token"].as_str().unwrap().to_owned());
    let burst = || {
        let access = access.clone();
        let base = rig.gateway.base.clone();
        async move {
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let (access, base) = (access.clone(), base.clone());
                    tokio::spawn(async move { tools_list(&base, &access).await })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), StatusCode::OK);
            }
        }
    };
    tokio::time::sleep(Duration::from_millis(5100)).await; // the sign-in's own context expires
    rig.realm.reset_counts().await.unwrap();
    burst().await;
    assert_eq!(
        rig.realm.count("userinfo").await.unwrap(),
        1,
        "cold: one call for 100 requests"
    );
    burst().await;
    assert_eq!(rig.realm.count("userinfo").await.unwrap(), 1, "warm: none");
    tokio::time::sleep(Duration::from_millis(5100)).await;
    burst().await;
    assert_eq!(
        rig.realm.count("userinfo").await.unwrap(),
        2,
        "after the TTL: one more"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_concurrent_requests_after_expiry_make_one_refresh() {
    let Some((rig, access)) = IdRig::with_alice("one_refresh", short_lived_opaque(), |c| {
        c.auth.user_context_ttl_secs = 1
    })
    .await
    else {
        return;
    };
    tokio::time::sleep(Duration::from_millis(2200)).await; // provider token and context expired
    rig.realm.reset_counts().await.unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (access, base) = (access.clone(), rig.gateway.base.clone());
            tokio::spawn(async move { tools_list(&base, &access).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK, "every request succeeds");
    }
    assert_eq!(
        rig.realm.count("token").await.unwrap(),
        1,
        "exactly one refresh (rotation on)"
    );
    assert_eq!(rig.realm.count("userinfo").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_postgres_refresh_exactly_once() {
    let Some(db) = TestDb::postgres("two_replicas_refresh_once").await.unwrap() else {
        return;
    };
    let options = short_lived_opaque();
    let Some(rig) = IdRig::start("two_replicas", options, db, |c| {
        c.auth.user_context_ttl_secs = 1
    })
    .await
    else {
        return;
    };
    // A second replica: same database, same keys, same public URL, its own pool and caches.
    // Reached as behind a load balancer: on its own port, with the public Host.
    let public_host = rig
        .gateway
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut config = rig.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let replica = TestServer::start(config).await.unwrap();
    let t = federated_tokens(&rig, &browser(), "alice").await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    rig.realm.reset_counts().await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let base = if i % 2 == 0 {
                rig.gateway.base.clone()
            } else {
                replica.base.clone()
            };
            let (access, barrier, host) = (access.clone(), barrier.clone(), public_host.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                crate::oauth::list_tools_with_host(&base, &access, Some(&host)).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        rig.realm.count("token").await.unwrap(),
        1,
        "one refresh across both replicas"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_refused_with_invalid_grant_ends_the_grant_and_the_client_gets_401() {
    let db = TestDb::sqlite().unwrap();
    let Some(rig) = IdRig::start("invalid_grant", short_lived_opaque(), db, |c| {
        c.auth.user_context_ttl_secs = 1
    })
    .await
    else {
        return;
    };
    // The whole token response: the client's refresh token is checked at the end.
    let t = federated_tokens(&rig, &browser(), "alice").await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_owned();
    // Spend the stored refresh token behind mcpgate's back: with rotation on, mcpgate's copy
    // is now a reused token and the realm answers invalid_grant.
    let store = rig.db.store().await.unwrap();
    let user = store
        .find_user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    let grant = store.latest_live_grant(&user.id).await.unwrap().unwrap();
    let keys = mcpgate_server::app::secret_box(&rig.config).unwrap();
    let rt = keys
        .open(
            grant.refresh_token.as_deref().unwrap(),
            &mcpgate_server::identity::place("refresh_token", &grant.id),
        )
        .unwrap();
    let r = Client::new()
        .post(format!(
            "{}/protocol/openid-connect/token",
            rig.realm.issuer
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &String::from_utf8_lossy(&rt)),
            ("client_id", "mcpgate"),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let status = tools_list(&rig.gateway.base, &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "sign in again");
    assert!(
        store.get_grant(&grant.id).await.unwrap().dead_at.is_some(),
        "the grant is dead"
    );
    // And it stays that way: the same token does not go on as a local account's (without the
    // roles the provider's claims gave or took), and the client's refresh token is dead too.
    assert_eq!(
        tools_list(&rig.gateway.base, &access).await,
        StatusCode::UNAUTHORIZED,
        "still signed out"
    );
    let r = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", t["client_id"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_down_gives_a_clear_502_and_a_warm_context_is_still_served() {
    let Some((rig, access)) = IdRig::with_alice("provider_down", keycloak_opaque(), |c| {
        c.auth.user_context_ttl_secs = 3
    })
    .await
    else {
        return;
    };
    assert_eq!(tools_list(&rig.gateway.base, &access).await, StatusCode::OK);
    let IdRig { realm, gateway, .. } = rig;
    drop(realm); // the identity provider goes away
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        tools_list(&gateway.base, &access).await,
        StatusCode::OK,
        "cached context within its TTL"
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let started = std::time::Instant::now();
    assert_eq!(
        tools_list(&gateway.base, &access).await,
        StatusCode::BAD_GATEWAY
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The provider rejects an access token mcpgate still thought good (401 at user info): one
/// refresh, one retry, and the request succeeds; nothing more is asked while warm.
#[tokio::test(flavor = "multi_thread")]
async fn a_userinfo_401_gets_one_refresh_and_one_retry() {
    let Some((rig, access)) = IdRig::with_alice("userinfo_401", keycloak_opaque(), |c| {
        c.auth.user_context_ttl_secs = 1
    })
    .await
    else {
        return;
    };
    tokio::time::sleep(Duration::from_millis(1100)).await; // the context expired
    assert!(rig.realm.revoke_access_tokens().await.unwrap() >= 1);
    rig.realm.reset_counts().await.unwrap();
    assert_eq!(tools_list(&rig.gateway.base, &access).await, StatusCode::OK);
    assert_eq!(rig.realm.count("token").await.unwrap(), 1, "one refresh");
    assert_eq!(
        rig.realm.count("userinfo").await.unwrap(),
        2,
        "the rejected call and one retry"
    );
    assert_eq!(tools_list(&rig.gateway.base, &access).await, StatusCode::OK);
    assert_eq!(rig.realm.count("userinfo").await.unwrap(), 2, "warm again");
}

/// A provider slower than `auth.provider_timeout_secs`: the request gets a clear 504 in that
/// time, and the refresh it started still completes and is kept (rotation on: had it been
/// cancelled after the provider rotated the refresh token, the user would be signed out).
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_provider_gives_504_in_time_and_the_refresh_under_way_is_kept() {
    let options = short_lived_opaque();
    let Some((rig, access)) = IdRig::with_alice("slow_provider", options, |c| {
        c.auth.user_context_ttl_secs = 1;
        c.auth.provider_timeout_secs = 1;
    })
    .await
    else {
        return;
    };
    tokio::time::sleep(Duration::from_millis(2200)).await; // token and context expired
    rig.realm.reset_counts().await.unwrap();
    rig.realm.set_delay(2500).await.unwrap();
    let started = std::time::Instant::now();
    let r = Client::new()
        .post(format!("{}/mcp/demo", rig.gateway.base))
        .bearer_auth(&access)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2400),
        "answered after {took:?}, not within the 1 s timeout"
    );
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("identity provider"),
        "{body}"
    );
    // The provider answers the refresh 2.5 s after it was asked; then the next request uses
    // the stored result.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    rig.realm.set_delay(0).await.unwrap();
    assert_eq!(tools_list(&rig.gateway.base, &access).await, StatusCode::OK);
    assert_eq!(
        rig.realm.count("token").await.unwrap(),
        1,
        "the one refresh was kept, not repeated"
    );
}

/// One database connection, and the identity provider parked mid-call for one user: another
/// user's requests still complete, because nothing holds the connection across the call.
#[tokio::test(flavor = "multi_thread")]
async fn a_pool_of_one_serves_others_while_the_provider_is_parked() {
    let db = TestDb::sqlite().unwrap();
    let Some(rig) = IdRig::start("parked_provider", keycloak_opaque(), db, |c| {
        c.auth.user_context_ttl_secs = 3;
        c.database.max_connections = 1;
    })
    .await
    else {
        return;
    };
    let alice = federated_tokens(&rig, &browser(), "alice").await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(3100)).await; // alice's context expired
    // bob signs in now: his context is warm for 3 s.
    let bob = federated_tokens(&rig, &browser(), "bob").await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    rig.realm.reset_counts().await.unwrap();
    rig.realm.set_delay(4000).await.unwrap();
    let base = rig.gateway.base.clone();
    let parked = tokio::spawn({
        let (base, alice) = (base.clone(), alice.clone());
        async move { tools_list(&base, &alice).await }
    });
    // Wait until alice's user-info call is at the provider, parked.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while rig.realm.count("userinfo").await.unwrap() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "alice never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert_eq!(tools_list(&base, &bob).await, StatusCode::OK);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bob waited {:?} behind the parked call",
        started.elapsed()
    );
    assert!(
        !parked.is_finished(),
        "alice is still parked at the provider"
    );
    assert_eq!(parked.await.unwrap(), StatusCode::OK);
}

/// The provider token for upstreams that need the user's own identity-provider token: the
/// current one while it is valid, a refreshed one (exactly one refresh for 20 concurrent
/// callers) once it expired, accepted by the provider; none for a local account.
#[tokio::test(flavor = "multi_thread")]
async fn the_provider_token_for_upstreams_is_current_and_refreshed_once() {
    let options = short_lived_opaque();
    let Some((rig, _access)) = IdRig::with_alice("provider_token", options, |_| {}).await else {
        return;
    };
    let store = rig.db.store().await.unwrap();
    let alice = store
        .find_user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    let identity = rig.state.identity.clone();
    let first = identity.provider_token(&alice.id).await.unwrap().unwrap();
    let userinfo = format!(
        "{}/realms/test/protocol/openid-connect/userinfo",
        rig.realm.server_url
    );
    let accepted = |token: String| {
        let userinfo = userinfo.clone();
        async move {
            let r = Client::new()
                .get(userinfo)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            r.status()
        }
    };
    assert_eq!(accepted(first.expose().to_owned()).await, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(2200)).await; // expired
    rig.realm.reset_counts().await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (identity, user) = (identity.clone(), alice.id.clone());
            tokio::spawn(async move { identity.provider_token(&user).await })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap().unwrap().unwrap().expose().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
    let fresh = tokens.into_iter().next().unwrap();
    assert_ne!(fresh, first.expose(), "a new token after expiry");
    assert_eq!(rig.realm.count("token").await.unwrap(), 1, "one refresh");
    assert_eq!(accepted(fresh).await, StatusCode::OK);

    // A local account has no provider token.
    let local = store
        .create_user(&mcpgate_storage::NewUser {
            email: "local@example.com".into(),
            display_name: None,
            password_hash: None,
            is_admin: false,
        })
        .await
        .unwrap();
    assert!(identity.provider_token(&local.id).await.unwrap().is_none());
}

/// A browser with only these cookies (by `name=value`) for the gateway.
fn browser_with(rig: &IdRig, cookies: &[&str]) -> Client {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let url = Url::parse(&rig.gateway.base).unwrap();
    for c in cookies {
        jar.add_cookie_str(c, &url);
    }
    Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// MCP-AUTH AS-13/AS-14 for federated sign-in: a client this browser has not approved gets
/// the consent page before anyone is sent to the identity provider and before any upstream
/// state exists; the approval is remembered per client in a sealed cookie; a forged cookie, a
/// consent form of another client or a denial get nowhere near the provider.
#[tokio::test(flavor = "multi_thread")]
async fn as13_consent_comes_before_federating_and_is_remembered_per_client() {
    let db = TestDb::sqlite().unwrap();
    let Some(rig) = IdRig::start("consent_first", RealmOptions::default(), db, |_| {}).await else {
        return;
    };
    let (first, second) = (register(&rig).await, register(&rig).await);
    let p = pkce();
    let b = browser();
    rig.realm.reset_counts().await.unwrap();

    // A new client: the consent page, naming the client, the provider and the redirect host,
    // unframeable; the realm has not been asked anything.
    let r = b
        .get(sign_in_url(&rig, &first, &p.challenge, "alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains(&rig.realm.server_url),
        "the form may go on to the realm: {csp}"
    );
    let html = r.text().await.unwrap();
    for text in ["Federated Client", "Corp SSO", "<strong>127.0.0.1</strong>"] {
        assert!(html.contains(text), "{text} missing: {html}");
    }
    assert_eq!(
        rig.realm.counts().await.unwrap().len(),
        0,
        "nothing federated yet"
    );
    let field = |html: &str, name: &str| crate::oauth::hidden_field(html, name);
    let approve = |b: &Client, html: &str, decision: &'static str| {
        let form = [
            ("csrf", field(html, "csrf")),
            ("return_to", field(html, "return_to")),
            ("login_hint", field(html, "login_hint")),
            ("decision", decision.to_owned()),
        ];
        b.post(rig.url("/login/corp")).form(&form).send()
    };

    // A forged token does not approve; then the real approval goes on to the realm, and after
    // the sign-in the authorization completes without asking again.
    let forged = html.replace(&field(&html, "csrf"), "forged");
    let r = approve(&b, &forged, "approve").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = approve(&b, &html, "approve").await.unwrap();
    assert!(r.status().is_redirection());
    let consent_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("mcpgate_consent="))
        .expect("the approval is remembered");
    assert!(consent_cookie.contains("HttpOnly") && consent_cookie.contains("SameSite=Lax"));
    let mut next = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        next.starts_with(&rig.realm.server_url),
        "on to the realm: {next}"
    );
    for _ in 0..10 {
        let r = b.get(&next).send().await.unwrap();
        assert!(
            r.status().is_redirection(),
            "{}: {}",
            r.status(),
            r.text().await.unwrap()
        );
        let loc = r.headers()["location"].to_str().unwrap();
        next = Url::parse(&next).unwrap().join(loc).unwrap().to_string();
        if next.starts_with(CB) {
            break;
        }
    }
    assert!(next.contains("code="), "no second consent page: {next}");

    // A fresh browser session keeping only the consent cookie goes straight to the realm for
    // that client, and is asked again for another one.
    let cookie = consent_cookie.split(';').next().unwrap();
    let b2 = browser_with(&rig, &[cookie]);
    let r = b2
        .get(sign_in_url(&rig, &first, &p.challenge, "alice"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(&rig.realm.server_url)
    );
    let r = b2
        .get(sign_in_url(&rig, &second, &p.challenge, "alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "another client: consent again");
    let second_html = r.text().await.unwrap();

    // The second client's consent form cannot approve the first client's request.
    let crossed = [
        ("csrf", field(&second_html, "csrf")),
        ("return_to", field(&html, "return_to")),
        ("decision", "approve".to_owned()),
    ];
    let r = b2
        .post(rig.url("/login/corp"))
        .form(&crossed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A forged consent cookie counts for nothing.
    let b3 = browser_with(&rig, &["mcpgate_consent=AAAA"]);
    let r = b3
        .get(sign_in_url(&rig, &first, &p.challenge, "alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Deny: back to the client with access_denied, its state and the issuer; the realm is
    // never asked.
    rig.realm.reset_counts().await.unwrap();
    let r = b2
        .get(sign_in_url(&rig, &second, &p.challenge, "alice"))
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    let r = approve(&b2, &html, "deny").await.unwrap();
    let back = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert!(back.as_str().starts_with(CB));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "s");
    assert_eq!(q["iss"], rig.gateway.base);
    assert_eq!(rig.realm.counts().await.unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_callbacks_end_in_a_clear_page() {
    let db = TestDb::sqlite().unwrap();
    let Some(rig) = IdRig::start("bad_callbacks", RealmOptions::default(), db, |_| {}).await else {
        return;
    };
    let b = browser();
    // Unknown state.
    let r = b
        .get(rig.url("/callback/corp?code=x&state=made-up"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("unknown, expired or was already used")
    );
    // No state at all.
    let r = b
        .get(rig.url("/callback/corp?code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A real start, whose callback we capture instead of following.
    let start = |b: Client, hint: &'static str| {
        let url = rig.url(&format!("/login/corp?login_hint={hint}"));
        let realm_base = rig.realm.server_url.clone();
        async move {
            let mut next = url;
            loop {
                let r = b.get(&next).send().await.unwrap();
                let loc = r.headers()["location"].to_str().unwrap().to_owned();
                let loc = Url::parse(&next).unwrap().join(&loc).unwrap().to_string();
                if loc.contains("/callback/corp") {
                    return loc;
                }
                assert!(
                    loc.starts_with(&realm_base) || loc.starts_with("http://127.0.0.1"),
                    "{loc}"
                );
                next = loc;
            }
        }
    };
    // The provider refuses (access_denied): a page, not a 500.
    let denied = start(b.clone(), "deny").await;
    let r = b.get(&denied).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("access_denied"));
    // Another browser presenting this browser's callback.
    let callback = start(b.clone(), "alice").await;
    let other = browser();
    let r = other.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("another browser"));
    // That attempt spent the state: replaying it, even from the right browser, fails.
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A callback completes once from the right browser, and not twice.
    let callback = start(b.clone(), "alice").await;
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

const CLAIM_POLICY: &str = r#"
default_role = "lister"

[[roles]]
name = "lister"
grants = [{ effect = "allow", action = "tools/list", upstream = "demo" }]

[[roles]]
name = "echoer"
grants = [{ effect = "allow", action = "tools/call", upstream = "demo", target = "echo" }]

[[roles]]
name = "inspector"
grants = [{ effect = "allow", action = "tools/call", upstream = "demo", target = "headers" }]

[[roles]]
name = "platform"
grants = [{ effect = "allow", action = "tools/call", upstream = "demo", target = "slow" }]

[[mappings]]
provider = "corp"
claim = "roles"
value = "mcp-admin"
role = "echoer"

[[mappings]]
provider = "corp"
claim = "roles"
value = "mcpgate:tools-writer"
role = "inspector"

[[mappings]]
claim = "groups"
value = "/engineering/*"
role = "platform"

[[mappings]]
provider = "elsewhere"
claim = "roles"
value = "user"
role = "echoer"
"#;

async fn admin_token(base: &str) -> String {
    let login: Value = Client::new()
        .post(format!("{base}/api/v1/login"))
        .json(&json!({"email": "root@example.com", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"].as_str().unwrap().to_owned()
}

/// `tools/list` through the gateway as `token`: the tool names it shows.
async fn tool_names(base: &str, token: &str) -> Vec<String> {
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":crate::proxy::meta_2026()}});
    let msgs = mcp_post(base, token, &list).await;
    let last = msgs.last().cloned().unwrap_or(Value::Null);
    let mut names: Vec<String> = last["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {last}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// `tools/call name` as `token`: Ok when the tool ran, Err(JSON-RPC error) otherwise.
async fn call(base: &str, token: &str, name: &str) -> Result<(), Value> {
    let args = match name {
        "slow" => json!({"count": 0}),
        "headers" => json!({}),
        _ => json!({"text": "hi"}),
    };
    let msgs = mcp_post(base, token, &crate::proxy::tool_call(2, name, args, true)).await;
    let last = msgs.last().cloned().unwrap_or(Value::Null);
    if last["result"].is_object() {
        Ok(())
    } else {
        Err(last["error"].clone())
    }
}

async fn mcp_post(base: &str, token: &str, body: &Value) -> Vec<Value> {
    let mut r = Client::new()
        .post(format!("{base}/mcp/demo"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", body["method"].as_str().unwrap());
    if let Some(n) = body["params"]["name"].as_str() {
        r = r.header("mcp-name", n);
    }
    let (status, ct, text) = crate::proxy::read(r.body(body.to_string()).send().await.unwrap())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    crate::proxy::messages(&ct, &text)
}

#[tokio::test(flavor = "multi_thread")]
async fn keycloak_roles_and_groups_map_to_rbac_roles_and_follow_changes_in_the_realm() {
    let db = TestDb::sqlite().unwrap();
    // As Keycloak does: roles in JWT access tokens, so a change reaches the gateway with the
    // next access token (here after 3 s) and its context (2 s).
    let options = RealmOptions {
        access_token_ttl: 3,
        ..Default::default()
    };
    let Some(rig) = IdRig::start("claim_mapping", options, db, |c| {
        c.policy = toml::from_str(CLAIM_POLICY).unwrap();
        c.auth.user_context_ttl_secs = 2;
        c.bootstrap.admin_email = Some("root@example.com".into());
        c.bootstrap.admin_password = Some(SecretString::new("correct horse battery staple"));
    })
    .await
    else {
        return;
    };
    let base = rig.gateway.base.clone();
    let alice = federated_tokens(&rig, &browser(), "alice").await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = federated_tokens(&rig, &browser(), "bob").await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // alice: realm role `mcp-admin` → echoer, client role `mcpgate:tools-writer` → inspector,
    // group `/engineering/platform` → platform. bob holds realm role `user`, mapped only for
    // another provider, so just the default role.
    assert_eq!(tool_names(&base, &alice).await, ["echo", "headers", "slow"]);
    for tool in ["echo", "headers", "slow"] {
        assert_eq!(call(&base, &alice, tool).await, Ok(()), "alice {tool}");
    }
    assert!(tool_names(&base, &bob).await.is_empty());
    let denied = call(&base, &bob, "echo").await.unwrap_err();
    assert_eq!(denied["code"], -32602, "as for an unknown tool: {denied}");

    // An administrator can see why: which claim gave alice which role, and which grant
    // decides a call.
    let admin = admin_token(&base).await;
    let store = rig.db.store().await.unwrap();
    let alice_id = store
        .find_user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let explain = |query: String| {
        let request = Client::new().get(format!("{base}/api/v1/admin/users/{query}"));
        request.bearer_auth(&admin).send()
    };
    let r = explain(format!(
        "{alice_id}/access?upstream=demo&method=tools/call&name=echo"
    ));
    let access: Value = r.await.unwrap().json().await.unwrap();
    assert_eq!(access["provider"], "corp", "{access}");
    let echoer = access["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "echoer")
        .unwrap_or_else(|| panic!("no echoer in {access}"));
    assert_eq!(echoer["because"][0]["kind"], "mapping");
    assert_eq!(echoer["because"][0]["rule"]["value"], "mcp-admin");
    assert_eq!(access["decision"]["allowed"], true);
    assert!(
        access["decision"]["explanation"]
            .as_str()
            .unwrap()
            .contains("role `echoer`"),
        "{access}"
    );
    let r = Client::new()
        .get(format!(
            "{base}/api/v1/admin/users/{alice_id}/access?method=tools/call"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = Client::new()
        .get(format!("{base}/api/v1/admin/users/nobody/access"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // An administrator changes realm roles in Keycloak: with the next access token and context
    // the gateway sees it, with no new sign-in.
    rig.realm
        .set_realm_roles("bob", &["user", "mcp-admin"])
        .await
        .unwrap();
    rig.realm
        .set_realm_roles("alice", &["offline_access"])
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let bob_can = call(&base, &bob, "echo").await.is_ok();
        let alice_can = call(&base, &alice, "echo").await.is_ok();
        if bob_can && !alice_can {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "realm role changes not applied: bob {bob_can}, alice {alice_can}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(tool_names(&base, &bob).await, ["echo"]);
    assert_eq!(tool_names(&base, &alice).await, ["headers", "slow"]);
}

/// A strict RFC 8693 security token service for the tests: it takes the user's access token at
/// the realm as `subject_token`, asks the realm's user-info endpoint whose it is (a real check:
/// a token of another user, or none, is refused), and answers `exchanged-for-{sub}`. Counts
/// exchanges per subject.
struct Sts {
    url: String,
    by_sub: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl Sts {
    /// `userinfo`: the realm's user-info URL, known once the realm runs.
    async fn start(userinfo: Arc<std::sync::OnceLock<String>>) -> Self {
        use axum::extract::{Form, State};
        use axum::response::IntoResponse;
        type Counts = Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;
        async fn token(
            State((userinfo, counts)): State<(Arc<std::sync::OnceLock<String>>, Counts)>,
            Form(form): Form<std::collections::HashMap<String, String>>,
        ) -> axum::response::Response {
            let refuse = |error: &str| {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "error": error })),
                )
                    .into_response()
            };
            let field = |name: &str| form.get(name).map(String::as_str);
            if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:token-exchange") {
                return refuse("unsupported_grant_type");
            }
            if field("subject_token_type") != Some("urn:ietf:params:oauth:token-type:access_token")
                || field("audience") != Some("orders-api")
            {
                return refuse("invalid_request");
            }
            let Some(subject) = field("subject_token") else {
                return refuse("invalid_request");
            };
            let who = Client::new()
                .get(userinfo.get().cloned().unwrap_or_default())
                .bearer_auth(subject)
                .send()
                .await
                .unwrap();
            if !who.status().is_success() {
                return refuse("invalid_grant");
            }
            let sub = who.json::<Value>().await.unwrap()["sub"]
                .as_str()
                .unwrap()
                .to_owned();
            *counts.lock().unwrap().entry(sub.clone()).or_default() += 1;
            axum::Json(json!({
                "access_token": format!("exchanged-for-{sub}"),
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 300,
            }))
            .into_response()
        }
        let by_sub: Counts = Arc::default();
        let router = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .with_state((userinfo, by_sub.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, by_sub }
    }
}

/// The subject the realm says `token` belongs to (`None`: the realm refuses it).
async fn realm_subject(rig: &IdRig, token: &str) -> Option<String> {
    let r = Client::new()
        .get(format!(
            "{}/realms/test/protocol/openid-connect/userinfo",
            rig.realm.server_url
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if !r.status().is_success() {
        return None;
    }
    Some(r.json::<Value>().await.unwrap()["sub"].as_str()?.to_owned())
}

const ALICE_SUB: &str = "0f8c3b1e-7a4d-4c55-9a63-2b1f6e0d9a11";
const BOB_SUB: &str = "6d2e9f40-1c3b-4e7a-8f5d-3a9b0c7e2d44";

/// A rig whose upstream `demo` has `credentials`, with alice and bob signed in through the
/// realm: the rig and their mcpgate access tokens with their subjects at the realm.
async fn rig_with_two_users(
    test: &str,
    credentials: &str,
) -> Option<(IdRig, [(&'static str, String); 2])> {
    let credentials = crate::upstream_credentials::credentials(credentials);
    // Tokens live 5 s: long enough to check each one at the realm after a round of calls.
    let options = RealmOptions {
        access_token_ttl: 5,
        ..keycloak_opaque()
    };
    let rig = IdRig::start(test, options, TestDb::sqlite().unwrap(), |c| {
        c.auth.user_context_ttl_secs = 1;
        c.upstreams[0].credentials = credentials;
    })
    .await?;
    let mut tokens = Vec::new();
    for who in ["alice", "bob"] {
        let t = federated_tokens(&rig, &browser(), who).await.unwrap();
        tokens.push(t["access_token"].as_str().unwrap().to_owned());
    }
    let bob = tokens.pop().unwrap();
    let alice = tokens.pop().unwrap();
    Some((rig, [(ALICE_SUB, alice), (BOB_SUB, bob)]))
}

/// 100 concurrent `headers` calls on `demo`, alternating between the users: for each, the
/// caller's subject and the bearer the upstream received.
async fn concurrent_calls(
    rig: &IdRig,
    users: &[(&'static str, String); 2],
) -> Vec<(&'static str, String)> {
    let calls = (0..100).map(|i| {
        let (sub, token) = users[i % 2].clone();
        let gateway = &rig.gateway;
        async move {
            let seen = crate::upstream_credentials::seen_by_upstream(gateway, "demo", &token).await;
            let authorization = seen["authorization"]
                .as_str()
                .unwrap_or_else(|| panic!("no credential reached the upstream: {seen}"));
            (
                sub,
                authorization.strip_prefix("Bearer ").unwrap().to_owned(),
            )
        }
    });
    futures::future::join_all(calls).await
}

/// Through the whole gateway, with tokens the realm issued: an upstream with `login_token`
/// receives each caller's own access token at the realm (checked at the realm), and after the
/// tokens expire, 100 concurrent calls of two users get one refresh per user and no failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_token_upstream_gets_each_users_own_token_refreshed_once_under_load() {
    let Some((rig, users)) = rig_with_two_users(
        "login_token_upstream",
        "kind = \"login_token\"\nprovider = \"corp\"",
    )
    .await
    else {
        return;
    };
    for round in ["fresh", "after expiry"] {
        if round == "after expiry" {
            // The realm's tokens (5 s) and the user contexts (1 s) expire.
            tokio::time::sleep(Duration::from_millis(5200)).await;
        }
        rig.realm.reset_counts().await.unwrap();
        let mut subjects = std::collections::HashMap::new();
        for (sub, token) in concurrent_calls(&rig, &users).await {
            if !subjects.contains_key(&token) {
                let at_realm = realm_subject(&rig, &token).await;
                subjects.insert(token.clone(), at_realm);
            }
            assert_eq!(
                subjects[&token].as_deref(),
                Some(sub),
                "{round}: a call reached the upstream with another user's token or one the \
                 realm refuses"
            );
        }
        assert_eq!(subjects.len(), 2, "{round}: one current token per user");
        if round == "after expiry" {
            let refreshes = rig.realm.count("token").await.unwrap();
            assert_eq!(refreshes, 2, "one refresh per user, not {refreshes}");
        }
    }
}

/// `token_exchange` with the user's realm token as the subject: the upstream receives the
/// token the STS issued for that same user (the STS checks the subject token at the realm),
/// one exchange per user for 100 concurrent calls, and none again while it is valid.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_exchange_upstream_gets_a_token_exchanged_once_per_user() {
    // The STS asks the realm, which starts inside the rig: it learns the URL after.
    let userinfo = Arc::new(std::sync::OnceLock::<String>::new());
    let sts = Sts::start(userinfo.clone()).await;
    let Some((rig, users)) = rig_with_two_users(
        "token_exchange_upstream",
        &format!(
            "kind = \"token_exchange\"\ntoken_endpoint = {:?}\nsubject_token = \"login_token\"\n\
             provider = \"corp\"\naudience = \"orders-api\"",
            sts.url
        ),
    )
    .await
    else {
        return;
    };
    userinfo
        .set(format!(
            "{}/realms/test/protocol/openid-connect/userinfo",
            rig.realm.server_url
        ))
        .unwrap();
    for _ in 0..2 {
        for (sub, token) in concurrent_calls(&rig, &users).await {
            assert_eq!(
                token,
                format!("exchanged-for-{sub}"),
                "another user's token"
            );
        }
    }
    let exchanges = sts.by_sub.lock().unwrap().clone();
    assert_eq!(
        exchanges,
        [(ALICE_SUB.to_owned(), 1), (BOB_SUB.to_owned(), 1)].into(),
        "one exchange per user"
    );
}
