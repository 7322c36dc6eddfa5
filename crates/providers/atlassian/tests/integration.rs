//! The Atlassian plugin against a strict fake Atlassian 3LO (`fixtures/oauth-fakes`,
//! `atlassian` module): JSON token requests for the exchange and the refresh, rotation with
//! 403 `invalid_grant` on reuse, `/me` and the sites.

use std::time::Duration;

use mcpgate_core::{
    AuthorizationRequest, IdentityProvider, ProviderError, ProviderSettings, SecretString, TokenSet,
};
use mcpgate_fixture_oauth_fakes::atlassian::{Atlassian, Options};
use mcpgate_fixture_oauth_fakes::{
    CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, authorize, query_param, s256,
};
use mcpgate_provider_atlassian::AtlassianProvider;
use serde_json::json;

const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";

fn provider(fake: &Atlassian, options: serde_json::Value) -> anyhow::Result<AtlassianProvider> {
    let mut all = json!({ "auth_url": fake.base(), "api_url": fake.base() });
    if let (Some(all), Some(extra)) = (all.as_object_mut(), options.as_object()) {
        all.extend(extra.clone());
    }
    let settings = ProviderSettings {
        id: "atlassian".into(),
        kind: "atlassian".into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SecretString::new(CLIENT_SECRET)),
        scopes: vec!["read:me".into(), "read:jira-work".into()],
        options: all.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    };
    AtlassianProvider::from_settings(&settings).map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn request() -> AuthorizationRequest {
    AuthorizationRequest {
        redirect_uri: REDIRECT_URI.into(),
        state: "state-1".into(),
        nonce: "unused".into(),
        code_challenge: s256(VERIFIER),
        login_hint: None,
    }
}

async fn signed_in(p: &AtlassianProvider) -> anyhow::Result<TokenSet> {
    let url = p.authorization_url(&request()).await?;
    let back = authorize(&url).await?;
    assert_eq!(query_param(&back, "state").as_deref(), Some("state-1"));
    let code = query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code in {back}"))?;
    Ok(p.exchange_code(&code, VERIFIER, REDIRECT_URI, "").await?)
}

fn rt(tokens: &TokenSet) -> anyhow::Result<SecretString> {
    tokens
        .refresh_token
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))
}

#[tokio::test]
async fn sign_in_gives_the_account_and_its_sites() -> anyhow::Result<()> {
    let fake = Atlassian::start(Options::default()).await?;
    let p = provider(&fake, json!({}))?;
    let url = p.authorization_url(&request()).await?;
    assert_eq!(url.path(), "/authorize");
    let q = |k| query_param(&url, k);
    assert_eq!(q("audience").as_deref(), Some("api.atlassian.com"));
    assert_eq!(
        q("scope").as_deref(),
        Some("read:me read:jira-work offline_access")
    );
    assert_eq!(q("prompt").as_deref(), Some("consent"));
    assert_eq!(
        q("code_challenge"),
        None,
        "PKCE off by default (not documented for 3LO)"
    );
    let before = mcpgate_provider_kit::now_unix();
    let tokens = signed_in(&p).await?;
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    let expires = tokens.expires_at.unwrap_or_default() - before;
    assert!((3599..=3601).contains(&expires), "expires in {expires}");
    let user = p.user_info(&tokens.access_token).await?;
    assert_eq!(user.subject, "712020:2c1b2f3e-8a1d-4b5c-9e6f-0a1b2c3d4e5f");
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert!(user.email_verified);
    assert_eq!(user.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(
        user.tenant.get("cloud_id").map(String::as_str),
        Some("1324a887-45db-1bf4-1e99-ef0ff456d421")
    );
    assert_eq!(
        user.tenant.get("site").map(String::as_str),
        Some("https://acme.atlassian.net")
    );
    assert_eq!(
        user.claims["site_urls"],
        json!([
            "https://acme.atlassian.net",
            "https://acme-sandbox.atlassian.net"
        ])
    );
    assert_eq!(
        user.claims["sites"][1]["id"],
        "9a8b7c6d-0000-4e1f-8a2b-3c4d5e6f7a8b"
    );
    Ok(())
}

#[tokio::test]
async fn exchange_and_refresh_are_both_json_and_the_refresh_token_rotates() -> anyhow::Result<()> {
    let fake = Atlassian::start(Options::default()).await?;
    let p = provider(&fake, json!({}))?;
    let tokens = signed_in(&p).await?;
    // The access token's lifetime runs out.
    fake.expire_access_tokens().await;
    let err = p.user_info(&tokens.access_token).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unauthorized(_))),
        "{err:?}"
    );
    let old = rt(&tokens)?;
    let refreshed = p.refresh(&old).await?;
    let new = rt(&refreshed)?;
    assert_ne!(new.expose(), old.expose(), "rotated");
    p.user_info(&refreshed.access_token).await?;
    assert_eq!(
        fake.token_content_types().await,
        ["application/json", "application/json"],
        "the exchange and the refresh both sent JSON"
    );
    // Reuse of the rotated-out token: 403 invalid_grant, terminal.
    let err = p.refresh(&old).await.err();
    match err {
        Some(ProviderError::InvalidGrant(why)) => {
            assert!(why.contains("Unknown or invalid refresh token"), "{why}")
        }
        other => panic!("expected InvalidGrant, got {other:?}"),
    }
    p.refresh(&new).await?;
    Ok(())
}

#[tokio::test]
async fn pkce_when_enabled_is_s256_and_checked() -> anyhow::Result<()> {
    let fake = Atlassian::start(Options::default()).await?;
    let p = provider(&fake, json!({ "pkce": true }))?;
    let url = p.authorization_url(&request()).await?;
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let back = authorize(&url).await?;
    let code = query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code"))?;
    let err = p
        .exchange_code(
            &code,
            "another-verifier-that-is-long-enough-0123456789-xyz",
            REDIRECT_URI,
            "",
        )
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    signed_in(&p).await?;
    Ok(())
}

/// The fake is strict: a form body at the token endpoint is refused, so a plugin that sent
/// form (for the refresh, say) would fail the test above.
#[tokio::test]
async fn the_fake_refuses_form_bodies() -> anyhow::Result<()> {
    let fake = Atlassian::start(Options::default()).await?;
    let http = mcpgate_provider_kit::build_client(Duration::from_secs(5), Duration::from_secs(5))?;
    let answer = http
        .post(format!("{}/oauth/token", fake.base()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", "x"),
        ])
        .send()
        .await?;
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await?.contains("application/json"));
    Ok(())
}
