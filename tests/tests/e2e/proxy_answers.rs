//! What mcpgate itself answers on `/mcp/*`, as the MCP specification says for each revision
//! (issue: the /mcp pipeline, conformant in both eras): header mismatches, unsupported
//! versions, requests access control cannot classify, `Host` checks, batches, bodies over the
//! limit, and a user with no grant at all on an upstream.

use mcpgate_rbac::{Effect, GrantSpec, RoleSpec};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::proxy::{ALICE, Rig, meta_2026, tool_call, upstream_config};

const V2026: &str = "2026-07-28";

#[tokio::test(flavor = "multi_thread")]
async fn header_mismatches_get_400_and_the_header_mismatch_code() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let through = rig.through();
    let echo = tool_call(2, "echo", json!({"text": "x"}), true);
    let mut cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "name",
            vec![("mcp-method", "tools/call"), ("mcp-name", "other")],
        ),
        (
            "method",
            vec![("mcp-method", "tools/list"), ("mcp-name", "echo")],
        ),
        ("no method", vec![("mcp-name", "echo")]),
        (
            "twice",
            vec![
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
                ("mcp-name", "echo"),
            ],
        ),
    ];
    // The body's _meta says one version, the header another.
    let mut other_meta = echo.clone();
    other_meta["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    cases.push((
        "meta",
        vec![("mcp-method", "tools/call"), ("mcp-name", "echo")],
    ));
    for (what, headers) in cases {
        let body = if what == "meta" { &other_meta } else { &echo };
        let mut r = rig
            .post(&through, Some(ALICE), body)
            .header("mcp-protocol-version", V2026);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        let r = r.send().await?;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
        let body: Value = r.json().await?;
        assert_eq!(body["error"]["code"], -32020, "{what}: {body}");
        assert_eq!(body["id"], 2, "{what}");
    }
    // A name in the header's base64 form matches the body.
    let encoded = rig
        .post(&through, Some(ALICE), &echo)
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "=?base64?ZWNobw==?=")
        .send()
        .await?;
    assert_eq!(encoded.status(), StatusCode::OK);
    rig.gateway.stop().await
}

/// Only the upstream knows which revisions it supports (the spec's `-32022` names them in
/// `data.supported`): a revision mcpgate does not know is decided on its method and item and
/// answered by the upstream, exactly as directly.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_version_is_answered_by_the_upstream() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let (direct, through) = (rig.upstream.url.clone(), rig.through());
    for version in ["1999-01-01", "v999.0.0"] {
        let call = tool_call(1, "echo", json!({}), true);
        let d = rig
            .post(&direct, None, &call)
            .header("mcp-protocol-version", version)
            .send()
            .await?;
        let (ds, db) = (d.status(), d.text().await?);
        let t = rig
            .post(&through, Some(ALICE), &call)
            .header("mcp-protocol-version", version)
            .send()
            .await?;
        assert_eq!((t.status(), t.text().await?), (ds, db), "{version}");
        assert!(ds.is_client_error(), "{version}: {ds}");
    }
    // Sent twice, the header contradicts itself: mcpgate answers.
    let r = rig
        .post(
            &through,
            Some(ALICE),
            &tool_call(2, "echo", json!({}), true),
        )
        .header("mcp-protocol-version", V2026)
        .header("mcp-protocol-version", V2026)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await?["error"]["code"], -32020);
    rig.gateway.stop().await
}

/// Requests access control cannot decide on an item go to the upstream, which answers them
/// exactly as it would directly.
#[tokio::test(flavor = "multi_thread")]
async fn requests_without_their_item_and_removed_methods_get_the_upstreams_answer()
-> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let (direct, through) = (rig.upstream.url.clone(), rig.through());
    let nameless = json!({"jsonrpc":"2.0","id":5,"method":"tools/call",
        "params":{"arguments":{}, "_meta": meta_2026()}});
    let subscribe = json!({"jsonrpc":"2.0","id":6,"method":"resources/subscribe",
        "params":{"uri":"test://x", "_meta": meta_2026()}});
    for body in [&nameless, &subscribe] {
        let d = rig.post_2026(&direct, None, body).send().await?;
        let (ds, db) = (d.status(), d.text().await?);
        let t = rig.post_2026(&through, Some(ALICE), body).send().await?;
        let (ts, tb) = (t.status(), t.text().await?);
        assert_eq!((ts, &tb), (ds, &db), "{body}");
    }
    rig.gateway.stop().await
}

