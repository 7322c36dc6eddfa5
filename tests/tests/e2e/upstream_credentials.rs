//! Upstream credentials through the whole gateway (step 5 of the `/mcp` pipeline): what the
//! upstream receives, checked at the upstream (the fixture's `headers` tool echoes the
//! request headers it got). The client's own token never arrives; each request carries its
//! own user's credential under concurrency; a credential that cannot be had is a clear
//! JSON-RPC error; bad credential config stops the start with every problem listed.

use std::collections::HashMap;

use futures::future::join_all;
use mcpgate_credentials::UpstreamCredentialsConfig;
use mcpgate_tests::fixtures::FixtureUpstream;
use mcpgate_tests::{TestDb, TestServer, TestTokens, test_config};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::proxy::{messages, read, result_text, tool_call, upstream_config};

fn credentials(toml_text: &str) -> UpstreamCredentialsConfig {
    toml::from_str(toml_text).expect("credentials config")
}

/// The headers the upstream received for one `headers` call by `token`.
async fn seen_by_upstream(gateway: &TestServer, upstream: &str, token: &str) -> Value {
    let r = reqwest::Client::new()
        .post(gateway.url(&format!("/mcp/{upstream}")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "headers")
        .body(tool_call(1, "headers", json!({}), true).to_string())
        .send()
        .await
        .expect("request");
    let (status, ct, body) = read(r).await.expect("body");
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&result_text(&ct, &body).unwrap_or_default()).expect("headers json")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_secret_from_a_file_reaches_the_upstream_and_the_clients_token_does_not() {
    let upstream = FixtureUpstream::start().await.unwrap();
    let db = TestDb::sqlite().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("api-key");
    std::fs::write(&secret, "s3cr3t-upstream-key\n").unwrap();
    let mut config = test_config(db.url());
    let mut fx = upstream_config("fx", &upstream.url);
    fx.credentials = credentials(&format!(
        "kind = \"static\"\nheader = \"x-api-key\"\nvalue_file = {:?}",
        secret.display().to_string()
    ));
    config.upstreams.push(fx);
    let gateway =
        TestServer::start_with_tokens(config, TestTokens::new([("alice-token", "alice")]))
            .await
            .unwrap();
    let seen = seen_by_upstream(&gateway, "fx", "alice-token").await;
    assert_eq!(seen["x-api-key"], "s3cr3t-upstream-key");
    assert!(seen.get("authorization").is_none(), "{seen}");
    assert!(!seen.to_string().contains("alice-token"), "{seen}");
    gateway.stop().await.unwrap();
}

/// 20 users, 200 concurrent calls: every request the upstream receives carries an identity
/// assertion for exactly the user who made it, signed by a key in mcpgate's JWKS.
#[tokio::test(flavor = "multi_thread")]
async fn identity_assertions_carry_each_callers_own_identity_under_concurrency() {
    let upstream = FixtureUpstream::start().await.unwrap();
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    config.assertion_keys = Some(
        toml::from_str(&format!(
            "active = \"k2\"\nkeys = [{{ id = \"k1\", key = {:?} }}, {{ id = \"k2\", key = {:?} }}]",
            mcpgate_credentials::generate_key_b64().unwrap(),
            mcpgate_credentials::generate_key_b64().unwrap(),
        ))
        .unwrap(),
    );
    let mut fx = upstream_config("fx", &upstream.url);
    fx.credentials = credentials("kind = \"identity_assertion\"\nheader = \"x-mcpgate-assertion\"");
    config.upstreams.push(fx);
    let users: Vec<(String, String)> = (0..20)
        .map(|i| (format!("token-{i}"), format!("user-{i}")))
        .collect();
    let gateway = TestServer::start_with_tokens(
        config,
        TestTokens::new(users.iter().map(|(t, u)| (t.as_str(), u.as_str()))),
    )
    .await
    .unwrap();

    // The JWKS publishes both keys (rotation overlap) and the AS metadata points at it.
    let meta: Value = reqwest::get(gateway.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["jwks_uri"], gateway.url("/.well-known/jwks.json"));
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(gateway.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<_> = jwks
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, ["k1", "k2"]);

    let calls = (0..200).map(|i| {
        let (token, user) = users[i % users.len()].clone();
        let gateway = &gateway;
        async move { (user, seen_by_upstream(gateway, "fx", &token).await) }
    });
    let results = join_all(calls).await;
    let mut per_user: HashMap<String, usize> = HashMap::new();
    let issuer = gateway.url("").trim_end_matches('/').to_owned();
    for (user, seen) in results {
        let assertion = seen["x-mcpgate-assertion"].as_str().expect("an assertion");
        let header = jsonwebtoken::decode_header(assertion).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k2"));
        let jwk = jwks.find("k2").unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_audience(&[upstream.url.as_str()]);
        validation.set_issuer(&[issuer.as_str()]);
        let claims = jsonwebtoken::decode::<Value>(
            assertion,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(
            claims["sub"], user,
            "a request carried another user's identity"
        );
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!((1..=60).contains(&lifetime), "{claims}");
        *per_user.entry(user).or_default() += 1;
    }
    assert_eq!(per_user.len(), 20);
    assert!(per_user.values().all(|n| *n == 10), "{per_user:?}");
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_without_the_providers_sign_in_is_told_which_provider() {
    let upstream = FixtureUpstream::start().await.unwrap();
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    let mut fx = upstream_config("gh", &upstream.url);
    fx.credentials = credentials("kind = \"login_token\"\nprovider = \"github\"");
    config.upstreams.push(fx);
    let gateway =
        TestServer::start_with_tokens(config, TestTokens::new([("alice-token", "alice")]))
            .await
            .unwrap();
    let r = reqwest::Client::new()
        .post(gateway.url("/mcp/gh"))
        .bearer_auth("alice-token")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(tool_call(7, "echo", json!({"text": "x"}), false).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, ct, body) = read(r).await.unwrap();
    let answer = &messages(&ct, &body)[0];
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["error"]["code"], -32003);
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("sign in") && message.contains("github"),
        "{message}"
    );
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credential_config_stops_the_start_with_every_problem() {
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    let mut missing_file = upstream_config("a", "http://127.0.0.1:9/mcp");
    missing_file.credentials = credentials(
        "kind = \"static\"\nheader = \"x-api-key\"\nvalue_file = \"/nonexistent/mcpgate-secret\"",
    );
    let mut no_region = upstream_config("b", "http://127.0.0.1:9/mcp");
    no_region.credentials = credentials("kind = \"aws_sigv4\"\nservice = \"execute-api\"");
    let mut unknown = upstream_config("c", "http://127.0.0.1:9/mcp");
    unknown.credentials = credentials("kind = \"magic\"");
    config.upstreams.extend([missing_file, no_region, unknown]);
    // The configuration check lists the region and the kind together, each with its path.
    let problems = config.validate().err().unwrap_or_default();
    for path in ["upstreams[1].credentials", "upstreams[2].credentials"] {
        assert!(
            problems.iter().any(|e| e.path.starts_with(path)),
            "{path}: {problems:?}"
        );
    }
    // Start-up reports the unreadable secret file, with its path.
    config.upstreams.truncate(1);
    let Err(e) = TestServer::start(config).await else {
        panic!("the gateway started with broken credentials");
    };
    let text = format!("{e:#}");
    assert!(text.contains("upstreams[0].credentials"), "{text}");
}

/// The answer to one `headers` call by `token`: HTTP status and the JSON-RPC message.
async fn call_headers(gateway: &TestServer, upstream: &str, token: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(gateway.url(&format!("/mcp/{upstream}")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "headers")
        .body(tool_call(1, "headers", json!({}), true).to_string())
        .send()
        .await
        .expect("request");
    let (status, ct, body) = read(r).await.expect("body");
    let message = messages(&ct, &body).pop().unwrap_or(Value::Null);
    (status, message)
}

async fn sealed_secret_through_the_admin_api(db: TestDb) {
    let upstream = FixtureUpstream::start().await.unwrap();
    let mut config = test_config(db.url());
    config.bootstrap.admin_email = Some("root@example.com".into());
    config.bootstrap.admin_password = Some(mcpgate_core::SecretString::new(
        "correct horse battery staple",
    ));
    let mut sealed = upstream_config("sealed", &upstream.url);
    sealed.credentials = credentials("kind = \"static\"\nheader = \"x-api-key\"\nsealed = true");
    config.upstreams.push(sealed);
    config
        .upstreams
        .push(upstream_config("plain", &upstream.url));
    let gateway =
        TestServer::start_with_tokens(config, TestTokens::new([("alice-token", "alice")]))
            .await
            .unwrap();
    let http = reqwest::Client::new();
    let login: Value = http
        .post(gateway.url("/api/v1/login"))
        .json(&json!({"email": "root@example.com", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = login["access_token"].as_str().unwrap().to_owned();
    let secret_url = gateway.url("/api/v1/admin/upstreams/sealed/secret");

    // No secret yet: the call gets a clear JSON-RPC error, and nothing reaches the upstream.
    let (status, message) = call_headers(&gateway, "sealed", "alice-token").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"sealed\""),
        "{message}"
    );
    let shown: Value = http
        .get(&secret_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, json!({"upstream": "sealed", "set": false}));

    // Set: the next call carries it; the API shows it redacted, never the value.
    let r = http
        .put(&secret_url)
        .bearer_auth(&admin)
        .json(&json!({"value": "first-key-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let seen = seen_by_upstream(&gateway, "sealed", "alice-token").await;
    assert_eq!(seen["x-api-key"], "first-key-123");
    let shown: Value = http
        .get(&secret_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["set"], true);
    assert_eq!(shown["value"], "[redacted]");
    assert!(shown["updated_by"].is_string());
    let listed = http
        .get(gateway.url("/api/v1/admin/upstreams"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains("first-key-123"), "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["name"], "sealed");
    assert_eq!(listed[0]["credential_kinds"], json!(["static"]));
    assert_eq!(listed[0]["sealed_secret"]["set"], true);
    assert_eq!(listed[1]["name"], "plain");
    assert!(listed[1].get("sealed_secret").is_none(), "{listed}");

    // Stored sealed, not in the clear.
    let store = db.store().await.unwrap();
    let row = store.upstream_secret("sealed").await.unwrap().unwrap();
    assert!(
        !row.sealed
            .windows(b"first-key-123".len())
            .any(|w| w == b"first-key-123"),
        "the secret is stored in the clear"
    );

    // Replaced: this replica uses the new value at once.
    let r = http
        .put(&secret_url)
        .bearer_auth(&admin)
        .json(&json!({"value": "second-key-456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let seen = seen_by_upstream(&gateway, "sealed", "alice-token").await;
    assert_eq!(seen["x-api-key"], "second-key-456");

    // Bad input and the wrong upstream get clear errors.
    for (url, body, want) in [
        (&secret_url, json!({"value": ""}), StatusCode::BAD_REQUEST),
        (
            &secret_url,
            json!({"value": "a\nb"}),
            StatusCode::BAD_REQUEST,
        ),
        (&secret_url, json!({"secret": "x"}), StatusCode::BAD_REQUEST),
        (
            &gateway.url("/api/v1/admin/upstreams/plain/secret"),
            json!({"value": "x"}),
            StatusCode::CONFLICT,
        ),
        (
            &gateway.url("/api/v1/admin/upstreams/nope/secret"),
            json!({"value": "x"}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = http
            .put(url.as_str())
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{url} {body}");
    }
    // Only administrators.
    let r = http
        .put(&secret_url)
        .bearer_auth("alice-token")
        .json(&json!({"value": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Deleted: calls fail again, a second delete is 404.
    let r = http
        .delete(&secret_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = call_headers(&gateway, "sealed", "alice-token").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let r = http
        .delete(&secret_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_static_secret_set_through_the_admin_api_reaches_the_upstream_sqlite() {
    sealed_secret_through_the_admin_api(TestDb::sqlite().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_static_secret_set_through_the_admin_api_reaches_the_upstream_postgres() {
    let Some(db) = TestDb::postgres("sealed_secret").await.unwrap() else {
        return;
    };
    sealed_secret_through_the_admin_api(db).await;
}
