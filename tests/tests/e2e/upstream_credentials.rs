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

pub(crate) fn credentials(toml_text: &str) -> UpstreamCredentialsConfig {
    toml::from_str(toml_text).expect("credentials config")
}

/// One client for the calls of these tests (building one per call costs more than the call).
static HTTP: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(reqwest::Client::new);

/// One `headers` tool call by `token` (2026-07-28 era): status, content type, body.
async fn post_headers(
    gateway: &TestServer,
    upstream: &str,
    token: &str,
) -> (StatusCode, String, String) {
    let r = HTTP
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
    (status, ct, body)
}

/// The headers the upstream received for one `headers` call by `token`.
pub(crate) async fn seen_by_upstream(gateway: &TestServer, upstream: &str, token: &str) -> Value {
    let (status, ct, body) = post_headers(gateway, upstream, token).await;
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
    let (status, ct, body) = post_headers(gateway, upstream, token).await;
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

/// A strict authorization server for `client_credentials`: HTTP Basic client authentication,
/// the configured scope, tokens `cc-{n}` that expire after `expires_in`; every `/token`
/// request counted. `/hung` accepts the request and never answers.
struct TokenServer {
    url: String,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenServer {
    async fn start(expires_in: u64) -> Self {
        use axum::extract::{Form, State};
        use axum::http::HeaderMap;
        use axum::response::IntoResponse;
        use std::sync::atomic::{AtomicUsize, Ordering};
        type Calls = std::sync::Arc<AtomicUsize>;
        async fn token(
            State((calls, expires_in)): State<(Calls, u64)>,
            headers: HeaderMap,
            Form(form): Form<HashMap<String, String>>,
        ) -> axum::response::Response {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            // "mcpgate:cc-secret", as RFC 6749 §2.3.1 encodes it.
            let basic = "Basic bWNwZ2F0ZTpjYy1zZWNyZXQ=";
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic) {
                let body = axum::Json(json!({"error": "invalid_client"}));
                return (StatusCode::UNAUTHORIZED, body).into_response();
            }
            if form.get("grant_type").map(String::as_str) != Some("client_credentials")
                || form.get("scope").map(String::as_str) != Some("reports:read")
            {
                let body = axum::Json(json!({"error": "invalid_request"}));
                return (StatusCode::BAD_REQUEST, body).into_response();
            }
            axum::Json(json!({
                "access_token": format!("cc-{n}"),
                "token_type": "Bearer",
                "expires_in": expires_in,
            }))
            .into_response()
        }
        let calls = Calls::default();
        let router = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .route(
                "/hung",
                axum::routing::post(std::future::pending::<&'static str>),
            )
            .with_state((calls.clone(), expires_in));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, calls }
    }

    fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn client_credentials(token_endpoint: &str) -> UpstreamCredentialsConfig {
    credentials(&format!(
        "kind = \"client_credentials\"\ntoken_endpoint = {token_endpoint:?}\nclient_id = \
         \"mcpgate\"\nclient_secret = \"cc-secret\"\nscope = \"reports:read\"\n\
         expiry_skew_secs = 0"
    ))
}

/// mcpgate's own client at the upstream's authorization server: 100 concurrent calls share one
/// token; when it expires under load, one new token request and no failed call.
#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_are_fetched_once_and_renewed_once_when_they_expire_under_load() {
    let upstream = FixtureUpstream::start().await.unwrap();
    let server = TokenServer::start(3).await;
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    let mut reports = upstream_config("reports", &upstream.url);
    reports.credentials = client_credentials(&format!("{}/token", server.url));
    config.upstreams.push(reports);
    let gateway =
        TestServer::start_with_tokens(config, TestTokens::new([("alice-token", "alice")]))
            .await
            .unwrap();
    let mut tokens = std::collections::BTreeSet::new();
    for round in ["first", "after expiry"] {
        if round == "after expiry" {
            tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
        }
        let before = tokens.len();
        let seen =
            join_all((0..100).map(|_| seen_by_upstream(&gateway, "reports", "alice-token"))).await;
        for s in &seen {
            let token = s["authorization"].as_str().unwrap_or_default();
            assert!(token.starts_with("Bearer cc-"), "{round}: {s}");
            tokens.insert(token.to_owned());
        }
        // A slow round may see the token expire once more mid-way: each token request must
        // have served the calls after it, none raced another.
        assert!(tokens.len() > before, "{round}: a new token");
        assert_eq!(
            server.calls(),
            tokens.len(),
            "{round}: one token request per expiry, not one per caller"
        );
    }
    gateway.stop().await.unwrap();
}

/// A token endpoint that never answers fails its upstream's requests within the upstream's
/// timeout, with a JSON-RPC error; meanwhile another upstream answers as fast as ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_token_endpoint_fails_in_time_and_other_upstreams_stay_fast() {
    let upstream = FixtureUpstream::start().await.unwrap();
    let server = TokenServer::start(300).await;
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    let mut stuck = upstream_config("stuck", &upstream.url);
    stuck.response_timeout_ms = 1500;
    stuck.credentials = client_credentials(&format!("{}/hung", server.url));
    config.upstreams.push(stuck);
    config
        .upstreams
        .push(upstream_config("quick", &upstream.url));
    let gateway =
        TestServer::start_with_tokens(config, TestTokens::new([("alice-token", "alice")]))
            .await
            .unwrap();
    // Warm the quick path first.
    seen_by_upstream(&gateway, "quick", "alice-token").await;
    let gateway = std::sync::Arc::new(gateway);
    let stuck: Vec<_> = (0..20)
        .map(|_| {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let t = std::time::Instant::now();
                let answer = call_headers(&gateway, "stuck", "alice-token").await;
                (answer, t.elapsed(), std::time::Instant::now())
            })
        })
        .collect();
    // While the stuck calls wait, the other upstream answers each call promptly.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut slowest_quick = std::time::Duration::ZERO;
    for _ in 0..10 {
        let t = std::time::Instant::now();
        seen_by_upstream(&gateway, "quick", "alice-token").await;
        slowest_quick = slowest_quick.max(t.elapsed());
    }
    let quick_done = std::time::Instant::now();
    assert!(
        slowest_quick < std::time::Duration::from_millis(500),
        "a call to the quick upstream took {slowest_quick:?}"
    );
    for task in stuck {
        let ((status, message), took, done) = task.await.unwrap();
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{message}");
        assert_eq!(message["jsonrpc"], "2.0");
        assert!(message["error"]["code"].is_i64(), "{message}");
        assert!(
            took < std::time::Duration::from_millis(1500 + 1000),
            "a stuck call took {took:?}, beyond the upstream's timeout"
        );
        assert!(
            done > quick_done,
            "the stuck calls ended before the quick ones ran: nothing was shown"
        );
    }
}