fn role(name: &str, grants: &[(&str, &str, &str)]) -> RoleSpec {
    RoleSpec {
        name: name.into(),
        description: String::new(),
        grants: grants
            .iter()
            .map(|(action, upstream, target)| GrantSpec {
                effect: Effect::Allow,
                action: (*action).into(),
                upstream: (*upstream).into(),
                target: (*target).into(),
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_without_any_grant_on_an_upstream_is_told_so() -> anyhow::Result<()> {
    let rig = Rig::start_with(|c| {
        let fx = c.upstreams[0].url.clone();
        c.upstreams.push(upstream_config("fx2", &fx));
        c.policy.roles = vec![role("reader", &[("tools/list", "fx", "*")])];
        c.policy.default_role = Some("reader".into());
    })
    .await?;
    // On fx2 nothing at all: initialize, a call, the GET stream.
    let fx2 = rig.gateway.url("/mcp/fx2");
    for body in [
        crate::proxy::initialize(1),
        tool_call(1, "echo", json!({}), false),
    ] {
        let r = rig.post(&fx2, Some(ALICE), &body).send().await?;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body: Value = r.json().await?;
        assert_eq!(body["error"]["code"], -32003);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("no access") && message.contains("fx2"),
            "{message}"
        );
    }
    let stream = rig
        .http
        .get(&fx2)
        .bearer_auth(ALICE)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    assert_eq!(stream.status(), StatusCode::FORBIDDEN);

    // On fx the list is allowed, a call is not: an unknown tool as the spec says, and a call
    // without a name is invalid params (the caller holds no tools/call to reach the upstream).
    let call = rig
        .post(
            &rig.through(),
            Some(ALICE),
            &tool_call(2, "echo", json!({}), false),
        )
        .send()
        .await?;
    assert_eq!(call.status(), StatusCode::OK);
    let body: Value = call.json().await?;
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!(body["error"]["message"], "Unknown tool: echo");
    let nameless =
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"_meta": meta_2026()}});
    let r = rig
        .post_2026(&rig.through(), Some(ALICE), &nameless)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await?["error"]["code"], -32602);
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_host_gets_421_and_the_gateways_own_names_pass() -> anyhow::Result<()> {
    let rig = Rig::start_with(|c| c.proxy.allowed_hosts = vec!["mcp.internal:9000".into()]).await?;
    let port = rig
        .through()
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let list =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta": meta_2026()}});
    for (host, expected) in [
        (
            "evil.example.com".to_owned(),
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (
            format!("evil.example.com:{port}"),
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (format!("localhost:{port}"), StatusCode::OK),
        (format!("127.0.0.1:{port}"), StatusCode::OK),
        ("mcp.internal:9000".to_owned(), StatusCode::OK),
    ] {
        let r = rig
            .post_2026(&rig.through(), Some(ALICE), &list)
            .header("host", &host)
            .send()
            .await?;
        assert_eq!(r.status(), expected, "{host}");
        if expected != StatusCode::OK {
            assert_eq!(r.json::<Value>().await?["jsonrpc"], "2.0");
        }
    }
    rig.gateway.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_are_refused_clearly_and_large_bodies_answer_in_json_rpc() -> anyhow::Result<()> {
    let rig = Rig::start_with(|c| c.http.body_limit_bytes = 2048).await?;
    let batch = json!([
        tool_call(1, "echo", json!({}), false),
        tool_call(2, "echo", json!({}), false)
    ]);
    let r = rig
        .post(&rig.through(), Some(ALICE), &batch)
        .header("mcp-protocol-version", "2025-03-26")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("batches are not supported"),
        "{body}"
    );
    let big = tool_call(3, "echo", json!({"text": "x".repeat(4096)}), false);
    let r = rig.post(&rig.through(), Some(ALICE), &big).send().await?;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.headers()["content-type"]
            .to_str()?
            .starts_with("application/json")
    );
    let body: Value = r.json().await?;
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32600);
    rig.gateway.stop().await
}

/// RFC 8252 §7.1: desktop clients register their own URI scheme (`cursor://…`); one such
/// URI must not sink a public client's whole registration. A confidential client may not.
#[tokio::test(flavor = "multi_thread")]
async fn desktop_clients_register_private_use_redirect_schemes() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let register = |body: Value| {
        rig.http
            .post(rig.gateway.url("/oauth/register"))
            .json(&body)
            .send()
    };
    let r = register(json!({
        "client_name": "Cursor",
        "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback", "http://127.0.0.1/cb"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    }))
    .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    let client: Value = r.json().await?;
    assert_eq!(
        client["redirect_uris"][0],
        "cursor://anysphere.cursor-mcp/oauth/callback"
    );
    for (redirect, method) in [
        (
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "client_secret_basic",
        ),
        ("javascript://x/%0aalert(1)", "none"),
        ("file:///tmp/cb", "none"),
    ] {
        let r = register(json!({
            "client_name": "x",
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": method,
        }))
        .await?;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{redirect} {method}");
        assert_eq!(r.json::<Value>().await?["error"], "invalid_redirect_uri");
    }
    rig.gateway.stop().await
}
