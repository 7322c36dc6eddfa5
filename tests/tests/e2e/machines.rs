//! Agents and scripts: service clients (`grant_type=client_credentials`, the Python SDK's
//! client-credentials provider), personal access tokens, revocation and introspection of both,
//! the 401s a caller sees when something is wrong, RBAC re-evaluated on every call, and
//! last-used times written without any request waiting for them.

use std::time::{Duration, Instant};

use mcpgate_storage::{PersonalToken, now_ms};
use mcpgate_tests::fixtures;
use mcpgate_tests::{TestDb, TestServer};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::oauth::{AuthRig, PASSWORD, USER};
use crate::proxy::{messages, read, tool_call};

const POLICY: &str = r#"
[[roles]]
name = "agent"
description = "echo on demo only"
grants = [
  { effect = "allow", action = "tools/list", upstream = "demo" },
  { effect = "allow", action = "tools/call", upstream = "demo", target = "echo" },
]

[[roles]]
name = "person"
grants = [{ effect = "allow", action = "tools/*", upstream = "*" }]
"#;

const BOB: &str = "bob@example.com";
const BOB_PW: &str = "bob's long password";

async fn start_on(db: TestDb, adjust: impl FnOnce(&mut mcpgate_server::Config)) -> AuthRig {
    AuthRig::start_on(db, |config| {
        config.policy = toml::from_str(POLICY).unwrap();
        adjust(config);
    })
    .await
}

