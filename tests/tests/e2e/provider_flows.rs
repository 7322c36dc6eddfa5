//! The gateway with each non-OIDC-server provider against its strict fake
//! (`fixtures/oauth-fakes`), as `identity.rs` does with the certified OIDC server: an MCP
//! client's OAuth flow through mcpgate that signs in with the provider, a tool call through
//! `/mcp/{upstream}`, 100 concurrent requests across an access-token expiry (one refresh at
//! the provider), the provider's terminal refresh error (the grant ends, the client gets a 401
//! challenge), and a claim → role mapping that grants a tool.

use std::sync::Arc;
use std::time::Duration;

use mcpgate_core::{IdentityProvider, ProviderSettings, SecretString};
use mcpgate_fixture_oauth_fakes::atlassian::{self, Atlassian};
use mcpgate_fixture_oauth_fakes::github::{self, GitHub};
use mcpgate_fixture_oauth_fakes::google::{self, Google};
use mcpgate_fixture_oauth_fakes::salesforce::{self, ORG_ID, Salesforce};
use mcpgate_fixture_oauth_fakes::{CLIENT_ID, CLIENT_SECRET};
use mcpgate_server::Config;
use mcpgate_tests::fixtures::FixtureUpstream;
use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::oauth::{browser, pkce};
use crate::proxy::upstream_config;

const CB: &str = "http://127.0.0.1/callback";

/// Access-token lifetime at the fakes in the expiry tests, seconds.
const SHORT_TTL: i64 = 2;

/// One of the four fakes, started for a test.
enum Fake {
    GitHub(GitHub),
    Google(Google),
    Atlassian(Atlassian),
    Salesforce(Salesforce),
}

impl Fake {
    /// Starts the fake `kind` with access tokens that live `ttl` seconds (GitHub in GitHub
    /// App mode: expiring `ghu_` tokens and rotating `ghr_` refresh tokens; Salesforce with
    /// refresh-token rotation, its opt-in mode whose reuse is terminal).
    async fn start(kind: &str, ttl: i64) -> Self {
        match kind {
            "github" => Self::GitHub(
                GitHub::start(github::Options {
                    kind: github::AppKind::GitHubApp,
                    access_token_ttl: ttl,
                    ..Default::default()
                })
                .await
                .unwrap(),
            ),
            "google" => Self::Google(
                Google::start(google::Options {
                    access_token_ttl: ttl,
                    ..Default::default()
                })
                .await
                .unwrap(),
            ),
            "atlassian" => Self::Atlassian(
                Atlassian::start(atlassian::Options {
                    access_token_ttl: ttl,
                    ..Default::default()
                })
                .await
                .unwrap(),
            ),
            "salesforce" => Self::Salesforce(
                Salesforce::start(salesforce::Options {
                    session_ttl: ttl,
                    rotate: true,
                })
                .await
                .unwrap(),
            ),
            other => panic!("no fake {other}"),
        }
    }

    /// The provider entry that points the plugin at this fake. Salesforce sends no
    /// `expires_in`: the plugin's assumed lifetime is set to the fake's.
    fn entry(&self, ttl: i64) -> ProviderSettings {
        let (kind, options) = match self {
            Self::GitHub(f) => (
                "github",
                json!({ "web_url": f.web_url(), "api_url": f.api_url() }),
            ),
            Self::Google(f) => ("google", json!({ "issuer": f.issuer() })),
            Self::Atlassian(f) => (
                "atlassian",
                json!({ "auth_url": f.base(), "api_url": f.base() }),
            ),
            Self::Salesforce(f) => (
                "salesforce",
                json!({ "login_url": f.login_url(), "token_ttl_secs": ttl }),
            ),
        };
        ProviderSettings {
            id: kind.into(),
            kind: kind.into(),
            client_id: CLIENT_ID.into(),
            client_secret: Some(SecretString::new(CLIENT_SECRET)),
            options: options.as_object().cloned().unwrap(),
            ..Default::default()
        }
    }

