//! RBAC on every MCP call, through the proxy: decision tables (allow, deny over allow,
//! patterns, team roles, the default role, an admin), changes through the admin API taking
//! effect on the next request, filtered lists (JSON and SSE), denials that look like unknown
//! tools, no connection held across a slow upstream call, two replicas on one PostgreSQL,
//! and the audit log.

use std::time::{Duration, Instant};

use mcpgate_core::SecretString;
use mcpgate_server::Config;
use mcpgate_storage::{NewUser, Store};
use mcpgate_tests::fixtures::FixtureUpstream;
use mcpgate_tests::{TestDb, TestServer, TestTokens, test_config};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::proxy::{messages, read, tool_call, upstream_config};

const ADMIN_EMAIL: &str = "root@example.com";
const ADMIN_PW: &str = "correct horse battery staple";

const POLICY: &str = r#"
default_role = "member"

[[roles]]
name = "member"
description = "echo on every fixture, and its list"
grants = [
  { effect = "allow", action = "tools/list", upstream = "*" },
  { effect = "allow", action = "tools/call", upstream = "*", target = "echo" },
]

[[roles]]
name = "dev"
grants = [
  { effect = "allow", action = "tools/*", upstream = "fx" },
  { effect = "deny", action = "tools/call", upstream = "fx", target = "head*" },
]

[[roles]]
name = "slowpoke"
grants = [{ effect = "allow", action = "tools/call", upstream = "f?", target = "sl*" }]
"#;

fn policy() -> mcpgate_server::config::PolicyConfig {
    toml::from_str(POLICY).unwrap()
}

/// Users in the database, by token: `(token, email, is_admin)`.
const USERS: &[(&str, &str, bool)] = &[
    ("alice", "alice@example.com", false),
    ("bob", "bob@example.com", false),
    ("carol", "carol@example.com", false),
    ("root", "root-mcp@example.com", true),
];

struct Gate {
    upstream: FixtureUpstream,
    gateway: TestServer,
    http: reqwest::Client,
    admin: String,
    /// token → user id
    ids: std::collections::HashMap<String, String>,
    store: Store,
    /// None for a second replica on another gate's database.
    db: Option<TestDb>,
}

/// Creates the users (once per database) and returns token → id.
async fn users(store: &Store) -> std::collections::HashMap<String, String> {
    let mut ids = std::collections::HashMap::new();
    for (token, email, is_admin) in USERS {
        let user = match store.find_user_by_email(email).await.unwrap() {
            Some(u) => u,
            None => store
                .create_user(&NewUser {
                    email: (*email).into(),
                    is_admin: *is_admin,
                    ..Default::default()
                })
                .await
                .unwrap(),
        };
        ids.insert((*token).to_owned(), user.id);
    }
    ids
}

fn tokens(ids: &std::collections::HashMap<String, String>, extra: usize) -> TestTokens {
    let mut pairs: Vec<(String, String)> =
        ids.iter().map(|(t, id)| (t.clone(), id.clone())).collect();
    // Principals no stored user stands behind: the default role only.
    pairs.push(("stranger".into(), "no-such-user".into()));
    for i in 0..extra {
        pairs.push((format!("guest{i}"), format!("guest-{i}")));
    }
    TestTokens::new(pairs.iter().map(|(t, u)| (t.as_str(), u.as_str())))
}

impl Gate {
    async fn start(db: TestDb, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let url = db.url().to_owned();
        Self::start_with_upstream(&url, Some(db), FixtureUpstream::start().await?, 0, adjust).await
    }

