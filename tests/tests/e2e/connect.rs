//! Connected accounts (`user_oauth`): a user without a connection gets a tool result naming
//! the connect URL; another signed-in user opening that URL is refused; the owner signs in at
//! the upstream's authorization server (a strict fake here: PKCE S256 checked, `resource`
//! required, DCR) and the retried call carries the token minted for them (checked at the
//! upstream, whose `headers` tool echoes what it received); an authorization server that
//! fails the exchange stores nothing; disconnecting revokes at the upstream (RFC 7009).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcpgate_core::SecretString;
use mcpgate_fixture_oauth_fakes as fakes;
use mcpgate_tests::fixtures::FixtureUpstream;
use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::{Client, redirect::Policy};
use serde_json::{Value, json};

use crate::proxy::{read, result_text, tool_call, upstream_config};
use crate::upstream_credentials::credentials;

const ALICE: &str = "alice@example.com";
const ALICE_PW: &str = "alice's long password";
const BOB: &str = "bob@example.com";
const BOB_PW: &str = "bob's long password here";

/// Bearer tokens for `/mcp`, each naming a user id (filled once the users exist).
#[derive(Clone, Default)]
struct Tokens(Arc<RwLock<HashMap<String, String>>>);

#[async_trait::async_trait]
impl mcpgate_server::auth::Authenticator for Tokens {
    async fn authenticate(
        &self,
        token: &str,
        resource: &str,
    ) -> Result<mcpgate_core::Principal, mcpgate_server::auth::AuthError> {
        match self.0.read().unwrap().get(token) {
            Some(user) => Ok(mcpgate_core::Principal {
                user_id: user.clone(),
                client_id: "test-client".into(),
                scopes: vec!["mcp".into()],
                resource: resource.to_owned(),
            }),
            None => Err(mcpgate_server::auth::AuthError::InvalidToken(
                "not a test token".into(),
            )),
        }
    }

    fn challenge_scope(&self, _resource: &str) -> Option<String> {
        Some("mcp".into())
    }
}

#[derive(Default)]
struct AsState {
    base: String,
    /// code → (PKCE challenge, redirect URI)
    codes: HashMap<String, (String, String)>,
    minted: Vec<String>,
    refresh: Vec<String>,
    revoked: Vec<String>,
    fail_token: bool,
    n: u64,
}

type Shared = Arc<Mutex<AsState>>;

/// The upstream's authorization server, at `{base}/as`.
async fn fake_as() -> (fakes::Running, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shared: Shared = Arc::new(Mutex::new(AsState {
        base: base.clone(),
        ..Default::default()
    }));
    let app = Router::new()
        .route("/.well-known/oauth-authorization-server/as", get(metadata))
        .route("/as/register", post(register))
        .route("/as/authorize", get(authorize))
        .route("/as/token", post(token))
        .route("/as/revoke", post(revoke))
        .with_state(shared.clone());
    (fakes::serve_on(listener, app), shared)
}