    fn id(&self) -> &'static str {
        match self {
            Self::GitHub(_) => "github",
            Self::Google(_) => "google",
            Self::Atlassian(_) => "atlassian",
            Self::Salesforce(_) => "salesforce",
        }
    }

    /// The account the fake signs in for a `login_hint`, and its verified email.
    fn account(&self) -> (&'static str, &'static str) {
        match self {
            Self::GitHub(_) => ("octocat", "octocat@example.com"),
            Self::Google(_) => ("alice@example.com", "alice@example.com"),
            Self::Atlassian(_) => ("alice", "alice@example.com"),
            Self::Salesforce(_) => ("alice@acme.example.com", "alice@example.com"),
        }
    }

    /// Calls of the fake's token endpoint so far (code exchanges and refreshes).
    async fn token_calls(&self) -> u64 {
        self.counts().get("token").await
    }

    fn counts(&self) -> &mcpgate_fixture_oauth_fakes::Counts {
        match self {
            Self::GitHub(f) => &f.counts,
            Self::Google(f) => &f.counts,
            Self::Atlassian(f) => &f.counts,
            Self::Salesforce(f) => &f.counts,
        }
    }

    async fn expire_access_tokens(&self) {
        match self {
            Self::GitHub(f) => f.expire_access_tokens().await,
            Self::Google(f) => f.expire_access_tokens().await,
            Self::Atlassian(f) => f.expire_access_tokens().await,
            Self::Salesforce(f) => f.expire_access_tokens().await,
        }
    }

    /// Makes the refresh token mcpgate holds useless, as the provider's users do: Google's
    /// user revokes the app's access; at the others (rotating refresh tokens) someone else
    /// spends it first, so mcpgate's refresh is a reuse.
    async fn kill_refresh_token(&self, entry: &ProviderSettings, rt: SecretString) {
        if let Self::Google(f) = self {
            f.revoke_all().await;
            return;
        }
        let plugin = plugin(entry);
        plugin.refresh(&rt).await.expect("the first use works");
    }
}

fn plugin(entry: &ProviderSettings) -> Arc<dyn IdentityProvider> {
    let descriptor = match entry.kind.as_str() {
        "github" => mcpgate_provider_github::DESCRIPTOR,
        "google" => mcpgate_provider_google::DESCRIPTOR,
        "atlassian" => mcpgate_provider_atlassian::DESCRIPTOR,
        _ => mcpgate_provider_salesforce::DESCRIPTOR,
    };
    (descriptor.build)(entry).unwrap()
}

/// mcpgate with one provider (a fake), the fixture upstream as `demo`, and its database.
struct Rig {
    fake: Fake,
    entry: ProviderSettings,
    gateway: TestServer,
    db: TestDb,
    config: Config,
    _upstream: FixtureUpstream,
}

impl Rig {
    async fn start(kind: &str, ttl: i64, adjust: impl FnOnce(&mut Config)) -> Self {
        let fake = Fake::start(kind, ttl).await;
        let entry = fake.entry(ttl);
        let upstream = FixtureUpstream::start().await.unwrap();
        let db = TestDb::sqlite().unwrap();
        let mut config = test_config(db.url());
        config.upstreams = vec![upstream_config("demo", &upstream.url)];
        config.auth.provider_token_skew_secs = 0;
        config.providers = vec![entry.clone()];
        adjust(&mut config);
        let gateway = TestServer::start(config.clone()).await.unwrap();
        Self {
            fake,
            entry,
            gateway,
            db,
            config,
            _upstream: upstream,
        }
    }

    fn url(&self, path: &str) -> String {
        self.gateway.url(path)
    }

    /// The tokens of an OAuth client whose user signed in with the provider.
    async fn signed_in(&self) -> Value {
        let (hint, _) = self.fake.account();
        federated_tokens(&self.gateway, self.fake.id(), &browser(), hint)
            .await
            .unwrap()
    }

    /// The live provider grant of the signed-in user: its id and refresh token.
    async fn grant(&self) -> (String, SecretString) {
        let (_, email) = self.fake.account();
        let store = self.db.store().await.unwrap();
        let user = store.find_user_by_email(email).await.unwrap().unwrap();
        let grant = store.latest_live_grant(&user.id).await.unwrap().unwrap();
        let keys = mcpgate_server::app::secret_box(&self.config).unwrap();
        let rt = keys
            .open(
                grant.refresh_token.as_deref().expect("a refresh token"),
                &mcpgate_server::identity::place("refresh_token", &grant.id),
            )
            .unwrap();
        (
            grant.id,
            SecretString::new(String::from_utf8(rt.to_vec()).unwrap()),
        )
    }
}

