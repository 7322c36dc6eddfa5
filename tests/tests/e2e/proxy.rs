//! The MCP proxy against a real MCP server (the rmcp fixture upstream): transport fidelity
//! (TP rows of MCP-AUTH.md's checklist), the resource-server rows it can already show (RS-06
//! to RS-10), sessions bound to their user, streaming, cancellation and upstream failures.

use std::time::{Duration, Instant};

use futures::StreamExt;
use mcpgate_server::config::UpstreamConfig;
use mcpgate_tests::fixtures::FixtureUpstream;
use mcpgate_tests::{TestDb, TestServer, TestTokens, test_config};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";
const V2025: &str = "2025-11-25";
const V2026: &str = "2026-07-28";

/// The fixture upstream behind mcpgate at `/mcp/fx`, and a client for both.
pub struct Rig {
    pub upstream: FixtureUpstream,
    pub gateway: TestServer,
    pub http: reqwest::Client,
    _db: TestDb,
}

pub fn upstream_config(name: &str, url: &str) -> UpstreamConfig {
    UpstreamConfig {
        name: name.into(),
        url: url.into(),
        response_timeout_ms: 10_000,
        idle_timeout_secs: None,
        credentials: Default::default(),
    }
}

impl Rig {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(
        adjust: impl FnOnce(&mut mcpgate_server::Config),
    ) -> anyhow::Result<Self> {
        let upstream = FixtureUpstream::start().await?;
        let db = TestDb::sqlite()?;
        let mut config = test_config(db.url());
        config.upstreams.push(upstream_config("fx", &upstream.url));
        adjust(&mut config);
        let gateway = TestServer::start_with_tokens(
            config,
            TestTokens::new([(ALICE, "alice"), (BOB, "bob")]),
        )
        .await?;
        Ok(Self {
            upstream,
            gateway,
            http: reqwest::Client::new(),
            _db: db,
        })
    }

    pub fn through(&self) -> String {
        self.gateway.url("/mcp/fx")
    }

    /// A POST to `url` carrying one JSON-RPC message, as an MCP client sends it.
    pub fn post(&self, url: &str, token: Option<&str>, body: &Value) -> RequestBuilder {
        let mut r = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(token) = token {
            r = r.bearer_auth(token);
        }
        r
    }

    /// A 2026-07-28 request with the headers that era requires.
    pub fn post_2026(&self, url: &str, token: Option<&str>, body: &Value) -> RequestBuilder {
        let mut r = self
            .post(url, token, body)
            .header("mcp-protocol-version", V2026);
        if let Some(method) = body["method"].as_str() {
            r = r.header("mcp-method", method);
        }
        if let Some(name) = body["params"]["name"].as_str() {
            r = r.header("mcp-name", name);
        }
        r
    }

    /// initialize + notifications/initialized (2025 era); returns the session id.
    pub async fn initialize(&self, url: &str, token: Option<&str>) -> anyhow::Result<String> {
        let init = self.post(url, token, &initialize(1)).send().await?;
        assert_eq!(init.status(), StatusCode::OK);
        let sid = init
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no mcp-session-id on the initialize response"))?;
        let _ = init.bytes().await?;
        let done = self
            .post(
                url,
                token,
                &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            )
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", V2025)
            .send()
            .await?;
        assert_eq!(done.status(), StatusCode::ACCEPTED);
        Ok(sid)
    }
}

pub fn initialize(id: u64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":{
        "protocolVersion": V2025, "capabilities": {},
        "clientInfo": {"name": "mcpgate-tests", "version": "1"}}})
}

pub fn meta_2026() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A `tools/call`; for 2026-07-28 with the `_meta` that era requires.
pub fn tool_call(id: u64, name: &str, args: Value, era_2026: bool) -> Value {
    let mut params = json!({"name": name, "arguments": args});
    if era_2026 {
        params["_meta"] = meta_2026();
    }
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params})
}

