//! The OAuth 2.1 authorization server and resource server, one test per row of the MCP-AUTH
//! checklist (AS-xx, RS-xx), against real tokens issued by mcpgate itself.

use std::time::Duration;

use mcpgate_core::SecretString;
use mcpgate_server::config::ConfiguredClient;
use mcpgate_tests::fixtures::FixtureUpstream;
use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::{Value, json};
use url::Url;

use crate::proxy::upstream_config;

pub const USER: &str = "ada@example.com";
pub const PASSWORD: &str = "ada's long password";
const CB: &str = "http://127.0.0.1/callback";

pub struct AuthRig {
    pub gateway: TestServer,
    /// Kept alive for the gateway's upstreams.
    _upstream: FixtureUpstream,
    pub db: TestDb,
    /// The gateway's configuration, for a second replica.
    pub config: mcpgate_server::Config,
}

impl AuthRig {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut mcpgate_server::Config)) -> Self {
        Self::start_on(TestDb::sqlite().unwrap(), adjust).await
    }

    /// [`AuthRig::start_with`] on a database of the caller's choice (PostgreSQL tests).
    pub async fn start_on(db: TestDb, adjust: impl FnOnce(&mut mcpgate_server::Config)) -> Self {
        let upstream = FixtureUpstream::start().await.unwrap();
        let mut config = test_config(db.url());
        config.bootstrap.admin_email = Some(USER.into());
        config.bootstrap.admin_password = Some(SecretString::new(PASSWORD));
        config.auth.rate_limit.per_account_per_minute = 0;
        config.upstreams = vec![
            upstream_config("demo", &upstream.url),
            upstream_config("other", &upstream.url),
        ];
        config.oauth.clients.push(ConfiguredClient {
            client_id: "introspector".into(),
            client_name: "An upstream that checks tokens".into(),
            redirect_uris: vec!["https://introspector.example/cb".into()],
            client_secret: Some(SecretString::new("introspector-secret-value")),
        });
        adjust(&mut config);
        let gateway = TestServer::start(config.clone()).await.unwrap();
        config.public_url = gateway.base.clone();
        Self {
            gateway,
            _upstream: upstream,
            db,
            config,
        }
    }

    /// Another replica on the same database, keys and public URL, on its own port.
    pub async fn replica(&self) -> TestServer {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        TestServer::start(config).await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        self.gateway.url(path)
    }

    pub fn resource(&self, name: &str) -> String {
        self.url(&format!("/mcp/{name}"))
    }

    /// Registers a public client by DCR.
    pub async fn register(&self, redirect: &str) -> String {
        let r = Client::new()
            .post(self.url("/oauth/register"))
            .json(
                &json!({ "client_name": "Test Client", "redirect_uris": [redirect],
                           "grant_types": ["authorization_code", "refresh_token"],
                           "token_endpoint_auth_method": "none", "application_type": "native" }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["client_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A person at a browser: cookies kept, redirects looked at one by one.
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = mcpgate_crypto::pkce::generate_verifier().unwrap();
    Pkce {
        challenge: mcpgate_crypto::pkce::s256_challenge(verifier.expose()),
        verifier: verifier.expose().to_owned(),
    }
}

pub fn hidden_field(html: &str, name: &str) -> String {
    hidden(html, name)
}

/// A code exchange for a public client, parsed.
pub async fn exchange_plain(
    token_url: &str,
    client_id: &str,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Value {
    Client::new()
        .post(token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `tools/list` on the `demo` upstream of the gateway at `base`.
pub async fn list_tools(base: &str, token: &str) -> StatusCode {
    list_tools_with_host(base, token, None).await
}

/// [`list_tools`] with a `Host` header (a replica reached behind a load balancer).
pub async fn list_tools_with_host(base: &str, token: &str, host: Option<&str>) -> StatusCode {
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                       "io.modelcontextprotocol/clientCapabilities": {} });
    let mut request = Client::new().post(format!("{base}/mcp/demo"));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    request
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": meta } }))
        .send().await.unwrap().status()
}

fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + needle.len();
    html[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

pub fn authorize_url(
    rig: &AuthRig,
    client_id: &str,
    redirect: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = Url::parse(&rig.url("/oauth/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "st-123")
            .append_pair("resource", &rig.resource("demo"));
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// Follows the flow like a person: sign in if asked, approve consent if asked. Returns the
/// final redirect to the client (parsed).
pub async fn drive(rig: &AuthRig, b: &Client, start: &str) -> Url {
    let mut next = start.to_owned();
    for _ in 0..8 {
        let r = b.get(&next).send().await.unwrap();
        match r.status() {
            StatusCode::SEE_OTHER | StatusCode::FOUND | StatusCode::TEMPORARY_REDIRECT => {
                let loc = r.headers()["location"].to_str().unwrap().to_owned();
                let loc = if loc.starts_with('/') {
                    rig.url(&loc)
                } else {
                    loc
                };
                if !loc.starts_with(&rig.gateway.base) {
                    return Url::parse(&loc).unwrap();
                }
                next = loc;
            }
            StatusCode::OK => {
                let html = r.text().await.unwrap();
                let post = if html.contains("action=\"/login\"") {
                    b.post(rig.url("/login")).form(&[
                        ("email", USER),
                        ("password", PASSWORD),
                        ("csrf", &hidden(&html, "csrf")),
                        ("return_to", &hidden(&html, "return_to")),
                    ])
                } else if html.contains("action=\"/oauth/authorize\"") {
                    b.post(rig.url("/oauth/authorize")).form(&[
                        ("csrf", hidden(&html, "csrf").as_str()),
                        ("request", &hidden(&html, "request")),
                        ("decision", "approve"),
                    ])
                } else {
                    panic!("unexpected page: {html}");
                };
                let r = post.send().await.unwrap();
                assert!(
                    r.status().is_redirection(),
                    "{}: {}",
                    r.status(),
                    r.text().await.unwrap()
                );
                let loc = r.headers()["location"].to_str().unwrap().to_owned();
                let loc = if loc.starts_with('/') {
                    rig.url(&loc)
                } else {
                    loc
                };
                if !loc.starts_with(&rig.gateway.base) {
                    return Url::parse(&loc).unwrap();
                }
                next = loc;
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    panic!("the authorization flow did not finish");
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn params(url: &Url, name: &str) -> usize {
    url.query_pairs().filter(|(k, _)| k == name).count()
}

pub async fn exchange(
    rig: &AuthRig,
    client_id: &str,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> reqwest::Response {
    Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap()
}

/// Registers, authorizes, exchanges: a full set of tokens for `demo`.
pub async fn tokens(rig: &AuthRig) -> (String, Value) {
    let client_id = rig.register(CB).await;
    let p = pkce();
    let back = drive(
        rig,
        &browser(),
        &authorize_url(
            rig,
            &client_id,
            "http://127.0.0.1:49152/callback",
            &p.challenge,
            &[],
        ),
    )
    .await;
    let code = param(&back, "code").unwrap();
    let r = exchange(
        rig,
        &client_id,
        &code,
        &p.verifier,
        "http://127.0.0.1:49152/callback",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    (client_id, r.json().await.unwrap())
}

pub async fn call(rig: &AuthRig, upstream: &str, token: &str, method: &str) -> reqwest::Response {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let params = if method == "tools/call" {
        json!({ "name": "echo", "arguments": { "text": "hi" }, "_meta": meta })
    } else {
        json!({ "_meta": meta })
    };
    let mut request = Client::new()
        .post(rig.resource(upstream))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }));
    if method == "tools/call" {
        request = request.header("mcp-name", "echo");
    }
    request.send().await.unwrap()
}

pub async fn call_ok(rig: &AuthRig, token: &str) -> StatusCode {
    let r = call(rig, "demo", token, "tools/list").await;
    let status = r.status();
    if status == StatusCode::BAD_REQUEST {
        panic!("{}", r.text().await.unwrap());
    }
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn as01_as03_as15_metadata_documents() {
    let rig = AuthRig::start().await;
    // mcpgate issues no ID tokens: it serves RFC 8414 only, not an OIDC discovery document
    // that would have to claim ID-token support.
    let oidc = Client::new()
        .get(rig.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(oidc.status(), StatusCode::NOT_FOUND);
    for path in ["/.well-known/oauth-authorization-server"] {
        let r = Client::new().get(rig.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["issuer"], rig.gateway.base);
        assert_eq!(m["authorization_endpoint"], rig.url("/oauth/authorize"));
        assert_eq!(m["token_endpoint"], rig.url("/oauth/token"));
        assert!(
            m["response_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("code"))
        );
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["client_id_metadata_document_supported"], true);
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(m["registration_endpoint"], rig.url("/oauth/register"));
        assert_eq!(m["jwks_uri"], rig.url("/.well-known/jwks.json"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn as02_one_issuer_string_everywhere() {
    let rig = AuthRig::start().await;
    let meta: Value = Client::new()
        .get(rig.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let prm: Value = Client::new()
        .get(rig.url("/.well-known/oauth-protected-resource/mcp/demo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = rig.register(CB).await;
    let p = pkce();
    let back = drive(
        &rig,
        &browser(),
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[]),
    )
    .await;
    let iss = param(&back, "iss").unwrap();
    assert_eq!(meta["issuer"], json!(rig.gateway.base));
    assert_eq!(prm["authorization_servers"][0], meta["issuer"]);
    assert_eq!(json!(iss), meta["issuer"]);
    assert!(!iss.ends_with('/'));
}

#[tokio::test(flavor = "multi_thread")]
async fn rs01_rs11_protected_resource_metadata() {
    let rig = AuthRig::start().await;
    let r = Client::new()
        .get(rig.url("/.well-known/oauth-protected-resource/mcp/demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let prm: Value = r.json().await.unwrap();
    assert_eq!(prm["resource"], json!(rig.resource("demo")));
    assert_eq!(prm["authorization_servers"].as_array().unwrap().len(), 1);
    let scopes = prm["scopes_supported"].as_array().unwrap();
    assert!(!scopes.contains(&json!("offline_access")));
    assert!(scopes.len() <= 2);
    let r = Client::new()
        .get(rig.url("/.well-known/oauth-protected-resource/mcp/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Two upstreams: the root document would be ambiguous.
    let r = Client::new()
        .get(rig.url("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn rs02_rs03_challenges_without_and_with_a_bad_token() {
    let rig = AuthRig::start().await;
    let r = Client::new()
        .post(rig.resource("demo"))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        !challenge.contains("error="),
        "no error code without credentials: {challenge}"
    );
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}\"",
            rig.url("/.well-known/oauth-protected-resource/mcp/demo")
        )),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp\""), "{challenge}");
    let r = call(&rig, "demo", "mcpgate_at_not-a-real-token", "tools/list").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn as04_pkce_required_and_checked() {
    let rig = AuthRig::start().await;
    let client_id = rig.register(CB).await;
    let b = browser();
    // No challenge at all: the error goes back to the (verified) client.
    let mut url = Url::parse(&authorize_url(&rig, &client_id, CB, "x", &[])).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let back = drive(&rig, &b, url.as_str()).await;
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    // plain is refused.
    let p = pkce();
    let plain = authorize_url(&rig, &client_id, CB, &p.verifier, &[])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let back = drive(&rig, &b, &plain).await;
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));

    let back = drive(
        &rig,
        &b,
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[]),
    )
    .await;
    let code = param(&back, "code").unwrap();
    let wrong = pkce();
    let r = exchange(&rig, &client_id, &code, &wrong.verifier, CB).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The code was spent by that attempt: even the right verifier cannot use it now.
    let r = exchange(&rig, &client_id, &code, &p.verifier, CB).await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let r = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", CB),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn as04_as06_a_reused_code_revokes_what_it_issued() {
    let rig = AuthRig::start().await;
    let client_id = rig.register(CB).await;
    let p = pkce();
    let back = drive(
        &rig,
        &browser(),
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[]),
    )
    .await;
    assert_eq!(params(&back, "code"), 1);
    assert_eq!(params(&back, "state"), 1);
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(params(&back, "error"), 0);
    let code = param(&back, "code").unwrap();
    let first: Value = exchange(&rig, &client_id, &code, &p.verifier, CB)
        .await
        .json()
        .await
        .unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(call_ok(&rig, access).await, StatusCode::OK);
    let again = exchange(&rig, &client_id, &code, &p.verifier, CB).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        call_ok(&rig, access).await,
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn as05_redirect_uris_exact_loopback_any_port_and_never_an_open_redirect() {
    let rig = AuthRig::start().await;
    let client_id = rig.register(CB).await;
    let p = pkce();
    let b = browser();
    // Loopback: any port.
    let back = drive(
        &rig,
        &b,
        &authorize_url(
            &rig,
            &client_id,
            "http://127.0.0.1:61234/callback",
            &p.challenge,
            &[],
        ),
    )
    .await;
    assert_eq!(back.port(), Some(61234));
    assert!(param(&back, "code").is_some());
    // Unregistered: shown, not redirected.
    for evil in [
        "https://evil.example/callback",
        "http://127.0.0.1:5000/other",
    ] {
        let r = b
            .get(authorize_url(&rig, &client_id, evil, &p.challenge, &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{evil}");
        assert!(r.headers().get("location").is_none());
    }
    // Unknown client: shown too.
    let r = b
        .get(authorize_url(&rig, "nobody", CB, &p.challenge, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    // Repeated parameters are malformed.
    let r = b
        .get(format!(
            "{}&state=again",
            authorize_url(&rig, &client_id, CB, &p.challenge, &[])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn as07_as10_as17_token_response() {
    let rig = AuthRig::start_with(|c| c.oauth.access_token_ttl_secs = 600).await;
    let client_id = rig.register(CB).await;
    let p = pkce();
    let back = drive(
        &rig,
        &browser(),
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[]),
    )
    .await;
    let r = exchange(
        &rig,
        &client_id,
        &param(&back, "code").unwrap(),
        &p.verifier,
        CB,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("mcpgate_at_")
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("mcpgate_rt_")
    );
    assert!(
        body.get("id_token").is_none(),
        "no identity-provider token ever reaches a client"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn as08_rs04_resource_binding() {
    let rig = AuthRig::start().await;
    let client_id = rig.register(CB).await;
    let p = pkce();
    let b = browser();
    let bad = authorize_url(&rig, &client_id, CB, &p.challenge, &[])
        .replace("%2Fmcp%2Fdemo", "%2Fmcp%2Fnowhere");
    let back = drive(&rig, &b, &bad).await;
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_target"));

    let back = drive(
        &rig,
        &b,
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[]),
    )
    .await;
    let code = param(&back, "code").unwrap();
    let r = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", p.verifier.as_str()),
            ("redirect_uri", CB),
            ("client_id", client_id.as_str()),
            ("resource", rig.resource("other").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_target");

    let (_, tokens) = tokens(&rig).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        call(&rig, "demo", access, "tools/list").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&rig, "other", access, "tools/list").await.status(),
        StatusCode::UNAUTHORIZED,
        "a token for A at B"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn as09_refresh_rotates_and_reuse_revokes_the_family() {
    // No reuse grace: the reuse below comes at once (the grace is tested in `hardening`).
    let rig = AuthRig::start_with(|c| c.oauth.refresh_reuse_grace_secs = 0).await;
    let (client_id, first) = tokens(&rig).await;
    let refresh = |token: String| {
        let client_id = client_id.clone();
        let url = rig.url("/oauth/token");
        async move {
            Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", client_id.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let r = refresh(rt1.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.unwrap();
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "a new refresh token every time");
    let access2 = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(call_ok(&rig, &access2).await, StatusCode::OK);

    // Another client cannot use it.
    let other = rig.register(CB).await;
    let r = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt2.as_str()),
            ("client_id", other.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // Reuse of rt1: the whole family goes, including rt2 and access2.
    let r = refresh(rt1).await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(call_ok(&rig, &access2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(rt2).await.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn as11_dynamic_registration() {
    let rig = AuthRig::start().await;
    let post = |body: Value| {
        Client::new()
            .post(rig.url("/oauth/register"))
            .json(&body)
            .send()
    };
    let r =
        post(json!({"redirect_uris": ["http://localhost:3000/cb"], "application_type": "native"}))
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["client_id"]
            .as_str()
            .unwrap()
            .starts_with("mcpgate_client_")
    );
    assert!(body.get("client_secret").is_none(), "public client");
    for (bad, error) in [
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://a.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "application_type": "tv"}),
            "invalid_client_metadata",
        ),
        (json!("not an object"), "invalid_client_metadata"),
    ] {
        let r = post(bad.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], error, "{bad}");
    }
    let r = post(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"})).await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body["client_secret"].as_str().unwrap().len() > 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn as13_consent_per_client_remembered_and_bound_to_the_client() {
    let rig = AuthRig::start().await;
    let first = rig.register(CB).await;
    let second = rig.register(CB).await;
    let p = pkce();
    let b = browser();
    drive(
        &rig,
        &b,
        &authorize_url(&rig, &first, CB, &p.challenge, &[]),
    )
    .await;

    // Approved once: straight back to the client, no consent page.
    let r = b
        .get(authorize_url(&rig, &first, CB, &p.challenge, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"].to_str().unwrap().starts_with(CB));

    // A new client always asks; the page names it, shows the redirect host, warns about
    // loopback-only redirects, and refuses framing.
    let r = b
        .get(authorize_url(&rig, &second, CB, &p.challenge, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("Test Client"));
    assert!(html.contains("<strong>127.0.0.1</strong>"));
    assert!(html.contains("runs on your own computer"));

    // The consent form of `second` cannot approve `first`'s request (the token is bound to
    // the client), and a made-up token is refused.
    let token = hidden(&html, "csrf");
    let first_request = Url::parse(&authorize_url(
        &rig,
        &first,
        CB,
        &p.challenge,
        &[("scope", "mcp:read")],
    ))
    .unwrap()
    .query()
    .unwrap()
    .to_owned();
    let r = b
        .post(rig.url("/oauth/authorize"))
        .form(&[
            ("csrf", token.as_str()),
            ("request", first_request.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Deny goes back to the client as access_denied, with state and iss.
    let r = b
        .post(rig.url("/oauth/authorize"))
        .form(&[
            ("csrf", token.as_str()),
            ("request", hidden(&html, "request").as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    let back = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(
        param(&back, "iss").as_deref(),
        Some(rig.gateway.base.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rs05_insufficient_scope_names_what_is_needed() {
    let rig = AuthRig::start().await;
    let client_id = rig.register(CB).await;
    let p = pkce();
    let back = drive(
        &rig,
        &browser(),
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[("scope", "mcp:read")]),
    )
    .await;
    let body: Value = exchange(
        &rig,
        &client_id,
        &param(&back, "code").unwrap(),
        &p.verifier,
        CB,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["scope"], "mcp:read");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        call(&rig, "demo", access, "tools/list").await.status(),
        StatusCode::OK
    );
    let r = call(&rig, "demo", access, "tools/call").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_and_introspection() {
    let rig = AuthRig::start().await;
    let (client_id, t) = tokens(&rig).await;
    let access = t["access_token"].as_str().unwrap();
    let introspect = |token: String, secret: &'static str| {
        Client::new()
            .post(rig.url("/oauth/introspect"))
            .basic_auth("introspector", Some(secret))
            .form(&[("token", token)])
            .send()
    };
    let r: Value = introspect(access.into(), "introspector-secret-value")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["active"], true);
    assert_eq!(r["aud"], json!(rig.resource("demo")));
    assert_eq!(r["client_id"], json!(client_id));
    let r = introspect(access.into(), "wrong-secret").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    // A public client may not introspect.
    let r = Client::new()
        .post(rig.url("/oauth/introspect"))
        .form(&[("token", access), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(call_ok(&rig, access).await, StatusCode::OK);
    let r = Client::new()
        .post(rig.url("/oauth/revoke"))
        .form(&[("token", access), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        call_ok(&rig, access).await,
        StatusCode::UNAUTHORIZED,
        "at once, despite the cache"
    );
    let r: Value = introspect(access.into(), "introspector-secret-value")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({ "active": false }));

    // Revoking a refresh token ends its family.
    let (client_id, t) = tokens(&rig).await;
    let access = t["access_token"].as_str().unwrap();
    let r = Client::new()
        .post(rig.url("/oauth/revoke"))
        .form(&[
            ("token", t["refresh_token"].as_str().unwrap()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(call_ok(&rig, access).await, StatusCode::UNAUTHORIZED);
    // Unknown tokens: 200 all the same (RFC 7009 §2.2).
    let r = Client::new()
        .post(rig.url("/oauth/revoke"))
        .form(&[("token", "whatever"), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_user_stops_their_oauth_tokens_at_once() {
    let rig = AuthRig::start().await;
    let (_, t) = tokens(&rig).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(call_ok(&rig, access).await, StatusCode::OK);
    let store = rig.db.store().await.unwrap();
    let user = store.find_user_by_email(USER).await.unwrap().unwrap();
    // Disable through the admin API so this replica's cache hears of it.
    let admin: Value = Client::new()
        .post(rig.url("/api/v1/login"))
        .json(&json!({"email": USER, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = Client::new()
        .post(rig.url(&format!("/api/v1/admin/users/{}/disable", user.id)))
        .bearer_auth(admin["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(call_ok(&rig, access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_token_check_costs_no_database_work() {
    let rig = AuthRig::start().await;
    let (_, t) = tokens(&rig).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(call_ok(&rig, access).await, StatusCode::OK);
    // Checkouts of the request path: all of them but the audit writer's (one per batch,
    // off the request path).
    let checkouts = || async {
        let text = Client::new()
            .get(rig.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let metric = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        metric("mcpgate_db_checkout_held_seconds_count") - metric("mcpgate_audit_batches_total")
    };
    let before = checkouts().await;
    for _ in 0..20 {
        assert_eq!(call_ok(&rig, access).await, StatusCode::OK);
    }
    let after = checkouts().await;
    // The /metrics requests themselves take no checkouts either.
    assert_eq!(
        after - before,
        0.0,
        "20 authenticated calls touched the database"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn as16_a_plain_http_issuer_off_loopback_is_a_config_error() {
    let mut config = test_config("sqlite://unused.db");
    config.public_url = "http://gateway.example.com".into();
    let errors = config.validate().err().unwrap();
    assert!(errors.iter().any(|e| e.path == "public_url"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_expire_and_refresh_keeps_working() {
    let rig = AuthRig::start_with(|c| c.oauth.access_token_ttl_secs = 1).await;
    let (client_id, t) = tokens(&rig).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(call_ok(&rig, access).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        call_ok(&rig, access).await,
        StatusCode::UNAUTHORIZED,
        "expired, even from the cache"
    );
    let r: Value = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        call_ok(&rig, r["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
}

/// Serves client metadata documents on loopback and counts fetches.
async fn document_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let doc = |base: &str, path: &str, id_path: &str| {
        json!({ "client_id": format!("{base}{id_path}"), "client_name": "Metadata Client",
                "redirect_uris": [CB], "token_endpoint_auth_method": "none" })
        .to_string()
        .replace("{path}", path)
    };
    let good = doc(&base, "/good.json", "/good.json");
    let mismatch = doc(&base, "/mismatch.json", "/someone-else.json");
    let counter = hits.clone();
    let app = axum::Router::new()
        .route(
            "/good.json",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let good = good.clone();
                async move {
                    (
                        [
                            ("content-type", "application/json"),
                            ("cache-control", "max-age=3600"),
                        ],
                        good,
                    )
                }
            }),
        )
        .route(
            "/mismatch.json",
            axum::routing::get(move || {
                let m = mismatch.clone();
                async move { m }
            }),
        )
        .route(
            "/large.json",
            axum::routing::get(|| async { "x".repeat(64 * 1024) }),
        )
        .route(
            "/redirect.json",
            axum::routing::get(|| async {
                axum::response::Redirect::temporary("/good.json").into_response()
            }),
        )
        .route(
            "/slow.json",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "{}"
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

#[tokio::test(flavor = "multi_thread")]
async fn as12_client_id_metadata_documents() {
    let rig = AuthRig::start_with(|c| {
        c.oauth.client_metadata.allow_loopback_http = true;
        c.oauth.client_metadata.timeout_ms = 500;
    })
    .await;
    let (docs, hits) = document_server().await;
    let b = browser();
    let p = pkce();

    // A good document: the whole flow works with the URL as client_id.
    let client_id = format!("{docs}/good.json");
    let back = drive(
        &rig,
        &b,
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[]),
    )
    .await;
    let code = param(&back, "code").unwrap();
    let r = exchange(&rig, &client_id, &code, &p.verifier, CB).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Cached per max-age: a second authorization does not fetch again.
    drive(
        &rig,
        &b,
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[]),
    )
    .await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Its redirect_uris govern.
    let r = b
        .get(authorize_url(
            &rig,
            &client_id,
            "https://elsewhere.example/cb",
            &p.challenge,
            &[],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    for (path, why) in [
        ("/mismatch.json", "does not equal the URL"),
        ("/large.json", "larger than"),
        ("/redirect.json", "redirects are not followed"),
        ("/slow.json", "could not be fetched"),
        ("/missing.json", "could not be fetched"),
    ] {
        let started = std::time::Instant::now();
        let r = b
            .get(authorize_url(
                &rig,
                &format!("{docs}{path}"),
                CB,
                &p.challenge,
                &[],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(
            r.headers().get("location").is_none(),
            "{path}: never redirected"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains(why), "{path}: {html}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path}: bounded in time"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn as12_metadata_documents_on_private_addresses_are_refused_by_default() {
    let rig = AuthRig::start().await;
    let (docs, hits) = document_server().await;
    let p = pkce();
    let r = browser()
        .get(authorize_url(
            &rig,
            &format!("{docs}/good.json"),
            CB,
            &p.challenge,
            &[],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no request was made"
    );
}

/// The Python `mcp` SDK, headless, in both protocol eras: discovers, registers (DCR, and a
/// metadata document), signs in, consents, calls a tool, refreshes after the access token
/// expires, and gets 401 after revocation.
#[tokio::test(flavor = "multi_thread")]
async fn tp10_python_sdk_full_oauth_flow_in_both_eras() {
    let Some(python) =
        mcpgate_tests::fixtures::python("tp10_python_sdk_full_oauth_flow_in_both_eras").unwrap()
    else {
        return;
    };
    let rig = AuthRig::start_with(|c| {
        c.oauth.access_token_ttl_secs = 2;
        c.oauth.client_metadata.allow_loopback_http = true;
    })
    .await;
    for mode in ["legacy", "2026-07-28"] {
        for registration in ["dcr", "cimd"] {
            let options = if registration == "cimd" {
                json!({ "cimd": format!("{}/python.json", python_documents(&rig).await), "wait_for_expiry": 2.5, "revoke": true })
            } else {
                json!({ "wait_for_expiry": 2.5, "revoke": true })
            };
            let report = mcpgate_tests::fixtures::python_oauth_flow(
                &python,
                &rig.resource("demo"),
                mode,
                (USER, PASSWORD),
                &options,
            )
            .await
            .unwrap_or_else(|e| panic!("{mode}/{registration}: {e}"));
            let what = format!("{mode}/{registration}: {report}");
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
            assert!(
                report["tokens_issued"].as_u64().unwrap() >= 2,
                "refreshed: {what}"
            );
            assert_eq!(report["revoke_status"], 200, "{what}");
            assert_eq!(report["after_revoke_status"], 401, "{what}");
            let client_id = report["client_id"].as_str().unwrap();
            if registration == "cimd" {
                assert!(client_id.ends_with("/python.json"), "{what}");
            } else {
                assert!(client_id.starts_with("mcpgate_client_"), "{what}");
            }
        }
    }
}

/// A document server for the Python client's own redirect URI.
async fn python_documents(_rig: &AuthRig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let doc = json!({
        "client_id": format!("{base}/python.json"),
        "client_name": "mcpgate python e2e (metadata document)",
        "redirect_uris": ["http://127.0.0.1:33333/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none"
    })
    .to_string();
    let app = axum::Router::new().route(
        "/python.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { ([("content-type", "application/json")], doc) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Browser-based MCP clients (the Inspector in direct mode, web apps) fetch discovery, the
/// token-side endpoints and `/mcp/*` from another origin: CORS lets them, for `/mcp/*` only
/// from the allowed origins, and never on the authorization page.
#[tokio::test(flavor = "multi_thread")]
async fn cors_lets_browser_clients_discover_register_get_tokens_and_call_mcp() {
    const APP: &str = "http://localhost:6274";
    const EVIL: &str = "http://evil.example";
    let rig = AuthRig::start_with(|c| c.proxy.allowed_origins = vec![APP.into()]).await;
    let http = Client::new();
    let acao = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let preflight =
        |path: &str, origin: &'static str, method: &'static str, headers: &'static str| {
            http.request(reqwest::Method::OPTIONS, rig.url(path))
                .header("origin", origin)
                .header("access-control-request-method", method)
                .header("access-control-request-headers", headers)
                .send()
        };

    // Discovery and the token-side endpoints: any origin.
    for path in [
        "/.well-known/oauth-protected-resource/mcp/demo",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = http
            .get(rig.url(path))
            .header("origin", EVIL)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(acao(&r).as_deref(), Some("*"), "{path}");
    }
    for path in ["/oauth/register", "/oauth/token", "/oauth/revoke"] {
        let r = preflight(path, APP, "POST", "content-type").await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(acao(&r).as_deref(), Some("*"), "{path}");
        let methods = r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(methods.contains("POST"), "{path}: {methods}");
    }
    let r = http
        .post(rig.url("/oauth/register"))
        .header("origin", APP)
        .json(&json!({ "client_name": "Web app", "redirect_uris": [format!("{APP}/oauth/callback")] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(acao(&r).as_deref(), Some("*"));
    // An error from the token endpoint is readable too (the client must see `invalid_grant`).
    let r = http
        .post(rig.url("/oauth/token"))
        .header("origin", APP)
        .form(&[("grant_type", "authorization_code"), ("code", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(acao(&r).as_deref(), Some("*"));

    // The authorization page is a navigation: no CORS.
    let r = http
        .get(rig.url("/oauth/authorize?client_id=x"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&r), None);

    // /mcp/*: the allowed origin may call, and read the challenge and the session id.
    let r = preflight(
        "/mcp/demo",
        APP,
        "POST",
        "authorization,content-type,mcp-protocol-version,mcp-session-id",
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(acao(&r).as_deref(), Some(APP));
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("mcp-session-id"),
        "{allowed}"
    );
    let r = http
        .post(rig.resource("demo"))
        .header("origin", APP)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(acao(&r).as_deref(), Some(APP));
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"),
        "{exposed}"
    );
    // Any other origin gets no CORS, and its calls are refused outright.
    let r = preflight("/mcp/demo", EVIL, "POST", "authorization")
        .await
        .unwrap();
    assert_eq!(acao(&r), None);
    let r = http
        .post(rig.resource("demo"))
        .header("origin", EVIL)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(acao(&r), None);
}