    async fn start_with_upstream(
        url: &str,
        db: Option<TestDb>,
        upstream: FixtureUpstream,
        guests: usize,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let store =
            mcpgate_storage::Store::connect(&mcpgate_storage::StoreOptions::new(url)).await?;
        store.migrate().await?;
        let ids = users(&store).await;
        let mut config = test_config(url);
        config.policy = policy();
        config.upstreams.push(upstream_config("fx", &upstream.url));
        config.bootstrap.admin_email = Some(ADMIN_EMAIL.into());
        config.bootstrap.admin_password = Some(SecretString::new(ADMIN_PW));
        adjust(&mut config);
        let gateway = TestServer::start_with_tokens(config, tokens(&ids, guests)).await?;
        let http = reqwest::Client::new();
        let login: Value = http
            .post(gateway.url("/api/v1/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PW}))
            .send()
            .await?
            .json()
            .await?;
        let admin = login["access_token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no admin token: {login}"))?
            .to_owned();
        Ok(Self {
            upstream,
            gateway,
            http,
            admin,
            ids,
            store,
            db,
        })
    }

    fn id(&self, token: &str) -> &str {
        &self.ids[token]
    }

    async fn mcp(
        &self,
        upstream: &str,
        token: &str,
        body: &Value,
    ) -> (StatusCode, String, Vec<Value>) {
        let mut r = self
            .http
            .post(self.gateway.url(&format!("/mcp/{upstream}")))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .body(body.to_string());
        if let Some(m) = body["method"].as_str() {
            r = r.header("mcp-method", m);
        }
        if let Some(n) = body["params"]["name"].as_str() {
            r = r.header("mcp-name", n);
        }
        let (status, ct, text) = read(r.send().await.unwrap()).await.unwrap();
        let msgs = messages(&ct, &text);
        (status, ct, msgs)
    }

    /// `tools/call name` as `token`: Ok(text) when the tool ran, Err(error object) otherwise.
    async fn call(&self, token: &str, name: &str) -> Result<String, Value> {
        let args = if name == "slow" {
            json!({"count": 0})
        } else {
            json!({"text": "hi"})
        };
        let (status, _, msgs) = self.mcp("fx", token, &tool_call(1, name, args, true)).await;
        assert_eq!(status, StatusCode::OK, "{token} {name}: {msgs:?}");
        let last = msgs.last().cloned().unwrap_or(Value::Null);
        match last["result"]["content"][0]["text"].as_str() {
            Some(t) => Ok(t.to_owned()),
            None => Err(last["error"].clone()),
        }
    }

    async fn tools(&self, upstream: &str, token: &str) -> Vec<String> {
        let list = json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{
            "io.modelcontextprotocol/protocolVersion":"2026-07-28",
            "io.modelcontextprotocol/clientCapabilities":{}}}});
        let (status, _, msgs) = self.mcp(upstream, token, &list).await;
        assert_eq!(status, StatusCode::OK);
        let last = msgs.last().cloned().unwrap_or(Value::Null);
        last["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {last}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method, self.gateway.url(path))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn allowed(r: &Result<String, Value>) -> bool {
    r.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn decision_table_through_the_proxy() -> anyhow::Result<()> {
    let gate = Gate::start(TestDb::sqlite()?, |_| {}).await?;
    use reqwest::Method;
    let (s, _) = gate
        .admin(
            Method::PUT,
            &format!("/api/v1/admin/users/{}/roles/dev", gate.id("alice")),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        gate.admin(Method::PUT, "/api/v1/admin/teams/ops", None)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        gate.admin(Method::PUT, "/api/v1/admin/teams/ops/roles/slowpoke", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        gate.admin(
            Method::PUT,
            &format!("/api/v1/admin/teams/ops/members/{}", gate.id("bob")),
            None
        )
        .await
        .0,
        StatusCode::OK
    );

    // (who, tool, allowed, why)
    let table = [
        ("carol", "echo", true, "default role"),
        ("carol", "slow", false, "default role does not name it"),
        ("carol", "headers", false, "default deny"),
        (
            "stranger",
            "echo",
            true,
            "a principal without a stored user holds the default role",
        ),
        ("stranger", "slow", false, "default role only"),
        ("alice", "slow", true, "direct role dev: tools/* on fx"),
        (
            "alice",
            "headers",
            false,
            "deny head* overrides dev's allow",
        ),
        (
            "bob",
            "slow",
            true,
            "team role slowpoke, patterns f? and sl*",
        ),
        ("bob", "headers", false, "no grant"),
        (
            "root",
            "headers",
            true,
            "is_admin holds the built-in admin role",
        ),
    ];
    for (who, tool, expect, why) in table {
        let r = gate.call(who, tool).await;
        assert_eq!(allowed(&r), expect, "{who} {tool} ({why}): {r:?}");
    }

    // Lists show exactly what each caller may call.
    assert_eq!(gate.tools("fx", "carol").await, ["echo"]);
    assert_eq!(gate.tools("fx", "alice").await, ["echo", "slow"]);
    assert_eq!(gate.tools("fx", "bob").await, ["echo", "slow"]);
    assert_eq!(gate.tools("fx", "root").await, ["echo", "slow", "headers"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_change_takes_effect_on_the_next_request() -> anyhow::Result<()> {
    let gate = Gate::start(TestDb::sqlite()?, |_| {}).await?;
    use reqwest::Method;
    assert!(gate.call("carol", "slow").await.is_err());
    let path = format!("/api/v1/admin/users/{}/roles/dev", gate.id("carol"));
    assert_eq!(gate.admin(Method::PUT, &path, None).await.0, StatusCode::OK);
    assert!(gate.call("carol", "slow").await.is_ok());
    assert_eq!(
        gate.admin(Method::DELETE, &path, None).await.0,
        StatusCode::OK
    );
    assert!(gate.call("carol", "slow").await.is_err());

    // A database role's grants change: the next request sees the new grants.
    let role = json!({"grants": [{"effect": "allow", "action": "tools/call", "upstream": "fx", "target": "headers"}]});
    let (s, _) = gate
        .admin(Method::PUT, "/api/v1/admin/roles/ops", Some(role))
        .await;
    assert_eq!(s, StatusCode::OK);
    let path = format!("/api/v1/admin/users/{}/roles/ops", gate.id("carol"));
    assert_eq!(gate.admin(Method::PUT, &path, None).await.0, StatusCode::OK);
    assert!(gate.call("carol", "headers").await.is_ok());
    let role = json!({"grants": [{"effect": "allow", "action": "tools/call", "upstream": "fx", "target": "nothing"}]});
    assert_eq!(
        gate.admin(Method::PUT, "/api/v1/admin/roles/ops", Some(role))
            .await
            .0,
        StatusCode::OK
    );
    assert!(gate.call("carol", "headers").await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_validates_and_keeps_config_roles_read_only() -> anyhow::Result<()> {
    let gate = Gate::start(TestDb::sqlite()?, |_| {}).await?;
    use reqwest::Method;
    let bad = json!({"grants": [{"effect": "allow", "action": "tools/explode"}]});
    let (s, body) = gate
        .admin(Method::PUT, "/api/v1/admin/roles/x", Some(bad))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let text = body["error_description"].as_str().unwrap_or_default();
    assert!(
        text.contains("grants[0].action") && text.contains("tools/explode"),
        "{body}"
    );
    for name in ["member", "admin"] {
        let (s, _) = gate
            .admin(
                Method::PUT,
                &format!("/api/v1/admin/roles/{name}"),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}");
        let (s, _) = gate
            .admin(Method::DELETE, &format!("/api/v1/admin/roles/{name}"), None)
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{name}");
    }
    // A mapping to a role nobody defined does not compile.
    let (s, _) = gate
        .admin(
            Method::POST,
            "/api/v1/admin/mappings",
            Some(json!({"claim": "groups", "value": "x", "role": "ghost"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, m) = gate
        .admin(
            Method::POST,
            "/api/v1/admin/mappings",
            Some(json!({"claim": "groups", "value": "acme:*", "role": "dev"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    // Paging: roles by name, two at a time.
    let (_, page) = gate
        .admin(Method::GET, "/api/v1/admin/roles?limit=2", None)
        .await;
    let names: Vec<&str> = page["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "dev"]);
    let (_, page) = gate
        .admin(
            Method::GET,
            &format!(
                "/api/v1/admin/roles?limit=2&after={}",
                page["next_after"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let names: Vec<&str> = page["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["member", "slowpoke"]);
    assert_eq!(page["roles"][0]["source"], "config");
    let (_, policy) = gate.admin(Method::GET, "/api/v1/admin/policy", None).await;
    assert_eq!(policy["mappings"][0]["role"], "dev");
    // Not an admin: no access.
    let r = gate
        .http
        .get(gate.gateway.url("/api/v1/admin/roles"))
        .bearer_auth("alice")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_tool_is_indistinguishable_from_an_unknown_one() -> anyhow::Result<()> {
    let gate = Gate::start(TestDb::sqlite()?, |_| {}).await?;
    // root may call anything, so "nope" reaches the upstream, which does not have it.
    let unknown = gate
        .mcp("fx", "root", &tool_call(9, "nope", json!({}), true))
        .await;
    let denied = gate
        .mcp("fx", "carol", &tool_call(9, "headers", json!({}), true))
        .await;
    assert_eq!(unknown.0, denied.0, "status");
    assert_eq!(unknown.1, denied.1, "content type");
    let (u, d) = (&unknown.2[0], &denied.2[0]);
    assert_eq!(u["id"], d["id"]);
    assert_eq!(u["error"]["code"], d["error"]["code"]);
    assert_eq!(
        u["error"]["message"]
            .as_str()
            .map(|m| m.replace("nope", "X")),
        d["error"]["message"]
            .as_str()
            .map(|m| m.replace("headers", "X")),
    );
    assert_eq!(
        u["error"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        d["error"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
    );
    assert_eq!(
        u.as_object().map(|o| o.len()),
        d.as_object().map(|o| o.len())
    );
    Ok(())
}

/// An upstream that answers everything with an SSE stream: a progress notification, then a
/// `tools/list` result.
async fn sse_upstream() -> anyhow::Result<String> {
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(|| async {
            let list = json!({"jsonrpc":"2.0","id":3,"result":{"tools":[
                {"name":"echo","inputSchema":{"type":"object"}},
                {"name":"slow","inputSchema":{"type":"object"}},
                {"name":"headers","inputSchema":{"type":"object"}}]}});
            let body = format!(
                "event: message\nid: 1\ndata: {}\n\nevent: message\nid: 2\ndata: {list}\n\n",
                json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}})
            );
            ([("content-type", "text/event-stream")], body).into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_list_results_are_filtered_too() -> anyhow::Result<()> {
    let sse = sse_upstream().await?;
    let gate = Gate::start(TestDb::sqlite()?, |c| {
        c.upstreams.push(upstream_config("sse", &sse));
    })
    .await?;
    let (status, ct, msgs) = gate
        .mcp(
            "sse",
            "carol",
            &json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    assert_eq!(msgs.len(), 2, "the notification passes too: {msgs:?}");
    assert_eq!(msgs[0]["method"], "notifications/progress");
    assert_eq!(gate.tools("sse", "carol").await, ["echo"]);
    assert_eq!(gate.tools("sse", "root").await, ["echo", "slow", "headers"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_slow_calls_share_one_sqlite_connection() -> anyhow::Result<()> {
    fifty_slow_calls_share_one_connection(TestDb::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_slow_calls_share_one_postgres_connection() -> anyhow::Result<()> {
    match TestDb::postgres("rbac_pool_of_one").await? {
        Some(db) => fifty_slow_calls_share_one_connection(db).await,
        None => Ok(()),
    }
}

async fn fifty_slow_calls_share_one_connection(db: TestDb) -> anyhow::Result<()> {
    const N: usize = 50;
    let upstream = FixtureUpstream::start().await?;
    let url = db.url().to_owned();
    let gate = Gate::start_with_upstream(&url, Some(db), upstream, N, |c| {
        c.database.max_connections = 1;
        c.policy.roles[0].grants.push(
            toml::from_str(
                r#"effect = "allow"
action = "tools/call"
target = "slow""#,
            )
            .unwrap(),
        );
    })
    .await?;
    let started = Instant::now();
    // Every caller is a different principal: 50 cache misses, each one short read.
    let calls = (0..N).map(|i| {
        let gate = &gate;
        async move {
            let body = tool_call(1, "slow", json!({"count": 1, "interval_ms": 2000}), true);
            gate.mcp("fx", &format!("guest{i}"), &body).await
        }
    });
    let results = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    for (status, _, msgs) in &results {
        assert_eq!(*status, StatusCode::OK, "{msgs:?}");
        assert_eq!(
            msgs.last().unwrap()["result"]["content"][0]["text"],
            "done",
            "{msgs:?}"
        );
    }
    // Concurrent, not one after another through the single connection.
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    assert_eq!(gate.upstream.stats.json()["completed"], N);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_decision_is_audited_and_flushed_on_shutdown() -> anyhow::Result<()> {
    let gate = Gate::start(TestDb::sqlite()?, |_| {}).await?;
    for _ in 0..20 {
        let _ = gate.call("carol", "echo").await;
        let _ = gate.call("carol", "headers").await;
    }
    let Gate {
        gateway, store, db, ..
    } = gate;
    gateway.stop().await?;
    let events = store.recent_audit_events(1000).await?;
    let carol: Vec<_> = events
        .iter()
        .filter(|e| e.action == "tools/call" && e.target.is_some())
        .collect();
    assert_eq!(carol.iter().filter(|e| e.decision == "allow").count(), 20);
    let denied: Vec<_> = carol.iter().filter(|e| e.decision == "deny").collect();
    assert_eq!(denied.len(), 20);
    assert_eq!(denied[0].target.as_deref(), Some("headers"));
    assert_eq!(denied[0].upstream.as_deref(), Some("fx"));
    drop(db);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoke_on_one_replica_is_enforced_on_another_within_a_second() -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres("rbac_two_replicas").await? else {
        return Ok(());
    };
    let url = db.url().to_owned();
    // A long TTL: only the notification can make replica B notice in time.
    let a = Gate::start(db, |c| c.policy.cache_ttl_secs = 600).await?;
    let b = Gate::start_with_upstream(&url, None, FixtureUpstream::start().await?, 0, |c| {
        c.policy.cache_ttl_secs = 600
    })
    .await?;
    use reqwest::Method;
    let path = format!("/api/v1/admin/users/{}/roles/dev", a.id("carol"));
    assert_eq!(a.admin(Method::PUT, &path, None).await.0, StatusCode::OK);
    wait_until(&b, true).await?;
    assert_eq!(a.admin(Method::DELETE, &path, None).await.0, StatusCode::OK);
    let revoked = Instant::now();
    wait_until(&b, false).await?;
    let took = revoked.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "replica B saw the revoke after {took:?}"
    );
    Ok(())
}

async fn wait_until(gate: &Gate, allowed: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while gate.call("carol", "slow").await.is_ok() != allowed {
        anyhow::ensure!(Instant::now() < deadline, "replica never saw the change");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