/// An upstream behind AWS SigV4: a verifier in front of the MCP server recomputes each
/// request's signature with botocore (AWS's own Python implementation) over what it received
/// — method, URL, the signed headers and the body — and lets only matching requests through.
#[tokio::test(flavor = "multi_thread")]
async fn aws_sigv4_signatures_verify_with_botocore_at_the_upstream() {
    let Some(python) = mcpgate_tests::fixtures::python("aws_sigv4_at_the_upstream").unwrap() else {
        return;
    };
    let upstream = FixtureUpstream::start().await.unwrap();
    let verifier = SigV4Verifier::start(python, upstream.url.clone()).await;
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    let mut aws = upstream_config("aws", &verifier.url);
    #[derive(serde::Deserialize)]
    struct Listed {
        credentials: UpstreamCredentialsConfig,
    }
    let listed: Listed = toml::from_str(
        r#"
        [[credentials]]
        kind = "identity_assertion"
        [[credentials]]
        kind = "aws_sigv4"
        service = "execute-api"
        region = "eu-west-1"
        credentials = { source = "static", access_key_id = "AKIDEXAMPLE", secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" }
        "#,
    )
    .unwrap();
    aws.credentials = listed.credentials;
    config.assertion_keys = Some(
        toml::from_str(&format!(
            "active = \"k1\"\nkeys = [{{ id = \"k1\", key = {:?} }}]",
            mcpgate_credentials::generate_key_b64().unwrap(),
        ))
        .unwrap(),
    );
    config.upstreams.push(aws);
    let gateway =
        TestServer::start_with_tokens(config, TestTokens::new([("alice-token", "alice")]))
            .await
            .unwrap();
    // The signer resolves its credentials on a background task just after start.
    let mut answer = call_headers(&gateway, "aws", "alice-token").await;
    for _ in 0..50 {
        if answer.0 != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        answer = call_headers(&gateway, "aws", "alice-token").await;
    }
    let (status, message) = answer;
    assert_eq!(status, StatusCode::OK, "{message}");
    for _ in 0..4 {
        let seen = seen_by_upstream(&gateway, "aws", "alice-token").await;
        let authorization = seen["authorization"].as_str().unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("x-mcpgate-assertion"),
            "the identity assertion is signed too: {authorization}"
        );
    }
    assert_eq!(verifier.verified(), 5, "each request verified by botocore");
    // The verifier is strict: a request it cannot verify does not pass.
    let unsigned = reqwest::Client::new()
        .post(&verifier.url)
        .header("content-type", "application/json")
        .body(tool_call(1, "headers", json!({}), true).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::FORBIDDEN);
    gateway.stop().await.unwrap();
}

/// Verifies SigV4 with botocore, then forwards to the MCP server.
struct SigV4Verifier {
    url: String,
    verified: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

const BOTOCORE_VERIFY: &str = r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
i = json.load(sys.stdin)
auth = SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                 "execute-api", "eu-west-1")
req = AWSRequest(method=i["method"], url=i["url"], data=i["body"].encode(), headers=i["headers"])
req.context["timestamp"] = i["headers"]["x-amz-date"]
canonical = auth.canonical_request(req)
signature = auth.signature(auth.string_to_sign(req, canonical), req)
signed = auth.signed_headers(auth.headers_to_sign(req))
print("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/%s, SignedHeaders=%s, Signature=%s" % (
    auth.credential_scope(req), signed, signature))