/// Registers a public client (DCR) redirecting to `CB`; its client id.
async fn register(gateway: &TestServer) -> String {
    let r = Client::new()
        .post(gateway.url("/oauth/register"))
        .json(&json!({ "client_name": "Provider Client", "redirect_uris": [CB] }))
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An OAuth client whose user picks "Sign in with {provider}" inside the authorization
/// request: DCR, authorize, consent to federate, the provider (the fake signs in the account
/// named by `login_hint`), consent, code exchange. The tokens, with the client id as
/// `client_id`.
async fn federated_tokens(
    gateway: &TestServer,
    provider: &str,
    b: &Client,
    login_hint: &str,
) -> Result<Value, String> {
    let client_id = register(gateway).await;
    let p = pkce();
    let mut authorize = Url::parse(&gateway.url("/oauth/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", CB)
        .append_pair("code_challenge", &p.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "s")
        .append_pair("resource", &gateway.url("/mcp/demo"));
    let return_to = format!("{}?{}", authorize.path(), authorize.query().unwrap());
    let mut start = Url::parse(&gateway.url(&format!("/login/{provider}"))).unwrap();
    start
        .query_pairs_mut()
        .append_pair("return_to", &return_to)
        .append_pair("login_hint", login_hint);
    let mut next = start.to_string();
    for _ in 0..20 {
        if next.starts_with(CB) {
            let back = Url::parse(&next).unwrap();
            let code = back
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| format!("no code: {next}"))?;
            let token_url = gateway.url("/oauth/token");
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
        let field = |name: &str| crate::oauth::hidden_field(&html, name);
        let action = format!("action=\"/login/{provider}\"");
        let r = if status == StatusCode::OK && html.contains(&action) {
            b.post(gateway.url(&format!("/login/{provider}")))
                .form(&[
                    ("csrf", field("csrf")),
                    ("return_to", field("return_to")),
                    ("login_hint", field("login_hint")),
                    ("decision", "approve".into()),
                ])
                .send()
                .await
                .unwrap()
        } else if status == StatusCode::OK && html.contains("action=\"/oauth/authorize\"") {
            b.post(gateway.url("/oauth/authorize"))
                .form(&[
                    ("csrf", field("csrf")),
                    ("request", field("request")),
                    ("decision", "approve".into()),
                ])
                .send()
                .await
                .unwrap()
        } else {
            return Err(format!("{status}: {html}"));
        };
        assert!(r.status().is_redirection(), "{}", r.status());
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        next = Url::parse(&gateway.url("/"))
            .unwrap()
            .join(&loc)
            .unwrap()
            .to_string();
    }
    Err("too many redirects".into())
}

/// `tools/call echo` through the gateway: the text echoed, or the JSON-RPC error.
async fn echo(base: &str, token: &str, text: &str) -> Result<String, Value> {
    let call = crate::proxy::tool_call(2, "echo", json!({ "text": text }), true);
    let r = Client::new()
        .post(format!("{base}/mcp/demo"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    let (status, ct, body) = crate::proxy::read(r).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let last = crate::proxy::messages(&ct, &body)
        .last()
        .cloned()
        .unwrap_or(Value::Null);
    match last["result"]["content"][0]["text"].as_str() {
        Some(text) => Ok(text.to_owned()),
        None => Err(last),
    }
}

const PROVIDERS: [&str; 4] = ["github", "google", "atlassian", "salesforce"];

/// Each provider, inside an MCP client's OAuth flow: the client gets mcpgate's tokens (never
/// the provider's), and its tool call reaches the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn each_provider_signs_in_inside_the_oauth_flow_and_a_tool_call_goes_through() {
    for kind in PROVIDERS {
        let rig = Rig::start(kind, 3600, |_| {}).await;
        let t = rig.signed_in().await;
        let access = t["access_token"].as_str().unwrap_or_else(|| panic!("{t}"));
        assert!(t.get("id_token").is_none(), "{kind}: {t}");
        assert_eq!(
            echo(&rig.gateway.base, access, "hi").await,
            Ok("hi".to_owned()),
            "{kind}"
        );
        assert_eq!(rig.fake.token_calls().await, 1, "{kind}: one code exchange");
        let (_, email) = rig.fake.account();
        let store = rig.db.store().await.unwrap();
        assert!(
            store.find_user_by_email(email).await.unwrap().is_some(),
            "{kind}: the user is created from the provider's verified email"
        );
    }
}

/// 100 concurrent requests after the provider's access token expired (and was ended at the
/// fake, so a stale token would fail): exactly one refresh at the provider, every request
/// succeeds. With rotating refresh tokens (GitHub App, Atlassian, Salesforce with rotation) a
/// second refresh would be a reuse and end the grant.
#[tokio::test(flavor = "multi_thread")]
async fn hundred_concurrent_requests_across_an_expiry_make_one_refresh_per_provider() {
    for kind in PROVIDERS {
        let rig = Rig::start(kind, SHORT_TTL, |c| c.auth.user_context_ttl_secs = 1).await;
        let t = rig.signed_in().await;
        let access = Arc::new(t["access_token"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(2200)).await;
        rig.fake.expire_access_tokens().await;
        let before = rig.fake.token_calls().await;
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (access, base, barrier) =
                    (access.clone(), rig.gateway.base.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    crate::oauth::list_tools(&base, &access).await
                })
            })
            .collect();
        let mut failures = 0;
        for t in tasks {
            if t.await.unwrap() != StatusCode::OK {
                failures += 1;
            }
        }
        let refreshes = rig.fake.token_calls().await - before;
        println!("{kind}: {refreshes} refresh(es), {failures} failure(s) for 100 requests");
        assert_eq!(failures, 0, "{kind}: every request succeeds");
        assert_eq!(refreshes, 1, "{kind}: exactly one refresh");
        // The refreshed grant goes on working for a tool call.
        assert_eq!(
            echo(&rig.gateway.base, &access, "after").await,
            Ok("after".to_owned()),
            "{kind}"
        );
    }
}

/// Salesforce never says when its access token dies: with the assumed lifetime far away,
/// the session ends at the fake and user info answers 401 `INVALID_SESSION_ID`. 100
/// concurrent requests then make one refresh, and all succeed.
#[tokio::test(flavor = "multi_thread")]
async fn salesforce_a_session_that_dies_early_is_refreshed_once_after_the_userinfo_401() {
    let rig = Rig::start("salesforce", 3600, |c| c.auth.user_context_ttl_secs = 1).await;
    let t = rig.signed_in().await;
    let access = Arc::new(t["access_token"].as_str().unwrap().to_owned());
    rig.fake.expire_access_tokens().await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the user context expires
    let (before, userinfo) = (
        rig.fake.token_calls().await,
        rig.fake.counts().get("userinfo").await,
    );
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (access, base, barrier) =
                (access.clone(), rig.gateway.base.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                crate::oauth::list_tools(&base, &access).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK, "every request succeeds");
    }
    assert_eq!(rig.fake.token_calls().await - before, 1, "one refresh");
    assert_eq!(
        rig.fake.counts().get("userinfo").await - userinfo,
        2,
        "the 401, then one retry with the new token"
    );
}