async fn login(rig: &AuthRig, email: &str, password: &str) -> String {
    let r: Value = Client::new()
        .post(rig.url("/api/v1/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

/// An admin API token, and bob (a plain user with the `person` role) with his API token.
async fn people(rig: &AuthRig) -> (String, String, String) {
    let admin = login(rig, USER, PASSWORD).await;
    let bob: Value = Client::new()
        .post(rig.url("/api/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&json!({ "email": BOB, "password": BOB_PW }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob_id = bob["id"].as_str().unwrap().to_owned();
    let r = Client::new()
        .put(rig.url(&format!("/api/v1/admin/users/{bob_id}/roles/person")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let bob_api = login(rig, BOB, BOB_PW).await;
    (admin, bob_id, bob_api)
}

async fn create_service_client(rig: &AuthRig, admin: &str, body: Value) -> Value {
    let r = Client::new()
        .post(rig.url("/api/v1/admin/service-clients"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// `grant_type=client_credentials` with HTTP Basic: status, body, `WWW-Authenticate`.
async fn client_credentials(
    rig: &AuthRig,
    id: &str,
    secret: &str,
    resource: &str,
) -> (StatusCode, Value, String) {
    let r = Client::new()
        .post(rig.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("resource", resource)])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, r.json().await.unwrap(), challenge)
}

/// `tools/call name {"text": "hi"}` on `upstream` (2026-07-28): status, challenge, and the
/// tool's text or the JSON-RPC error.
async fn call(
    rig: &AuthRig,
    upstream: &str,
    token: &str,
    name: &str,
) -> (StatusCode, String, Result<String, Value>) {
    let body = tool_call(1, name, json!({ "text": "hi" }), true);
    let r = Client::new()
        .post(rig.url(&format!("/mcp/{upstream}")))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .json(&body)
        .send()
        .await
        .unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, ct, text) = read(r).await.unwrap();
    let last = messages(&ct, &text).last().cloned().unwrap_or(Value::Null);
    let outcome = match last["result"]["content"][0]["text"].as_str() {
        Some(t) => Ok(t.to_owned()),
        None => Err(last["error"].clone()),
    };
    (status, challenge, outcome)
}

fn assert_invalid_token(status: StatusCode, challenge: &str, what: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\"")
            && challenge.contains("resource_metadata="),
        "{what}: {challenge}"
    );
}

async fn introspect(rig: &AuthRig, who: (&str, &str), token: &str) -> Value {
    Client::new()
        .post(rig.url("/oauth/introspect"))
        .basic_auth(who.0, Some(who.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_client_through_the_python_sdk_calls_what_its_roles_allow() {
    let rig = start_on(TestDb::sqlite().unwrap(), |_| {}).await;
    let (admin, _, _) = people(&rig).await;
    let metadata: Value = Client::new()
        .get(rig.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials"))
    );
    let created = create_service_client(
        &rig,
        &admin,
        json!({ "name": "nightly CI", "roles": ["agent"], "upstreams": ["demo"] }),
    )
    .await;
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(id.starts_with("mcpgate-svc-") && secret.starts_with("mcpgate_cs_"));
    // Shown once: never in a listing.
    let listed = Client::new()
        .get(rig.url(&format!("/api/v1/admin/service-clients/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.contains("nightly CI") && !listed.contains(secret));

    match fixtures::python("service_client_through_the_python_sdk").unwrap() {
        Some(python) => {
            let script = fixtures::workspace_path("tests/python/service_client.py");
            let out = tokio::time::timeout(
                Duration::from_secs(60),
                tokio::process::Command::new(python)
                    .arg(script)
                    .arg(rig.resource("demo"))
                    .arg(rig.url(""))
                    .arg(id)
                    .arg(secret)
                    .arg("echo")
                    .arg("headers")
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .unwrap()
            .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            eprintln!("python client-credentials agent: {report}");
            // The list shows only what the roles allow; the allowed tool runs; the other is
            // refused as unknown.
            assert_eq!(report["tools"], json!(["echo"]), "{report}");
            assert_eq!(report["allowed"]["text"], json!(["hi"]), "{report}");
            assert!(report["denied"]["error"].is_string(), "{report}");
            let requests = report["token_requests"].as_array().unwrap();
            assert!(
                requests
                    .iter()
                    .any(|r| r["status"] == 200 && r["body_has_resource"] == true),
                "{report}"
            );
        }
        None => eprintln!("(the Python SDK part was skipped; the raw-HTTP checks below ran)"),
    }

    // The same with plain HTTP: the token's principal is the service account, decided by RBAC.
    let (status, token, _) = client_credentials(&rig, id, secret, &rig.resource("demo")).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert!(token.get("refresh_token").is_none(), "{token}");
    assert_eq!(token["token_type"], "Bearer");
    let access = token["access_token"].as_str().unwrap();
    let (status, _, outcome) = call(&rig, "demo", access, "echo").await;
    assert_eq!((status, outcome), (StatusCode::OK, Ok("hi".to_owned())));
    let (status, _, outcome) = call(&rig, "demo", access, "headers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(outcome.is_err(), "denied tool: {outcome:?}");
    // Audience-bound: not at another upstream.
    let (status, challenge, _) = call(&rig, "other", access, "echo").await;
    assert_invalid_token(status, &challenge, "service token at another upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_client_secrets_rotate_and_disabling_stops_it_at_once() {
    let rig = start_on(TestDb::sqlite().unwrap(), |_| {}).await;
    let (admin, _, _) = people(&rig).await;
    let created = create_service_client(
        &rig,
        &admin,
        json!({ "name": "agent", "roles": ["agent"], "upstreams": ["demo"] }),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let first = created["client_secret"].as_str().unwrap().to_owned();
    let demo = rig.resource("demo");

    // Wrong secret: 401 invalid_client, with the Basic challenge (RFC 6749 §5.2).
    let (status, body, challenge) = client_credentials(&rig, &id, "mcpgate_cs_wrong", &demo).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(challenge.starts_with("Basic"), "{challenge}");
    // An upstream the client may not use.
    let (status, body, _) = client_credentials(&rig, &id, &first, &rig.resource("other")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    // A user's public client may not use the grant.
    let public = rig.register("http://127.0.0.1/cb").await;
    let r: Value = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &public),
            ("resource", &demo),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["error"], "unauthorized_client");

    // Rotation: both secrets work until the old one is retired.
    let rotated: Value = Client::new()
        .post(rig.url(&format!("/api/v1/admin/service-clients/{id}/rotate")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(rotated["previous_secret_expires_at"].is_i64(), "{rotated}");
    for secret in [&first, &second] {
        let (status, _, _) = client_credentials(&rig, &id, secret, &demo).await;
        assert_eq!(status, StatusCode::OK, "during rotation");
    }
    let r = Client::new()
        .post(rig.url(&format!("/api/v1/admin/service-clients/{id}/retire")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, body, _) = client_credentials(&rig, &id, &first, &demo).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, token, _) = client_credentials(&rig, &id, &second, &demo).await;
    assert_eq!(status, StatusCode::OK);
    let access = token["access_token"].as_str().unwrap().to_owned();

    // Introspection by the service client itself (confidential), and by an upstream.
    let seen = introspect(&rig, (&id, &second), &access).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["client_id"], id.as_str());
    assert_eq!(seen["aud"], demo.as_str());
    assert_eq!(seen["sub"], created["user_id"]);

    // RFC 7009 revocation by the client: the token stops at once.
    let (status, _, _) = call(&rig, "demo", &access, "echo").await;
    assert_eq!(status, StatusCode::OK);
    let r = Client::new()
        .post(rig.url("/oauth/revoke"))
        .basic_auth(&id, Some(&second))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, challenge, _) = call(&rig, "demo", &access, "echo").await;
    assert_invalid_token(status, &challenge, "revoked service token");
    let seen = introspect(&rig, ("introspector", "introspector-secret-value"), &access).await;
    assert_eq!(seen, json!({ "active": false }));

    // Disabling: the token in hand stops on the next call, and no new one is issued.
    let (_, token, _) = client_credentials(&rig, &id, &second, &demo).await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let (status, _, outcome) = call(&rig, "demo", &access, "echo").await;
    assert_eq!((status, outcome), (StatusCode::OK, Ok("hi".to_owned())));
    let r = Client::new()
        .post(rig.url(&format!("/api/v1/admin/service-clients/{id}/disable")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, challenge, _) = call(&rig, "demo", &access, "echo").await;
    assert_invalid_token(status, &challenge, "token of a disabled client");
    let (status, body, _) = client_credentials(&rig, &id, &second, &demo).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // Every change is audited.
    let store = rig.db.store().await.unwrap();
    let events = store.recent_audit_events(200).await.unwrap();
    for action in [
        "service_client.create",
        "service_client.rotate",
        "service_client.retire",
        "service_client.disable",
    ] {
        assert!(
            events.iter().any(|e| e.action == action),
            "{action} not audited"
        );
    }
}

async fn create_pat(rig: &AuthRig, api_token: &str, body: Value) -> (StatusCode, Value) {
    let r = Client::new()
        .post(rig.url("/api/v1/me/tokens"))
        .bearer_auth(api_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_narrow_the_user_and_follow_their_rights() {
    let rig = start_on(TestDb::sqlite().unwrap(), |_| {}).await;
    let (admin, bob_id, bob_api) = people(&rig).await;

    let (status, created) = create_pat(
        &rig,
        &bob_api,
        json!({ "name": "laptop script", "upstreams": ["demo"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let pat = created["token"].as_str().unwrap().to_owned();
    let pat_id = created["id"].as_str().unwrap().to_owned();
    assert!(pat.starts_with("mcpgate_pat_"));
    assert_eq!(created["scope"], "mcp api");

    // Usable at its upstream and on the API.
    let (status, _, outcome) = call(&rig, "demo", &pat, "headers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(outcome.is_ok(), "{outcome:?}");
    let me: Value = Client::new()
        .get(rig.url("/api/v1/me"))
        .bearer_auth(&pat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], BOB);
    // Another upstream: 401 invalid_token.
    let (status, challenge, _) = call(&rig, "other", &pat, "echo").await;
    assert_invalid_token(status, &challenge, "PAT for another upstream");

    // A narrower token: read-only, no API.
    let (_, narrow) = create_pat(
        &rig,
        &pat,
        json!({ "name": "ro", "upstreams": ["demo", "other"], "scope": "mcp:read", "expires_in_days": 1 }),
    )
    .await;
    let ro = narrow["token"].as_str().unwrap();
    let (status, challenge, _) = call(&rig, "other", ro, "echo").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let r = Client::new()
        .get(rig.url("/api/v1/me"))
        .bearer_auth(ro)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // Requests the configuration refuses.
    for bad in [
        json!({ "name": "x", "upstreams": ["nope"] }),
        json!({ "name": "x", "upstreams": [] }),
        json!({ "name": "x", "upstreams": ["demo"], "scope": "admin" }),
        json!({ "name": "x", "upstreams": ["demo"], "expires_in_days": 100000 }),
    ] {
        let (status, body) = create_pat(&rig, &bob_api, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} → {body}");
    }

    // Never more than the user has now: the role taken away applies to the next call.
    let (_, _, outcome) = call(&rig, "demo", &pat, "echo").await;
    assert_eq!(outcome, Ok("hi".to_owned()));
    let r = Client::new()
        .delete(rig.url(&format!("/api/v1/admin/users/{bob_id}/roles/person")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // No role grants anything on the upstream any more: 403 with the JSON-RPC denial.
    let (status, _, outcome) = call(&rig, "demo", &pat, "echo").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let error = outcome.expect_err("after the role was removed");
    assert!(
        error["message"].as_str().unwrap().contains("no access"),
        "{error}"
    );

    // Introspection (an upstream's confidential client).
    let intro = ("introspector", "introspector-secret-value");
    let seen = introspect(&rig, intro, &pat).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["sub"], bob_id.as_str());
    assert_eq!(seen["aud"], json!([rig.resource("demo")]));

    // Revocation through the API: the next call is refused at once (cache dropped).
    let r = Client::new()
        .delete(rig.url(&format!("/api/v1/me/tokens/{pat_id}")))
        .bearer_auth(&bob_api)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, challenge, _) = call(&rig, "demo", &pat, "echo").await;
    assert_invalid_token(status, &challenge, "revoked PAT");
    assert_eq!(
        introspect(&rig, intro, &pat).await,
        json!({ "active": false })
    );
    let listed: Value = Client::new()
        .get(rig.url("/api/v1/me/tokens"))
        .bearer_auth(&bob_api)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == pat_id.as_str())
        .unwrap();
    assert_eq!(
        (row["revoked"].as_bool(), row["active"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(
        !listed.to_string().contains("mcpgate_pat_"),
        "tokens are shown once"
    );

    // RFC 7009: whoever holds a personal token may revoke it, without client credentials.
    let r = Client::new()
        .post(rig.url("/oauth/revoke"))
        .form(&[("token", ro)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = Client::new()
        .get(rig.url("/api/v1/me"))
        .bearer_auth(ro)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // An expired token: 401 invalid_token.
    let store = rig.db.store().await.unwrap();
    let (expired, hash) = mcpgate_crypto::token::mint(mcpgate_crypto::TokenKind::Personal).unwrap();
    store
        .insert_personal_token(&PersonalToken {
            id: mcpgate_storage::new_id(),
            token_hash: hash.as_bytes().to_vec(),
            user_id: bob_id.clone(),
            name: "old".into(),
            upstreams: r#"["demo"]"#.into(),
            scopes: "mcp".into(),
            expires_at: now_ms() - 1_000,
            revoked_at: None,
            last_used_at: None,
            created_at: now_ms() - 86_400_000,
        })
        .await
        .unwrap();
    let (status, challenge, _) = call(&rig, "demo", expired.expose(), "echo").await;
    assert_invalid_token(status, &challenge, "expired PAT");

    let events = store.recent_audit_events(200).await.unwrap();
    assert!(events.iter().any(|e| e.action == "pat.create"));
    assert!(events.iter().any(|e| e.action == "pat.revoke"));
}

/// 1000 concurrent calls with personal tokens while the pool's only connection is held:
/// every call completes, so none waits on the last-used write; the writer catches up after.
async fn last_used_never_blocks(db: TestDb) {
    let mut store_slot = None;
    let mut tokens_slot = None;
    let rig = {
        let upstream = fixtures::FixtureUpstream::start().await.unwrap();
        let mut config = mcpgate_tests::test_config(db.url());
        config.bootstrap.admin_email = Some(USER.into());
        config.bootstrap.admin_password = Some(mcpgate_core::SecretString::new(PASSWORD));
        config.auth.rate_limit.per_account_per_minute = 0;
        config.upstreams = vec![crate::proxy::upstream_config("demo", &upstream.url)];
        config.database.max_connections = 1;
        config.http.max_connections_per_address = 0;
        config.database.wait_timeout_ms = 2_000;
        config.oauth.personal_tokens.last_used_interval_secs = 1;
        config.policy.audit_queue = 100_000;
        let gateway = TestServer::start_with(config.clone(), |state| {
            store_slot = Some(state.store.clone());
            tokens_slot = Some(state.tokens.clone());
            state
        })
        .await
        .unwrap();
        (gateway, upstream)
    };
    let (gateway, _upstream) = rig;
    let store = store_slot.unwrap();
    let validator = tokens_slot.unwrap();
    let http = Client::builder()
        .pool_max_idle_per_host(1000)
        .build()
        .unwrap();
    let admin: Value = http
        .post(gateway.url("/api/v1/login"))
        .json(&json!({ "email": USER, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    const TOKENS: usize = 20;
    const CALLS: usize = 1000;
    let mut pats = Vec::new();
    for i in 0..TOKENS {
        let created: Value = http
            .post(gateway.url("/api/v1/me/tokens"))
            .bearer_auth(&admin)
            .json(&json!({ "name": format!("t{i}"), "upstreams": ["demo"], "scope": "mcp" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pats.push(created["token"].as_str().unwrap().to_owned());
    }
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":
        crate::proxy::meta_2026()}});
    let send = |token: String| {
        let http = http.clone();
        let url = gateway.url("/mcp/demo");
        let body = list.to_string();
        async move {
            let started = Instant::now();
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/list")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let _ = r.bytes().await;
            (status, started.elapsed())
        }
    };
    // Warm the caches (token, grants, user context) with one call per token.
    for pat in &pats {
        assert_eq!(send(pat.clone()).await.0, StatusCode::OK);
    }
    let burst = || async {
        let started = Instant::now();
        let calls = futures::future::join_all(
            (0..CALLS).map(|i| tokio::spawn(send(pats[i % TOKENS].clone()))),
        )
        .await;
        let elapsed = started.elapsed();
        let mut latencies: Vec<Duration> = calls
            .into_iter()
            .map(|c| {
                let (status, latency) = c.unwrap();
                assert_eq!(status, StatusCode::OK);
                latency
            })
            .collect();
        latencies.sort();
        (elapsed, latencies)
    };
    // The same burst with the database free, for comparison.
    let (baseline, baseline_latencies) = burst().await;
    // Let the throttle window pass so the next burst's uses are all due to be written.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let written_before = validator.last_used().written();

    let hold = Duration::from_secs(20);
    let holder = {
        let store = store.clone();
        tokio::spawn(async move { mcpgate_storage::testing::hold_connection(&store, hold).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store.pool_status().available,
        0,
        "the only connection is held"
    );
    let burst_started_ms = now_ms();
    let (elapsed, latencies) = burst().await;
    assert!(
        !holder.is_finished(),
        "the burst must finish while the database is unavailable to the writer"
    );
    let p50 = latencies[CALLS / 2];
    let p99 = latencies[CALLS * 99 / 100];
    eprintln!(
        "{CALLS} concurrent PAT calls ({TOKENS} tokens) with the pool's only connection held: \
         all 200 in {elapsed:?} ({:.0} req/s), p50 {p50:?}, p99 {p99:?}, max {:?}; \
         last-used rows written meanwhile: {}",
        CALLS as f64 / elapsed.as_secs_f64(),
        latencies[CALLS - 1],
        validator.last_used().written() - written_before
    );
    eprintln!(
        "the same burst with the database free: {baseline:?} ({:.0} req/s), p50 {:?}, p99 {:?}; \
         held/free wall-time ratio {:.2}",
        CALLS as f64 / baseline.as_secs_f64(),
        baseline_latencies[CALLS / 2],
        baseline_latencies[CALLS * 99 / 100],
        elapsed.as_secs_f64() / baseline.as_secs_f64()
    );
    assert_eq!(
        validator.last_used().written(),
        written_before,
        "nothing could be written while the connection was held"
    );
    holder.abort();
    // Released: the writer catches up within a couple of intervals.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed: Value = http
            .get(gateway.url("/api/v1/me/tokens"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let fresh = listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["last_used_at"].as_i64().unwrap_or(0) >= burst_started_ms / 1000)
            .count();
        if fresh == TOKENS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "last-used times not written: {fresh}/{TOKENS}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "last-used writer after release: {} rows written, {} notes dropped, {} failed writes retried",
        validator.last_used().written() - written_before,
        validator.last_used().dropped(),
        validator.last_used().failed()
    );
    gateway.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_pat_calls_never_wait_on_last_used_sqlite() {
    last_used_never_blocks(TestDb::sqlite().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_pat_calls_never_wait_on_last_used_postgres() {
    if let Some(db) = TestDb::postgres("machines_last_used").await.unwrap() {
        last_used_never_blocks(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_on_postgres_too() {
    let Some(db) = TestDb::postgres("machines_pat").await.unwrap() else {
        return;
    };
    let rig = start_on(db, |_| {}).await;
    let (_, _, bob_api) = people(&rig).await;
    let (status, created) = create_pat(
        &rig,
        &bob_api,
        json!({ "name": "pg", "upstreams": ["demo"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let pat = created["token"].as_str().unwrap();
    let (status, _, outcome) = call(&rig, "demo", pat, "echo").await;
    assert_eq!((status, outcome), (StatusCode::OK, Ok("hi".to_owned())));
    let (status, challenge, _) = call(&rig, "other", pat, "echo").await;
    assert_invalid_token(status, &challenge, "PAT for another upstream (PostgreSQL)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokens_page_creates_shows_once_and_revokes() {
    let rig = AuthRig::start().await;
    let b = crate::oauth::browser();
    let r = b.get(rig.url("/me/tokens")).send().await.unwrap();
    assert!(r.status().is_redirection());
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    let html = b
        .get(rig.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = b
        .post(rig.url("/login"))
        .form(&[
            ("email", USER),
            ("password", PASSWORD),
            ("csrf", &crate::oauth::hidden_field(&html, "csrf")),
            ("return_to", &crate::oauth::hidden_field(&html, "return_to")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/me/tokens");
    let r = b.get(rig.url("/me/tokens")).send().await.unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let html = r.text().await.unwrap();
    assert!(html.contains("no tokens yet"), "{html}");
    // The create form's own token (the navigation's sign-out form has another).
    let form_at = html.find("action=\"/me/tokens\"").expect("the create form");
    let csrf = crate::oauth::hidden_field(&html[form_at..], "csrf");

    // Without the form's CSRF token: refused.
    let r = b
        .post(rig.url("/me/tokens"))
        .form(&[("name", "x"), ("upstream", "demo")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let html = b
        .post(rig.url("/me/tokens"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "from the page"),
            ("upstream", "demo"),
            ("upstream", "other"),
            ("scope", "mcp"),
            ("expires_in_days", "7"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = html
        .find("<code id=\"new-token\">")
        .expect("the new token is shown")
        + 21;
    let token = html[at..].split('<').next().unwrap().to_owned();
    assert!(token.starts_with("mcpgate_pat_"), "{token}");
    let (status, _, outcome) = call(&rig, "other", &token, "echo").await;
    assert_eq!((status, outcome), (StatusCode::OK, Ok("hi".to_owned())));
    // Shown once: the next view of the page does not have it.
    let html = b
        .get(rig.url("/me/tokens"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("from the page") && !html.contains(&token));

    let action_at = html.find("action=\"/me/tokens/").unwrap() + 8;
    let action = html[action_at..].split('"').next().unwrap().to_owned();
    let revoke_csrf = crate::oauth::hidden_field(&html[action_at..], "csrf");
    let r = b
        .post(rig.url(&action))
        .form(&[("csrf", revoke_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let (status, challenge, _) = call(&rig, "other", &token, "echo").await;
    assert_invalid_token(status, &challenge, "PAT revoked on the page");
    let html = b
        .get(rig.url("/me/tokens"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("revoked"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_login_signs_in_through_a_loopback_redirect_and_writes_a_private_file() {
    let rig = AuthRig::start().await;
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let endpoint = rig.resource("demo");
    let cli = tokio::spawn(async move {
        mcpgate_server::token_cli::login(&endpoint, None, move |url| {
            let _ = tx.send(url.to_owned());
        })
        .await
    });
    // The person at the browser: signs in, approves, and the browser lands on the CLI's
    // loopback listener.
    let authorize = rx.await.unwrap();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let b = crate::oauth::browser();
    let back = crate::oauth::drive(&rig, &b, &authorize).await;
    assert_eq!(back.host_str(), Some("127.0.0.1"));
    assert_eq!(back.path(), "/callback");
    let page = b
        .get(back.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in"), "{page}");
    let tokens = cli.await.unwrap().unwrap();
    assert_eq!(tokens.resource, rig.resource("demo"));
    assert!(tokens.refresh_token.is_some());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    std::fs::write(&path, "old").unwrap();
    mcpgate_server::token_cli::write_token_file(&path, &tokens).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let access = written["access_token"].as_str().unwrap();
    let (status, _, outcome) = call(&rig, "demo", access, "echo").await;
    assert_eq!((status, outcome), (StatusCode::OK, Ok("hi".to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_create_makes_a_personal_token_through_the_api() {
    use clap::Parser;
    let rig = start_on(TestDb::sqlite().unwrap(), |_| {}).await;
    let (_, _, bob_api) = people(&rig).await;
    let answer = mcpgate_server::token_cli::create(
        &rig.url(""),
        &bob_api,
        &mcpgate_server::token_cli::CreateRequest {
            name: "ci".into(),
            upstreams: vec!["demo".into()],
            scope: Some("mcp".into()),
            expires_in_days: Some(3),
        },
    )
    .await
    .unwrap();
    let pat = answer["token"].as_str().unwrap();
    let (status, _, outcome) = call(&rig, "demo", pat, "echo").await;
    assert_eq!((status, outcome), (StatusCode::OK, Ok("hi".to_owned())));
    // A refusal comes back as the API's words.
    let refused = mcpgate_server::token_cli::create(
        &rig.url(""),
        &bob_api,
        &mcpgate_server::token_cli::CreateRequest {
            name: "ci".into(),
            upstreams: vec!["nope".into()],
            scope: None,
            expires_in_days: None,
        },
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("no upstream named"),
        "{refused}"
    );
    // The command line itself, as a script would run it.
    let cli = mcpgate_server::cli::Cli::try_parse_from([
        "mcpgate",
        "token",
        "create",
        "--url",
        &rig.url(""),
        "--token",
        &bob_api,
        "--name",
        "from the command line",
        "--upstream",
        "demo",
        "--upstream",
        "other",
    ])
    .unwrap();
    let code = mcpgate_server::cli::run(cli).await;
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", std::process::ExitCode::SUCCESS)
    );
    let listed: Value = Client::new()
        .get(rig.url("/api/v1/me/tokens"))
        .bearer_auth(&bob_api)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let made = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "from the command line")
        .expect("the command created the token");
    assert_eq!(made["upstreams"], json!(["demo", "other"]));
}
