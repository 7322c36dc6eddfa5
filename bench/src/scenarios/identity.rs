//! `cargo xtask bench identity`: how often mcpgate asks the identity provider, per 1000 tool
//! calls of a federated user — with a cold cache, a warm one, and across a provider-token
//! expiry — and what a refresh does to tool-call latency. Against the certified
//! `oidc-provider` realm (installed by `cargo xtask test` into `.cache/`), then per provider
//! (GitHub App, Google, Atlassian, Salesforce) against its strict fake.

use std::sync::Arc;
use std::time::Duration;

use mcpgate_core::{AuthorizationRequest, ProviderSettings, SecretString};
use mcpgate_fixture_oidc_provider::{
    CLIENT_SECRET, REDIRECT_URI, Realm, RealmOptions, query_param,
};
use mcpgate_fixture_upstream::Fixture;
use mcpgate_storage::{GrantTokens, NewUser};
use serde_json::json;

use super::oauth::{calls, family, gateway_with};
use crate::stats::{Table, fmt_dur, ratio};

const AT_TTL: u64 = 4;

/// `cargo xtask bench` sets `MCPGATE_TEST_CACHE` so the realm finds oidc-provider.
pub async fn run(short: bool) -> anyhow::Result<()> {
    let calls_per_phase: usize = if short { 200 } else { 1000 };
    let Some(realm) = Realm::start(
        "bench identity",
        RealmOptions {
            access_token_ttl: AT_TTL,
            jwt_access_tokens: false,
            ..Default::default()
        },
    )
    .await?
    else {
        anyhow::bail!("oidc-provider is not installed: run `cargo xtask test` once");
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(Fixture::default().serve(listener, std::future::pending()));
    let gw = gateway_with(&upstream, |c| {
        c.auth.provider_token_skew_secs = 0;
        c.auth.user_context_ttl_secs = 2;
        c.providers = vec![ProviderSettings {
            id: "corp".into(),
            kind: "keycloak".into(),
            client_id: "mcpgate".into(),
            client_secret: Some(SecretString::new(CLIENT_SECRET)),
            scopes: vec!["email".into()],
            options: json!({ "server_url": realm.server_url, "realm": "test", "token_auth": "client_secret_post" })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..Default::default()
        }];
    })
    .await?;

    // A federated user with a real provider grant (sign-in played headlessly at the realm).
    let provider = gw
        .state
        .providers
        .get("corp")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no provider"))?;
    let verifier = mcpgate_crypto::pkce::generate_verifier()?;
    let url = provider
        .authorization_url(&AuthorizationRequest {
            redirect_uri: REDIRECT_URI.into(),
            state: "s".into(),
            nonce: "n".into(),
            code_challenge: mcpgate_crypto::pkce::s256_challenge(verifier.expose()),
            login_hint: Some("alice".into()),
        })
        .await?;
    let back = realm.sign_in(&url, REDIRECT_URI).await?;
    let code = query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code"))?;
    let tokens = provider
        .exchange_code(&code, verifier.expose(), REDIRECT_URI, "n")
        .await?;
    let access = federated_user(&gw, "corp", "alice", &tokens).await?;
    // Sixteen clients of the same user, sharing one token (as tabs of one MCP client would).
    let access = Arc::new(access);
    let access: Vec<Arc<String>> = (0..16).map(|_| Arc::clone(&access)).collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    println!(
        "\nmethod: in-process mcpgate (SQLite), the Rust fixture upstream, and oidc-provider as a \
         Keycloak realm (opaque access tokens, {AT_TTL} s lifetime, rotating refresh tokens); \
         16 concurrent clients of one federated user calling tools/call for a fixed window per phase \
         ({}), then counts normalised per 1000 calls; \
         user-context TTL 2 s. Provider calls are the realm's own counts.",
        if short { "0.5 s" } else { "2 s" }
    );
    let table = Table::new(
        "provider calls per tools/call batch",
        &[
            "phase",
            "tool calls",
            "userinfo calls",
            "token (refresh) calls",
            "per 1000 calls",
            "p50",
            "p99",
            "p99 vs warm",
        ],
    );
    let window_for = |n: usize| Duration::from_millis(((n as u64) * 2).max(500));
    let mut warm_p99 = Duration::ZERO;
    for phase in ["cold", "warm", "across an expiry"] {
        if phase == "across an expiry" {
            tokio::time::sleep(Duration::from_secs(AT_TTL + 1)).await;
        }
        realm.reset_counts().await?;
        let (mut s, _rate, errors) =
            calls(&http, &gw.base, &access, window_for(calls_per_phase)).await;
        anyhow::ensure!(errors == 0, "{errors} failed calls in phase {phase}");
        let counts = realm.counts().await?;
        let userinfo = counts.get("userinfo").copied().unwrap_or(0);
        let token = counts.get("token").copied().unwrap_or(0);
        let p99 = s.percentile(99.0);
        if phase == "warm" {
            warm_p99 = p99;
        }
        table.row(&[
            phase.into(),
            s.len().to_string(),
            userinfo.to_string(),
            token.to_string(),
            format!(
                "{:.2}",
                (userinfo + token) as f64 * 1000.0 / s.len().max(1) as f64
            ),
            fmt_dur(s.percentile(50.0)),
            fmt_dur(p99),
            if warm_p99.is_zero() {
                "–".into()
            } else {
                ratio(p99.as_secs_f64(), warm_p99.as_secs_f64())
            },
        ]);
    }
    providers(short, &http, &upstream).await
}

/// A user, their identity and grant at `provider_id` holding `tokens`; their mcpgate token.
async fn federated_user(
    gw: &super::oauth::Gateway,
    provider_id: &str,
    subject: &str,
    tokens: &mcpgate_core::TokenSet,
) -> anyhow::Result<String> {
    let store = &gw.state.store;
    let user = store
        .create_user(&NewUser {
            email: format!("{subject}@{provider_id}.example.com"),
            ..Default::default()
        })
        .await?;
    let identity = store
        .create_identity(&user.id, provider_id, subject, &json!({}))
        .await?;
    let grant_id = mcpgate_storage::new_id();
    let seal = |col: &str, v: &SecretString| {
        gw.state.secret_box.seal(
            v.expose().as_bytes(),
            &mcpgate_server::identity::place(col, &grant_id),
        )
    };
    store
        .create_grant(
            &grant_id,
            &user.id,
            &identity.id,
            provider_id,
            &GrantTokens {
                access_token: seal("access_token", &tokens.access_token)?,
                refresh_token: tokens
                    .refresh_token
                    .as_ref()
                    .map(|t| seal("refresh_token", t))
                    .transpose()?,
                id_token: None,
                expires_at: tokens.expires_at.map(|s| s * 1000),
                refresh_expires_at: None,
                scopes: String::new(),
            },
        )
        .await?;
    Ok(family(gw, &user.id, 1).await?.0)
}

/// The same phases for each provider against its strict fake (`fixtures/oauth-fakes`):
/// GitHub as a GitHub App (expiring, rotating tokens), Google, Atlassian, and Salesforce
/// (no `expires_in`: the plugin's `token_ttl_secs` set to the fake's session lifetime).
async fn providers(short: bool, http: &reqwest::Client, upstream: &str) -> anyhow::Result<()> {
    use mcpgate_fixture_oauth_fakes as fakes;
    let ttl = i64::try_from(AT_TTL)?;
    let window = Duration::from_millis(if short { 500 } else { 2000 });
    println!(
        "\nmethod: as above, one gateway per provider against its fake ({AT_TTL} s access \
         tokens); user info is GitHub `/user` (+ emails, orgs, teams), Google `/userinfo`, \
         Atlassian `/me` (+ sites), Salesforce `/userinfo`; counted at the fake."
    );
    let table = Table::new(
        "provider calls per 1000 tool calls, per provider",
        &[
            "provider",
            "phase",
            "tool calls",
            "user-info calls",
            "token (refresh) calls",
            "per 1000 calls",
        ],
    );
    for kind in ["github", "google", "atlassian", "salesforce"] {
        let (counts, options, hint, userinfo_name, _fake): (
            fakes::Counts,
            serde_json::Value,
            &str,
            &str,
            Box<dyn std::any::Any + Send>,
        ) = match kind {
            "github" => {
                let f = fakes::github::GitHub::start(fakes::github::Options {
                    access_token_ttl: ttl,
                    ..Default::default()
                })
                .await?;
                let o = json!({ "web_url": f.web_url(), "api_url": f.api_url() });
                (f.counts.clone(), o, "octocat", "user", Box::new(f))
            }
            "google" => {
                let f = fakes::google::Google::start(fakes::google::Options {
                    access_token_ttl: ttl,
                    ..Default::default()
                })
                .await?;
                let o = json!({ "issuer": f.issuer() });
                (
                    f.counts.clone(),
                    o,
                    "alice@example.com",
                    "userinfo",
                    Box::new(f),
                )
            }
            "atlassian" => {
                let f = fakes::atlassian::Atlassian::start(fakes::atlassian::Options {
                    access_token_ttl: ttl,
                    ..Default::default()
                })
                .await?;
                let o = json!({ "auth_url": f.base(), "api_url": f.base() });
                (f.counts.clone(), o, "alice", "me", Box::new(f))
            }
            _ => {
                let f = fakes::salesforce::Salesforce::start(fakes::salesforce::Options {
                    session_ttl: ttl,
                    rotate: true,
                })
                .await?;
                let o = json!({ "login_url": f.login_url(), "token_ttl_secs": AT_TTL });
                (f.counts.clone(), o, "alice", "userinfo", Box::new(f))
            }
        };
        let gw = gateway_with(upstream, |c| {
            c.auth.provider_token_skew_secs = 0;
            c.auth.user_context_ttl_secs = 2;
            c.providers = vec![ProviderSettings {
                id: kind.into(),
                kind: kind.into(),
                client_id: fakes::CLIENT_ID.into(),
                client_secret: Some(SecretString::new(fakes::CLIENT_SECRET)),
                options: options.as_object().cloned().unwrap_or_default(),
                ..Default::default()
            }];
        })
        .await?;
        let provider = gw
            .state
            .providers
            .get(kind)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no provider {kind}"))?;
        let verifier = mcpgate_crypto::pkce::generate_verifier()?;
        let url = provider
            .authorization_url(&AuthorizationRequest {
                redirect_uri: fakes::REDIRECT_URI.into(),
                state: "s".into(),
                nonce: "n".into(),
                code_challenge: mcpgate_crypto::pkce::s256_challenge(verifier.expose()),
                login_hint: Some(hint.into()),
            })
            .await?;
        let back = fakes::authorize(&url).await?;
        let code = fakes::query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code"))?;
        let tokens = provider
            .exchange_code(&code, verifier.expose(), fakes::REDIRECT_URI, "n")
            .await?;
        let access = Arc::new(federated_user(&gw, kind, hint, &tokens).await?);
        let access: Vec<Arc<String>> = (0..16).map(|_| Arc::clone(&access)).collect();
        for phase in ["cold", "warm", "across an expiry"] {
            if phase == "across an expiry" {
                tokio::time::sleep(Duration::from_secs(AT_TTL + 1)).await;
            }
            let (u0, t0) = (counts.get(userinfo_name).await, counts.get("token").await);
            let (s, _rate, errors) = calls(http, &gw.base, &access, window).await;
            anyhow::ensure!(
                errors == 0,
                "{kind}: {errors} failed calls in phase {phase}"
            );
            let userinfo = counts.get(userinfo_name).await - u0;
            let token = counts.get("token").await - t0;
            table.row(&[
                kind.into(),
                phase.into(),
                s.len().to_string(),
                userinfo.to_string(),
                token.to_string(),
                format!(
                    "{:.2}",
                    (userinfo + token) as f64 * 1000.0 / s.len().max(1) as f64
                ),
            ]);
        }
    }
    Ok(())
}