/// The provider's terminal refresh error (GitHub: HTTP 200 `bad_refresh_token`; Atlassian:
/// 403 `invalid_grant`; Google: 400 `invalid_grant` after the user revoked the app;
/// Salesforce with rotation: 400 `invalid_grant`) ends the grant: the client gets a 401
/// challenge (never a 500), stays signed out, and its own refresh token is dead.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_refresh_error_at_each_provider_ends_the_grant_and_the_client_gets_401() {
    for kind in PROVIDERS {
        let rig = Rig::start(kind, SHORT_TTL, |c| c.auth.user_context_ttl_secs = 1).await;
        let t = rig.signed_in().await;
        let access = t["access_token"].as_str().unwrap().to_owned();
        let (grant, rt) = rig.grant().await;
        rig.fake.kill_refresh_token(&rig.entry, rt).await;
        tokio::time::sleep(Duration::from_millis(2200)).await;
        rig.fake.expire_access_tokens().await;
        let before = rig.fake.token_calls().await;
        let r = Client::new()
            .post(rig.url("/mcp/demo"))
            .bearer_auth(&access)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list",
                           "params": { "_meta": crate::proxy::meta_2026() } }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{kind}: sign in again"
        );
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer "), "{kind}: {challenge}");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{kind}: {challenge}"
        );
        let metadata = format!(
            "resource_metadata=\"{}\"",
            rig.url("/.well-known/oauth-protected-resource/mcp/demo")
        );
        assert!(challenge.contains(&metadata), "{kind}: {challenge}");
        assert_eq!(
            rig.fake.token_calls().await - before,
            1,
            "{kind}: one refused refresh, not retried"
        );
        let store = rig.db.store().await.unwrap();
        assert!(
            store.get_grant(&grant).await.unwrap().dead_at.is_some(),
            "{kind}: the grant is dead"
        );
        assert_eq!(
            crate::oauth::list_tools(&rig.gateway.base, &access).await,
            StatusCode::UNAUTHORIZED,
            "{kind}: still signed out"
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
        assert_eq!(body["error"], "invalid_grant", "{kind}: {body}");
        // Signing in again works.
        let t = rig.signed_in().await;
        let access = t["access_token"].as_str().unwrap();
        assert_eq!(
            echo(&rig.gateway.base, access, "back").await,
            Ok("back".to_owned()),
            "{kind}"
        );
    }
}