/// The JSON-RPC messages in a response body, whether JSON or SSE.
pub fn messages(content_type: &str, body: &str) -> Vec<Value> {
    if content_type.starts_with("application/json") {
        return serde_json::from_str(body).into_iter().collect();
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

pub async fn read(response: Response) -> anyhow::Result<(StatusCode, String, String)> {
    let status = response.status();
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((status, ct, response.text().await?))
}

/// The result of the last message (the response) in a body.
pub fn result_text(ct: &str, body: &str) -> Option<String> {
    messages(ct, body).last().and_then(|m| {
        m["result"]["content"][0]["text"]
            .as_str()
            .map(str::to_owned)
    })
}

// ---------------------------------------------------------------------------------------------
// TP: transport fidelity

#[tokio::test(flavor = "multi_thread")]
async fn tp01_json_and_sse_responses_pass_through_unchanged() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let (direct, through) = (rig.upstream.url.clone(), rig.through());

    // application/json (2026-07-28 echo): byte for byte what the upstream sent.
    let call = tool_call(1, "echo", json!({"text": "hi"}), true);
    let d = read(rig.post_2026(&direct, None, &call).send().await?).await?;
    let t = read(rig.post_2026(&through, Some(ALICE), &call).send().await?).await?;
    assert_eq!(d.0, StatusCode::OK);
    assert!(d.1.starts_with("application/json"), "{}", d.1);
    assert_eq!(d, t);

    // text/event-stream (progress notifications, then the result): same events, same bytes.
    let slow = tool_call(2, "slow", json!({"count": 3, "interval_ms": 5}), true);
    let d = read(rig.post_2026(&direct, None, &slow).send().await?).await?;
    let t = read(rig.post_2026(&through, Some(ALICE), &slow).send().await?).await?;
    assert!(d.1.starts_with("text/event-stream"), "{}", d.1);
    assert_eq!(d, t);
    assert_eq!(messages(&t.1, &t.2).len(), 4);

    // The 2025 initialize stream starts with a priming event: `id:` and `retry:` survive.
    let init = rig
        .post(&through, Some(ALICE), &initialize(1))
        .send()
        .await?;
    assert_eq!(
        init.headers()
            .get("x-accel-buffering")
            .map(|v| v.as_bytes()),
        Some(&b"no"[..])
    );
    let (_, ct, body) = read(init).await?;
    assert!(ct.starts_with("text/event-stream"));
    assert!(
        body.contains("\nid: 0\n") || body.contains("id: 0"),
        "{body}"
    );
    assert!(body.contains("retry: 3000"), "{body}");
    let direct_init = read(rig.post(&direct, None, &initialize(1)).send().await?).await?;
    assert_eq!(body, direct_init.2);
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp01_sse_events_reach_the_client_while_the_upstream_is_still_sending() -> anyhow::Result<()>
{
    let rig = Rig::start().await?;
    let slow = tool_call(1, "slow", json!({"count": 5, "interval_ms": 300}), true);
    let started = Instant::now();
    let response = rig
        .post_2026(&rig.through(), Some(ALICE), &slow)
        .send()
        .await?;
    let mut body = response.bytes_stream();
    let first = body
        .next()
        .await
        .ok_or_else(|| anyhow::anyhow!("empty stream"))??;
    let first_after = started.elapsed();
    let stats = rig.upstream.stats.json();
    assert!(
        String::from_utf8_lossy(&first).contains("notifications/progress"),
        "{first:?}"
    );
    // The upstream needs ~1.5 s for all five; the first event must not wait for the rest.
    assert_eq!(stats["completed"], 0, "upstream already finished: {stats}");
    assert!(
        first_after < Duration::from_millis(1_200),
        "{first_after:?}"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk?);
    }
    assert!(String::from_utf8_lossy(&rest).contains("\"done\""));
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp02_notifications_get_202_with_an_empty_body() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let through = rig.through();
    let init = rig
        .post(&through, Some(ALICE), &initialize(1))
        .send()
        .await?;
    let sid = init
        .headers()
        .get("mcp-session-id")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no session"))?;
    let response = rig
        .post(
            &through,
            Some(ALICE),
            &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        )
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(response.bytes().await?.is_empty());
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp03_session_ids_round_trip_and_unknown_sessions_get_404() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let (direct, through) = (rig.upstream.url.clone(), rig.through());
    let sid = rig.initialize(&through, Some(ALICE)).await?;
    // Opaque, visible ASCII, and not the upstream's own id (a UUID from rmcp).
    assert!(sid.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{sid}");
    assert!(sid.len() > 60, "{sid}");

    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let ok = rig
        .post(&through, Some(ALICE), &list)
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    let (status, ct, body) = read(ok).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        messages(&ct, &body)[0]["result"]["tools"][0]["name"],
        "echo"
    );

    // Without a session: what the upstream says directly (400), says through the gateway.
    let d = rig.post(&direct, None, &list).send().await?.status();
    let t = rig
        .post(&through, Some(ALICE), &list)
        .send()
        .await?
        .status();
    assert_eq!(d, StatusCode::BAD_REQUEST);
    assert_eq!(t, d);

    // Unknown and tampered ids: 404 (the client re-initializes).
    let mut tampered = sid.clone().into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    for bad in [String::from("not-a-session"), String::from_utf8(tampered)?] {
        let r = rig
            .post(&through, Some(ALICE), &list)
            .header("mcp-session-id", bad)
            .header("mcp-protocol-version", V2025)
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            r.json::<Value>().await?["error"]["message"],
            "session not found"
        );
    }
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp04_protocol_version_is_forwarded_and_unknown_versions_get_400() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let through = rig.through();
    let call = tool_call(1, "echo", json!({"text": "x"}), false);
    let bad = rig
        .post(&through, Some(ALICE), &call)
        .header("mcp-protocol-version", "1999-01-01")
        .send()
        .await?;
    // What the upstream says of a revision it does not know (only it knows its revisions).
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let headers = tool_call(2, "headers", json!({}), true);
    let (_, ct, body) = read(
        rig.post_2026(&through, Some(ALICE), &headers)
            .send()
            .await?,
    )
    .await?;
    let seen: Value = serde_json::from_str(&result_text(&ct, &body).unwrap_or_default())?;
    assert_eq!(seen["mcp-protocol-version"], V2026);
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp05_get_stream_is_forwarded_and_last_event_id_reaches_the_upstream() -> anyhow::Result<()>
{
    let rig = Rig::start().await?;
    let through = rig.through();
    let sid = rig.initialize(&through, Some(ALICE)).await?;
    // 2025: the server→client stream opens through the gateway.
    let get = rig
        .http
        .get(&through)
        .bearer_auth(ALICE)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    assert_eq!(get.status(), StatusCode::OK);
    assert!(
        get.headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    );
    drop(get);
    // 2026-07-28: the upstream's 405 (with Allow) passes through.
    let get = rig
        .http
        .get(&through)
        .bearer_auth(ALICE)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", V2026)
        .send()
        .await?;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        get.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"POST"[..])
    );
    // Last-Event-ID (resumption) is forwarded: the fixture's header echo shows it.
    let headers = tool_call(3, "headers", json!({}), true);
    let response = rig
        .post_2026(&through, Some(ALICE), &headers)
        .header("last-event-id", "7")
        .send()
        .await?;
    let (_, ct, body) = read(response).await?;
    let seen: Value = serde_json::from_str(&result_text(&ct, &body).unwrap_or_default())?;
    assert_eq!(seen["last-event-id"], "7");
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp06_delete_ends_the_session_upstream() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let through = rig.through();
    let sid = rig.initialize(&through, Some(ALICE)).await?;
    let delete = rig
        .http
        .delete(&through)
        .bearer_auth(ALICE)
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    assert!(delete.status().is_success(), "{}", delete.status());
    let after = rig
        .post(
            &through,
            Some(ALICE),
            &json!({"jsonrpc":"2.0","id":5,"method":"tools/list"}),
        )
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp07_concurrent_streams_in_one_session_are_not_mixed() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let through = rig.through();
    let sid = rig.initialize(&through, Some(ALICE)).await?;
    let call = |id: u64, token: &str| {
        let mut body = tool_call(id, "slow", json!({"count": 4, "interval_ms": 20}), false);
        body["params"]["_meta"] = json!({"progressToken": token});
        rig.post(&through, Some(ALICE), &body)
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", V2025)
            .send()
    };
    let (a, b) = tokio::join!(call(10, "tok-a"), call(11, "tok-b"));
    let (a, b) = tokio::join!(read(a?), read(b?));
    for ((_, ct, body), (id, token)) in [(a?, (10, "tok-a")), (b?, (11, "tok-b"))] {
        let msgs = messages(&ct, &body);
        let progress: Vec<&Value> = msgs
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 4, "{body}");
        assert!(
            progress
                .iter()
                .all(|m| m["params"]["progressToken"] == token)
        );
        assert_eq!(msgs.last().map(|m| m["id"].clone()), Some(json!(id)));
    }
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp08_2026_headers_arrive_unchanged_and_mismatches_get_400() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let (direct, through) = (rig.upstream.url.clone(), rig.through());
    let headers = tool_call(1, "headers", json!({}), true);
    let response = rig
        .post_2026(&through, Some(ALICE), &headers)
        .header("mcp-param-region", "eu-west-1")
        .send()
        .await?;
    assert!(response.headers().get("mcp-session-id").is_none());
    let (_, ct, body) = read(response).await?;
    let seen: Value = serde_json::from_str(&result_text(&ct, &body).unwrap_or_default())?;
    assert_eq!(seen["mcp-method"], "tools/call");
    assert_eq!(seen["mcp-name"], "headers");
    assert_eq!(seen["mcp-param-region"], "eu-west-1");
    assert_eq!(seen["mcp-protocol-version"], V2026);

    // A header that contradicts the body: 400 before anything reaches the upstream.
    let echo = tool_call(2, "echo", json!({"text": "x"}), true);
    for (method, name) in [("tools/call", "headers"), ("tools/list", "echo")] {
        let r = rig
            .post(&through, Some(ALICE), &echo)
            .header("mcp-protocol-version", V2026)
            .header("mcp-method", method)
            .header("mcp-name", name)
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{method} {name}");
        let body = r.json::<Value>().await?;
        assert_eq!(body["id"], 2);
        assert_eq!(body["error"]["code"], -32020, "HeaderMismatch");
    }

    // server/discover is forwarded: the same answer as direct.
    let discover =
        json!({"jsonrpc":"2.0","id":3,"method":"server/discover","params":{"_meta": meta_2026()}});
    let d = read(rig.post_2026(&direct, None, &discover).send().await?).await?;
    let t = read(
        rig.post_2026(&through, Some(ALICE), &discover)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(d.0, StatusCode::OK, "{}", d.2);
    assert_eq!(d, t);
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp09_2026_client_disconnect_cancels_the_upstream_call() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let slow = tool_call(1, "slow", json!({"count": 100, "interval_ms": 100}), true);
    let response = rig
        .post_2026(&rig.through(), Some(ALICE), &slow)
        .send()
        .await?;
    let mut body = response.bytes_stream();
    let _first = body.next().await;
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.upstream.stats.json()["cancelled"] != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = rig.upstream.stats.json();
    assert_eq!(stats["cancelled"], 1, "{stats}");
    assert_eq!(stats["completed"], 0, "{stats}");

    // Before the response head: the JSON path (the client gives up while the tool runs).
    let wait = tool_call(2, "slow", json!({"count": 1, "interval_ms": 3_000}), true);
    let pending = rig.post_2026(&rig.through(), Some(ALICE), &wait).send();
    let _ = tokio::time::timeout(Duration::from_millis(500), pending).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.upstream.stats.json()["cancelled"] != 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rig.upstream.stats.json()["cancelled"], 2);
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tp09_2025_client_disconnect_is_not_a_cancellation() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let through = rig.through();
    let sid = rig.initialize(&through, Some(ALICE)).await?;
    let slow = tool_call(2, "slow", json!({"count": 5, "interval_ms": 100}), false);
    let response = rig
        .post(&through, Some(ALICE), &slow)
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    let mut body = response.bytes_stream();
    let _first = body.next().await;
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.upstream.stats.json()["completed"] != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = rig.upstream.stats.json();
    assert_eq!(stats["completed"], 1, "{stats}");
    assert_eq!(stats["cancelled"], 0, "{stats}");
    rig.gateway.stop().await
}