async fn metadata(State(s): State<Shared>) -> Response {
    let base = s.lock().unwrap().base.clone();
    fakes::json(
        StatusCode::OK,
        json!({
            "issuer": format!("{base}/as"),
            "authorization_endpoint": format!("{base}/as/authorize"),
            "token_endpoint": format!("{base}/as/token"),
            "registration_endpoint": format!("{base}/as/register"),
            "revocation_endpoint": format!("{base}/as/revoke"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
        }),
    )
}

async fn register(body: axum::body::Bytes) -> Response {
    let asked: Value = serde_json::from_slice(&body).unwrap_or_default();
    fakes::json(
        StatusCode::CREATED,
        json!({
            "client_id": "dyn-client",
            "redirect_uris": asked["redirect_uris"],
            "token_endpoint_auth_method": "none",
        }),
    )
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("client_id").map(String::as_str) == Some("dyn-client")
        && q.contains_key("resource");
    if !ok {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let mut s = s.lock().unwrap();
    s.n += 1;
    let code = format!("code-{}", s.n);
    let redirect_uri = q["redirect_uri"].clone();
    s.codes.insert(
        code.clone(),
        (q["code_challenge"].clone(), redirect_uri.clone()),
    );
    let to = fakes::code_response(&redirect_uri, &code, &q["state"]).unwrap();
    fakes::redirect(&to)
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = fakes::form(&headers, &body).unwrap_or_default();
    let mut s = s.lock().unwrap();
    if s.fail_token {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let Some((challenge, redirect_uri)) = form.get("code").and_then(|c| s.codes.remove(c)) else {
        return fakes::json(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}));
    };
    let verifier_ok = form
        .get("code_verifier")
        .is_some_and(|v| fakes::s256(v) == challenge);
    if !verifier_ok
        || form.get("redirect_uri") != Some(&redirect_uri)
        || !form.contains_key("resource")
    {
        return fakes::json(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}));
    }
    s.n += 1;
    let at = format!("upstream-at-{}", s.n);
    s.minted.push(at.clone());
    let rt = format!("upstream-rt-{}", s.n);
    s.refresh.push(rt.clone());
    fakes::json(
        StatusCode::OK,
        json!({
            "access_token": at,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": rt,
        }),
    )
}

async fn revoke(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = fakes::form(&headers, &body).unwrap_or_default();
    if let Some(t) = form.get("token") {
        s.lock().unwrap().revoked.push(t.clone());
    }
    StatusCode::OK.into_response()
}

fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn field(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&needle)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + needle.len();
    html[at..].split('"').next().unwrap().replace("&amp;", "&")
}