/// Only the provider's claim grants the tool: GitHub team `acme:platform`, Google `hd`,
/// Atlassian site URL, Salesforce organization id. Everyone may list tools.
const MAPPING_POLICY: &str = r#"
default_role = "lister"

[[roles]]
name = "lister"
grants = [{ effect = "allow", action = "tools/list", upstream = "demo" }]

[[roles]]
name = "echoer"
grants = [{ effect = "allow", action = "tools/call", upstream = "demo", target = "echo" }]

[[mappings]]
provider = "github"
claim = "groups"
value = "acme:platform"
role = "echoer"

[[mappings]]
provider = "google"
claim = "tenant.hd"
value = "example.com"
role = "echoer"

[[mappings]]
provider = "atlassian"
claim = "site_urls"
value = "https://acme.atlassian.net"
role = "echoer"

[[mappings]]
provider = "salesforce"
claim = "tenant.org_id"
value = "ORG_ID"
role = "echoer"
"#;

fn mapping_policy(only_other_providers: bool, kind: &str) -> mcpgate_server::config::PolicyConfig {
    let mut policy: mcpgate_server::config::PolicyConfig =
        toml::from_str(&MAPPING_POLICY.replace("ORG_ID", ORG_ID)).unwrap();
    if only_other_providers {
        policy
            .mappings
            .retain(|m| m.provider.as_deref() != Some(kind));
    }
    policy
}

/// Each provider's claim, mapped to a role by `[[policy.mappings]]`, grants `echo`; without
/// that one rule the same user may list tools but not call it.
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_of_each_provider_maps_to_a_role_that_grants_a_tool() {
    for kind in PROVIDERS {
        for mapped in [true, false] {
            let rig = Rig::start(kind, 3600, |c| c.policy = mapping_policy(!mapped, kind)).await;
            let t = rig.signed_in().await;
            let access = t["access_token"].as_str().unwrap();
            assert_eq!(
                crate::oauth::list_tools(&rig.gateway.base, access).await,
                StatusCode::OK
            );
            let result = echo(&rig.gateway.base, access, "mapped").await;
            if mapped {
                assert_eq!(result, Ok("mapped".to_owned()), "{kind}");
            } else {
                let denied = result.unwrap_err();
                assert_eq!(denied["error"]["code"], -32602, "{kind}: {denied}");
            }
        }
    }
}