// ---------------------------------------------------------------------------------------------
// RS: the resource-server rows the proxy can show before OAuth lands

#[tokio::test(flavor = "multi_thread")]
async fn rs07_a_session_id_without_a_token_gets_401() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let through = rig.through();
    let sid = rig.initialize(&through, Some(ALICE)).await?;
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let post = rig
        .post(&through, None, &list)
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    let get = rig
        .http
        .get(&through)
        .header("mcp-session-id", &sid)
        .send()
        .await?;
    let delete = rig
        .http
        .delete(&through)
        .header("mcp-session-id", &sid)
        .send()
        .await?;
    let expected = format!(
        "Bearer scope=\"mcp\", resource_metadata=\"{}\"",
        rig.gateway
            .url("/.well-known/oauth-protected-resource/mcp/fx")
    );
    for r in [post, get, delete] {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(expected.as_str())
        );
    }
    // A wrong token: error="invalid_token".
    let r = rig.post(&through, Some("nope"), &list).send().await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn rs06_a_token_in_the_query_string_gets_401() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let url = format!("{}?access_token={ALICE}", rig.through());
    let r = rig
        .post(
            &url,
            None,
            &json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn rs08_another_users_session_gets_404_not_their_data() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let through = rig.through();
    let alices = rig.initialize(&through, Some(ALICE)).await?;
    let call = tool_call(2, "echo", json!({"text": "alice's"}), false);
    let as_bob = rig
        .post(&through, Some(BOB), &call)
        .header("mcp-session-id", &alices)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    assert_eq!(as_bob.status(), StatusCode::NOT_FOUND);
    let as_alice = rig
        .post(&through, Some(ALICE), &call)
        .header("mcp-session-id", &alices)
        .header("mcp-protocol-version", V2025)
        .send()
        .await?;
    let (status, ct, body) = read(as_alice).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result_text(&ct, &body).as_deref(), Some("alice's"));
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn rs09_the_upstream_never_sees_the_clients_authorization() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let headers = tool_call(1, "headers", json!({}), true);
    let response = rig
        .post_2026(&rig.through(), Some(ALICE), &headers)
        .header("cookie", "sid=secret")
        .header("user-agent", "curious-client/1.0")
        .send()
        .await?;
    let (status, ct, body) = read(response).await?;
    assert_eq!(status, StatusCode::OK);
    let seen: Value = serde_json::from_str(&result_text(&ct, &body).unwrap_or_default())?;
    let names: Vec<&String> = seen
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert!(!names.is_empty());
    assert!(!body.contains(ALICE), "the token leaked: {body}");
    for forbidden in ["authorization", "cookie", "user-agent", "x-forwarded-for"] {
        assert!(
            seen.get(forbidden).is_none(),
            "{forbidden} reached the upstream: {seen}"
        );
    }
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn rs10_a_foreign_origin_gets_403_and_the_gateways_own_passes() -> anyhow::Result<()> {
    let rig = Rig::start_with(|c| c.proxy.allowed_origins = vec!["https://app.example.com".into()])
        .await?;
    let call = tool_call(1, "echo", json!({"text": "x"}), true);
    let evil = rig
        .post_2026(&rig.through(), Some(ALICE), &call)
        .header("origin", "http://evil.example")
        .send()
        .await?;
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    for ok in [rig.gateway.base.clone(), "https://app.example.com".into()] {
        let r = rig
            .post_2026(&rig.through(), Some(ALICE), &call)
            .header("origin", ok.as_str())
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::OK, "{ok}");
    }
    rig.gateway.stop().await
}