async fn sign_in(server: &TestServer, email: &str, password: &str) -> Client {
    let b = browser();
    let page = b
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = b
        .post(server.url("/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", &field(&page, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{email} signs in");
    b
}

/// One `headers` tool call (2026-07-28 era, whose client here declares no URL elicitation)
/// by `token`: status, the last JSON-RPC message, the result's text.
async fn call(server: &TestServer, token: &str) -> (StatusCode, Value, Option<String>) {
    call_with(server, token, tool_call(1, "headers", json!({}), true)).await
}

/// A 2025-11-25 POST (in `session` if given): status, the session id answered, the last
/// JSON-RPC message.
async fn post_2025(
    server: &TestServer,
    token: &str,
    session: Option<&str>,
    message: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Client::new()
        .post(server.url("/mcp/drive"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(sid) = session {
        request = request
            .header("mcp-session-id", sid)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let r = request.body(message.to_string()).send().await.unwrap();
    let sid = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, ct, body) = read(r).await.unwrap();
    let last = crate::proxy::messages(&ct, &body)
        .pop()
        .unwrap_or(Value::Null);
    (status, sid, last)
}

fn initialize_2025(url_elicitation: bool) -> Value {
    let mut m = crate::proxy::initialize(1);
    if url_elicitation {
        m["params"]["capabilities"] = json!({"elicitation": {"url": {}}});
    }
    m
}

/// A `headers` call whose client declares URL elicitation (2026-07-28), with the
/// `requestState` (and an `inputResponses`) of a retry if given.
fn url_capable_call(id: u64, request_state: Option<&str>) -> Value {
    let mut m = tool_call(id, "headers", json!({}), true);
    m["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({"elicitation": {"url": {}}});
    if let Some(rs) = request_state {
        m["params"]["requestState"] = json!(rs);
        m["params"]["inputResponses"] =
            json!({"mcpgate-connect-drive": {"result": {"action": "accept"}}});
    }
    m
}

async fn call_with(
    server: &TestServer,
    token: &str,
    message: Value,
) -> (StatusCode, Value, Option<String>) {
    let r = Client::new()
        .post(server.url("/mcp/drive"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "headers")
        .body(message.to_string())
        .send()
        .await
        .unwrap();
    let (status, ct, body) = read(r).await.unwrap();
    let text = result_text(&ct, &body);
    let last = crate::proxy::messages(&ct, &body)
        .pop()
        .unwrap_or_else(|| panic!("no message in {body}"));
    (status, last, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_through_the_upstreams_as_then_the_call_carries_the_users_own_token() {
    let upstream = FixtureUpstream::start().await.unwrap();
    let (as_server, as_state) = fake_as().await;
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    config.bootstrap.admin_email = Some(ALICE.into());
    config.bootstrap.admin_password = Some(SecretString::new(ALICE_PW));
    let mut drive = upstream_config("drive", &upstream.url);
    drive.credentials = credentials(&format!(
        "kind = \"user_oauth\"\ndisplay_name = \"Drive\"\nregistration = \"dynamic\"\n\
         authorization_server = \"{}/as\"",
        as_server.base
    ));
    config.upstreams.push(drive);
    let tokens = Tokens::default();
    let t = tokens.clone();
    let server = TestServer::start_with(config, move |s| s.with_authenticator(Arc::new(t)))
        .await
        .unwrap();

    // Users: Alice (the bootstrap admin) and Bob, each with an MCP bearer token.
    let admin: Value = Client::new()
        .post(server.url("/api/v1/login"))
        .json(&json!({"email": ALICE, "password": ALICE_PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let me: Value = Client::new()
        .get(server.url("/api/v1/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_id = me["id"].as_str().unwrap().to_owned();
    let bob: Value = Client::new()
        .post(server.url("/api/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": BOB, "password": BOB_PW, "display_name": "Bob"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob_id = bob["id"].as_str().unwrap().to_owned();
    {
        let mut map = tokens.0.write().unwrap();
        map.insert("alice-mcp".into(), alice_id.clone());
        map.insert("bob-mcp".into(), bob_id.clone());
    }

    // Not connected: the tool result is an error naming the connect URL (and nothing else
    // about Alice in clear).
    let (status, message, text) = call(&server, "alice-mcp").await;
    assert_eq!(status, StatusCode::OK, "{message}");
    assert_eq!(message["result"]["isError"], true, "{message}");
    let text = text.unwrap();
    let prefix = server.url("/connect/drive?elicitation=");
    let at = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no connect URL in {text:?}"));
    let connect_url: String = text[at..].split_whitespace().next().unwrap().to_owned();
    assert!(text.contains("Drive"), "{text}");
    for personal in [ALICE, &alice_id] {
        assert!(!connect_url.contains(personal), "{connect_url}");
    }

    // A 2026-07-28 client declaring URL elicitation gets `input_required` with the URL and
    // a sealed requestState instead.
    let (status, message, _) = call_with(&server, "alice-mcp", url_capable_call(2, None)).await;
    assert_eq!(status, StatusCode::OK, "{message}");
    let result = &message["result"];
    assert_eq!(result["resultType"], "input_required", "{message}");
    let ask = &result["inputRequests"]["mcpgate-connect-drive"];
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["mode"], "url");
    assert!(
        ask["params"]["url"].as_str().unwrap().starts_with(&prefix),
        "{ask}"
    );
    let request_state = result["requestState"].as_str().unwrap().to_owned();
    assert!(!request_state.contains(&alice_id) && !request_state.contains(ALICE));
    // Tampered, foreign (Bob replaying Alice's) or for other params: refused clearly.
    let mut tampered = request_state.clone();
    tampered.insert(12, 'x');
    for (token, message) in [
        ("alice-mcp", url_capable_call(3, Some(&tampered))),
        ("bob-mcp", url_capable_call(3, Some(&request_state))),
        ("alice-mcp", {
            let mut m = url_capable_call(3, Some(&request_state));
            m["params"]["arguments"] = json!({"other": true});
            m
        }),
    ] {
        let (status, answer, _) = call_with(&server, token, message).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("requestState is not valid"),
            "{answer}"
        );
    }
    // Retried before connecting: asked again.
    let (_, message, _) = call_with(
        &server,
        "alice-mcp",
        url_capable_call(4, Some(&request_state)),
    )
    .await;
    assert_eq!(
        message["result"]["resultType"], "input_required",
        "{message}"
    );

    // 2025-11-25: a client declaring URL elicitation gets -32042 with the elicitation in
    // `data` (here at initialize, which already needs the connection); one without gets a
    // JSON-RPC error naming the URL.
    let (status, _, answer) = post_2025(&server, "alice-mcp", None, initialize_2025(true)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["error"]["code"], -32042, "{answer}");
    let elicitation = &answer["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    assert!(
        elicitation["url"].as_str().unwrap().starts_with(&prefix),
        "{answer}"
    );
    assert!(
        elicitation["elicitationId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let (status, _, answer) = post_2025(&server, "alice-mcp", None, initialize_2025(false)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&prefix),
        "{answer}"
    );

    // Phishing: Bob, signed in, opening Alice's link is refused and nothing starts.
    let bob_browser = sign_in(&server, BOB, BOB_PW).await;
    let r = bob_browser.get(&connect_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(html.contains("made for another account"), "{html}");
    assert!(!html.contains("name=\"csrf\""), "no form for Bob: {html}");
    // A tampered link is not valid either.
    let mut tampered = connect_url.clone();
    tampered.push('A');
    let r = bob_browser.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Not signed in: off to the sign-in page, coming back to the link.
    let r = browser().get(&connect_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?return_to=%2Fconnect%2Fdrive")
    );

    // The upstream AS failing the exchange: a clear page, nothing stored.
    let alice = sign_in(&server, ALICE, ALICE_PW).await;
    as_state.lock().unwrap().fail_token = true;
    let callback = start_connect(&alice, &connect_url).await;
    let r = alice.get(callback.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Nothing was stored"), "{html}");
    let store = db.store().await.unwrap();
    assert!(
        store
            .connected_account(&alice_id, "drive")
            .await
            .unwrap()
            .is_none()
    );
    let (_, message, _) = call(&server, "alice-mcp").await;
    assert_eq!(message["result"]["isError"], true, "{message}");

    // Connecting for real.
    as_state.lock().unwrap().fail_token = false;
    let callback = start_connect(&alice, &connect_url).await;
    let r = alice.get(callback.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Drive connected"));
    let minted = as_state.lock().unwrap().minted.clone();
    assert_eq!(minted.len(), 1, "{minted:?}");
    // Stored sealed: the token is not in the row.
    let row = store
        .connected_account(&alice_id, "drive")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !row.sealed
            .windows(minted[0].len())
            .any(|w| w == minted[0].as_bytes())
    );

    // The retried call carries Alice's upstream token, checked at the upstream.
    let (status, message, text) = call(&server, "alice-mcp").await;
    assert_eq!(status, StatusCode::OK, "{message}");
    assert!(message["result"]["isError"] != true, "{message}");
    let seen: Value = serde_json::from_str(&text.unwrap()).unwrap();
    assert_eq!(seen["authorization"], format!("Bearer {}", minted[0]));
    // The 2026-07-28 retry with mcpgate's requestState goes through (stripped) with it too.
    let (status, message, text) = call_with(
        &server,
        "alice-mcp",
        url_capable_call(5, Some(&request_state)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{message}");
    let seen: Value = serde_json::from_str(&text.unwrap()).unwrap();
    assert_eq!(seen["authorization"], format!("Bearer {}", minted[0]));
    // The Python `mcp` SDK, both eras, as Alice: her upstream token reaches the upstream.
    if let Some(python) = mcpgate_tests::fixtures::python(
        "connect_through_the_upstreams_as_then_the_call_carries_the_users_own_token",
    )
    .unwrap()
    {
        for mode in ["legacy", "2026-07-28"] {
            let report = mcpgate_tests::fixtures::python_client(
                &python,
                &server.url("/mcp/drive"),
                mode,
                Some("alice-mcp"),
                "headers",
                &json!({}),
            )
            .await
            .unwrap();
            assert_eq!(report["is_error"], false, "{mode}: {report}");
            let seen: Value = serde_json::from_str(report["echo"][0].as_str().unwrap()).unwrap();
            assert_eq!(
                seen["authorization"],
                format!("Bearer {}", minted[0]),
                "{mode}"
            );
        }
    }
    // A 2025-11-25 session whose client declared URL elicitation (kept in the sealed session
    // id), used for the disconnect below.
    let (status, sid, answer) = post_2025(&server, "alice-mcp", None, initialize_2025(true)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let sid = sid.unwrap();
    let (status, _, _) = post_2025(
        &server,
        "alice-mcp",
        Some(&sid),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, answer) = post_2025(
        &server,
        "alice-mcp",
        Some(&sid),
        tool_call(7, "headers", json!({}), false),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let seen: Value =
        serde_json::from_str(answer["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(seen["authorization"], format!("Bearer {}", minted[0]));
    // Bob is still not connected: his call does not borrow Alice's token.
    let (_, message, text) = call(&server, "bob-mcp").await;
    assert_eq!(message["result"]["isError"], true, "{message}");
    assert!(!text.unwrap().contains(&minted[0]));

    // Disconnecting from /me/connections revokes at the upstream (RFC 7009).
    let page = alice
        .get(server.url("/me/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Drive</strong>: connected"), "{page}");
    let r = alice
        .post(server.url("/me/connections/drive/disconnect"))
        .form(&[("csrf", field(&page, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("revoked at the upstream"));
    {
        let s = as_state.lock().unwrap();
        assert_eq!(s.revoked, s.refresh, "the refresh token is revoked");
    }
    let (_, message, _) = call(&server, "alice-mcp").await;
    assert_eq!(message["result"]["isError"], true, "{message}");
    // In the 2025-11-25 session that declared URL elicitation: -32042.
    let (status, _, answer) = post_2025(
        &server,
        "alice-mcp",
        Some(&sid),
        tool_call(8, "headers", json!({}), false),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["error"]["code"], -32042, "{answer}");
    // Headless Chromium: a person opens a fresh connect link, signs in with the keyboard and
    // submits the page; the browser follows the authorization server back (the page's CSP
    // form-action lets it) and lands on "Drive connected"; the next call carries the new token.
    if let Some(chromium) = mcpgate_tests::fixtures::chromium(
        "connect_through_the_upstreams_as_then_the_call_carries_the_users_own_token",
    )
    .unwrap()
    {
        let (_, _, text) = call(&server, "alice-mcp").await;
        let text = text.unwrap();
        let url: String = text[text.find(&prefix).unwrap()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        let script = mcpgate_tests::fixtures::workspace_path("tests/python/connect_at_browser.py");
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(script)
            .arg(&chromium)
            .arg(&url)
            .arg(ALICE)
            .arg(ALICE_PW)
            .kill_on_drop(true);
        let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
            .await
            .expect("the browser run took over two minutes")
            .unwrap();
        assert!(
            out.status.success(),
            "connect_at_browser.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let pages = report["pages"].as_array().unwrap();
        assert!(
            pages[0]["url"].as_str().unwrap().contains("/login"),
            "{report}"
        );
        assert!(
            pages[1]["text"].as_str().unwrap().contains("Connect Drive"),
            "{report}"
        );
        assert!(
            pages[2]["url"]
                .as_str()
                .unwrap()
                .contains("/connect/drive/callback"),
            "{report}"
        );
        assert!(
            pages[2]["text"]
                .as_str()
                .unwrap()
                .contains("Drive connected"),
            "{report}"
        );
        let newest = as_state.lock().unwrap().minted.last().cloned().unwrap();
        assert_ne!(newest, minted[0]);
        let (_, message, text) = call(&server, "alice-mcp").await;
        assert!(message["result"]["isError"] != true, "{message}");
        let seen: Value = serde_json::from_str(&text.unwrap()).unwrap();
        assert_eq!(seen["authorization"], format!("Bearer {newest}"));
    }
    // A forged disconnect form is refused.
    let r = alice
        .post(server.url("/me/connections/drive/disconnect"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    server.stop().await.unwrap();
}

/// Opens the connect page, posts its form, follows the authorization server's auto-approval:
/// the callback URL on mcpgate the browser is sent back to.
async fn start_connect(browser: &Client, connect_url: &str) -> url::Url {
    let r = browser.get(connect_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = r.text().await.unwrap();
    assert!(html.contains("Connect Drive"), "{html}");
    let action = connect_url.split('?').next().unwrap();
    let r = browser
        .post(action)
        .form(&[
            ("csrf", field(&html, "csrf")),
            ("elicitation", field(&html, "elicitation")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    // The page's form-action names the authorization server the form redirects to.
    assert!(
        csp.contains(&to.origin().ascii_serialization()),
        "{csp} / {to}"
    );
    let back = fakes::authorize(&to).await.unwrap();
    assert!(back.path().ends_with("/connect/drive/callback"), "{back}");
    back
}

/// `user_secret`: the key entered on mcpgate's own form (CSRF-checked) reaches the upstream
/// for its user only; an empty key is refused and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_entered_on_the_connect_form_reaches_the_upstream_for_its_user_only() {
    let upstream = FixtureUpstream::start().await.unwrap();
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    config.bootstrap.admin_email = Some(ALICE.into());
    config.bootstrap.admin_password = Some(SecretString::new(ALICE_PW));
    let mut tracker = upstream_config("drive", &upstream.url);
    tracker.credentials = credentials(
        "kind = \"user_secret\"\ndisplay_name = \"Tracker\"\nheader = \"x-api-key\"\nscheme = \"\"",
    );
    config.upstreams.push(tracker);
    let tokens = Tokens::default();
    let t = tokens.clone();
    let server = TestServer::start_with(config, move |s| s.with_authenticator(Arc::new(t)))
        .await
        .unwrap();
    let login: Value = Client::new()
        .post(server.url("/api/v1/login"))
        .json(&json!({"email": ALICE, "password": ALICE_PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me: Value = Client::new()
        .get(server.url("/api/v1/me"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_id = me["id"].as_str().unwrap().to_owned();
    tokens
        .0
        .write()
        .unwrap()
        .insert("alice-mcp".into(), alice_id.clone());

    let (_, message, text) = call(&server, "alice-mcp").await;
    assert_eq!(message["result"]["isError"], true, "{message}");
    assert!(text.unwrap().contains("Tracker"));

    let alice = sign_in(&server, ALICE, ALICE_PW).await;
    let page = alice
        .get(server.url("/connect/drive"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("type=\"password\""), "{page}");
    // Without the form's CSRF token: refused.
    let r = alice
        .post(server.url("/connect/drive"))
        .form(&[("secret", "pat-alice-123")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // An empty key: refused, nothing stored.
    let r = alice
        .post(server.url("/connect/drive"))
        .form(&[("csrf", field(&page, "csrf").as_str()), ("secret", "  ")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let store = db.store().await.unwrap();
    assert!(
        store
            .connected_account(&alice_id, "drive")
            .await
            .unwrap()
            .is_none()
    );
    let page = alice
        .get(server.url("/connect/drive"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = alice
        .post(server.url("/connect/drive"))
        .form(&[
            ("csrf", field(&page, "csrf").as_str()),
            ("secret", "pat-alice-123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Tracker connected"));

    let (status, message, text) = call(&server, "alice-mcp").await;
    assert_eq!(status, StatusCode::OK, "{message}");
    let seen: Value = serde_json::from_str(&text.unwrap()).unwrap();
    assert_eq!(seen["x-api-key"], "pat-alice-123");
    server.stop().await.unwrap();
}