/// The Python `mcp` SDK, headless: discovers mcpgate, registers, picks "Sign in with …" for
/// each provider on the sign-in page, signs in at the fake, consents, and calls a tool.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_signs_in_with_each_provider_and_calls_a_tool() {
    let Some(python) =
        mcpgate_tests::fixtures::python("python_sdk_signs_in_with_each_provider").unwrap()
    else {
        return;
    };
    for kind in PROVIDERS {
        let rig = Rig::start(kind, 3600, |_| {}).await;
        let (hint, email) = rig.fake.account();
        let report = mcpgate_tests::fixtures::python_oauth_flow(
            &python,
            &rig.url("/mcp/demo"),
            "2026-07-28",
            ("", ""),
            &json!({ "federated": { "provider": kind, "login_hint": hint } }),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let what = format!("{kind}: {report}");
        assert!(
            report["tools"].as_array().unwrap().contains(&json!("echo")),
            "{what}"
        );
        assert_eq!(report["echo"], json!(["first call"]), "{what}");
        assert_eq!(rig.fake.counts().get("authorize").await, 1, "{what}");
        assert_eq!(rig.fake.token_calls().await, 1, "{what}");
        let store = rig.db.store().await.unwrap();
        assert!(
            store.find_user_by_email(email).await.unwrap().is_some(),
            "{what}"
        );
    }
}

/// The same person at Google (hd `example.com`) and Atlassian (site `acme.atlassian.net`),
/// linked by the verified email: a rule on each provider's claim gives a role, and both count
/// whichever provider they signed in with last, for every client of theirs.
const TWO_PROVIDERS_POLICY: &str = r#"
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

[[mappings]]
provider = "google"
claim = "tenant.hd"
value = "example.com"
role = "echoer"

[[mappings]]
provider = "atlassian"
claim = "site_urls"
value = "https://acme.atlassian.net"
role = "inspector"
"#;

/// `tools/call headers` through the gateway: Ok when the tool ran.
async fn headers(base: &str, token: &str) -> Result<(), Value> {
    let call = crate::proxy::tool_call(3, "headers", json!({}), true);
    let r = Client::new()
        .post(format!("{base}/mcp/demo"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "headers")
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    let (status, ct, body) = crate::proxy::read(r).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let last = crate::proxy::messages(&ct, &body)
        .last()
        .cloned()
        .unwrap_or(Value::Null);
    if last["result"].is_object() {
        Ok(())
    } else {
        Err(last)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_linked_to_two_providers_holds_the_mapped_roles_of_both() {
    let google = Fake::start("google", 3600).await;
    let atlassian = Fake::start("atlassian", 3600).await;
    let upstream = FixtureUpstream::start().await.unwrap();
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    config.upstreams = vec![upstream_config("demo", &upstream.url)];
    config.providers = vec![google.entry(3600), atlassian.entry(3600)];
    config.policy = toml::from_str(TWO_PROVIDERS_POLICY).unwrap();
    let gateway = TestServer::start(config).await.unwrap();
    let base = gateway.base.clone();
    let token = |t: Value| t["access_token"].as_str().unwrap().to_owned();

    let by_google = token(
        federated_tokens(&gateway, "google", &browser(), "alice@example.com")
            .await
            .unwrap(),
    );
    assert_eq!(echo(&base, &by_google, "g").await, Ok("g".to_owned()));
    assert!(
        headers(&base, &by_google).await.is_err(),
        "not yet at Atlassian"
    );

    // Then Atlassian, as the same verified email: one user, and the Google facts still count.
    let by_atlassian = token(
        federated_tokens(&gateway, "atlassian", &browser(), "alice")
            .await
            .unwrap(),
    );
    let store = db.store().await.unwrap();
    assert_eq!(store.list_users(None, 100).await.unwrap().len(), 1);
    for (who, access) in [
        ("google client", &by_google),
        ("atlassian client", &by_atlassian),
    ] {
        assert_eq!(
            echo(&base, access, "both").await,
            Ok("both".to_owned()),
            "{who}: the Google rule"
        );
        assert_eq!(
            headers(&base, access).await,
            Ok(()),
            "{who}: the Atlassian rule"
        );
    }
}