// ---------------------------------------------------------------------------------------------
// Routing, the real-run seam, upstream failures

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_upstream_is_404_json() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let r = rig
        .post(&rig.gateway.url("/mcp/nope"), Some(ALICE), &json!({}))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await?;
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("nope")
    );
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_run_accepts_only_tokens_mcpgate_issued() -> anyhow::Result<()> {
    let upstream = FixtureUpstream::start().await?;
    let db = TestDb::sqlite()?;
    let mut config = test_config(db.url());
    config.upstreams.push(upstream_config("fx", &upstream.url));
    let gateway = TestServer::start(config).await?;
    let r = reqwest::Client::new()
        .post(gateway.url("/mcp/fx"))
        .bearer_auth(ALICE)
        .header("content-type", "application/json")
        .body(initialize(1).to_string())
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_upstream_is_a_quick_502_json_rpc_error() -> anyhow::Result<()> {
    let rig = Rig::start_with(|c| {
        // Nothing listens on port 1.
        c.upstreams
            .push(upstream_config("down", "http://127.0.0.1:1/mcp"));
    })
    .await?;
    let started = Instant::now();
    let r = rig
        .post_2026(
            &rig.gateway.url("/mcp/down"),
            Some(ALICE),
            &tool_call(9, "echo", json!({"text": "x"}), true),
        )
        .send()
        .await?;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body: Value = r.json().await?;
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["code"], -32001);
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_upstream_is_a_504_not_a_hang() -> anyhow::Result<()> {
    let rig = Rig::start_with(|c| c.upstreams[0].response_timeout_ms = 300).await?;
    let started = Instant::now();
    // No response head until the first progress event, two seconds away.
    let slow = tool_call(4, "slow", json!({"count": 1, "interval_ms": 2_000}), true);
    let r = rig
        .post_2026(&rig.through(), Some(ALICE), &slow)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!(r.json::<Value>().await?["error"]["code"], -32002);
    rig.gateway.stop().await
}