"#;

impl SigV4Verifier {
    async fn start(python: std::path::PathBuf, forward_to: String) -> Self {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, Method, Uri};
        use axum::response::IntoResponse;
        type Shared = (
            std::path::PathBuf,
            String,
            std::sync::Arc<std::sync::atomic::AtomicUsize>,
        );
        async fn handle(
            State((python, forward_to, verified)): State<Shared>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            let forbidden = |why: String| (StatusCode::FORBIDDEN, why).into_response();
            let Some(authorization) = headers.get("authorization").and_then(|v| v.to_str().ok())
            else {
                return forbidden("no signature".into());
            };
            let Some(signed) = authorization
                .split(", ")
                .find_map(|p| p.strip_prefix("SignedHeaders="))
            else {
                return forbidden("no SignedHeaders".into());
            };
            let host = headers["host"].to_str().unwrap().to_owned();
            let mut signed_headers = serde_json::Map::new();
            for name in signed.split(';').filter(|n| *n != "host") {
                let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
                    return forbidden(format!("signed header {name} missing"));
                };
                signed_headers.insert(name.to_owned(), value.into());
            }
            if !signed_headers.contains_key("x-amz-date") {
                return forbidden("x-amz-date is not signed".into());
            }
            let input = json!({
                "method": method.as_str(),
                "url": format!("http://{host}{uri}"),
                "headers": signed_headers,
                "body": String::from_utf8_lossy(&body),
            });
            let mut child = tokio::process::Command::new(&python)
                .args(["-c", BOTOCORE_VERIFY])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            {
                use tokio::io::AsyncWriteExt;
                let mut stdin = child.stdin.take().unwrap();
                stdin.write_all(input.to_string().as_bytes()).await.unwrap();
            }
            let out = child.wait_with_output().await.unwrap();
            let expected = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if expected != authorization {
                return forbidden(format!("signature mismatch: expected {expected}"));
            }
            verified.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut forward = reqwest::Client::new().post(&forward_to).body(body);
            for (name, value) in &headers {
                let name = name.as_str();
                if name.starts_with("mcp-") || name == "content-type" || name == "accept" {
                    forward = forward.header(name, value);
                }
            }
            // The MCP server's `headers` tool shows what arrived here.
            forward = forward.header("authorization", authorization);
            if let Some(assertion) = headers.get("x-mcpgate-assertion") {
                forward = forward.header("x-mcpgate-assertion", assertion);
            }
            let r = forward.send().await.unwrap();
            let status = r.status();
            let content_type = r.headers()["content-type"].clone();
            let bytes = r.bytes().await.unwrap();
            (status, [("content-type", content_type)], bytes).into_response()
        }
        let verified = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let router = axum::Router::new()
            .route("/mcp", axum::routing::post(handle))
            .with_state((python, forward_to, verified.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, verified }
    }

    fn verified(&self) -> usize {
        self.verified.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A local account's identity assertion names its email too (a federated user's comes from
/// their provider); a principal with no stored account gets an assertion without one.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_accounts_identity_assertion_carries_its_email() {
    let upstream = FixtureUpstream::start().await.unwrap();
    let db = TestDb::sqlite().unwrap();
    let store = db.store().await.unwrap();
    store.migrate().await.unwrap();
    let carol = store
        .create_user(&mcpgate_storage::NewUser {
            email: "carol@example.com".into(),
            display_name: None,
            password_hash: None,
            is_admin: false,
        })
        .await
        .unwrap();
    let mut config = test_config(db.url());
    config.assertion_keys = Some(
        toml::from_str(&format!(
            "active = \"k1\"\nkeys = [{{ id = \"k1\", key = {:?} }}]",
            mcpgate_credentials::generate_key_b64().unwrap(),
        ))
        .unwrap(),
    );
    let mut fx = upstream_config("fx", &upstream.url);
    fx.credentials = credentials("kind = \"identity_assertion\"");
    config.upstreams.push(fx);
    let gateway = TestServer::start_with_tokens(
        config,
        TestTokens::new([("carol-token", carol.id.as_str()), ("ghost-token", "ghost")]),
    )
    .await
    .unwrap();
    let claims = |seen: Value| {
        let assertion = seen["x-mcpgate-assertion"].as_str().unwrap().to_owned();
        let payload = assertion.split('.').nth(1).unwrap().to_owned();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    let carols = claims(seen_by_upstream(&gateway, "fx", "carol-token").await);
    assert_eq!(carols["sub"], carol.id.as_str());
    assert_eq!(carols["email"], "carol@example.com");
    let ghosts = claims(seen_by_upstream(&gateway, "fx", "ghost-token").await);
    assert_eq!(ghosts["sub"], "ghost");
    assert!(ghosts.get("email").is_none_or(Value::is_null), "{ghosts}");
    gateway.stop().await.unwrap();
}
