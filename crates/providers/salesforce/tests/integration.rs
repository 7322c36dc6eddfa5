//! The Salesforce plugin against a strict fake Salesforce (`fixtures/oauth-fakes`,
//! `salesforce` module): PKCE, no `expires_in` (a configured lifetime from the string
//! `issued_at`), refresh after a 401 from userinfo, optional rotation, the org and instance.

use std::time::Duration;

use mcpgate_core::{
    AuthorizationRequest, IdentityProvider, ProviderError, ProviderSettings, SecretString, TokenSet,
};
use mcpgate_fixture_oauth_fakes::salesforce::{ORG_ID, Options, Salesforce, USER_ID};
use mcpgate_fixture_oauth_fakes::{
    CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, authorize, query_param, s256,
};
use mcpgate_provider_salesforce::SalesforceProvider;
use serde_json::json;

const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";

fn provider(fake: &Salesforce, ttl: u64) -> anyhow::Result<SalesforceProvider> {
    let settings = ProviderSettings {
        id: "salesforce".into(),
        kind: "salesforce".into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SecretString::new(CLIENT_SECRET)),
        options: json!({ "login_url": fake.login_url(), "token_ttl_secs": ttl })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    };
    SalesforceProvider::from_settings(&settings).map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn request() -> AuthorizationRequest {
    AuthorizationRequest {
        redirect_uri: REDIRECT_URI.into(),
        state: "state-1".into(),
        nonce: "unused".into(),
        code_challenge: s256(VERIFIER),
        login_hint: Some("alice@acme.example.com".into()),
    }
}

async fn signed_in(p: &SalesforceProvider) -> anyhow::Result<TokenSet> {
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
async fn sign_in_keeps_org_instance_and_identity_url() -> anyhow::Result<()> {
    let fake = Salesforce::start(Options::default()).await?;
    let p = provider(&fake, 900)?;
    let url = p.authorization_url(&request()).await?;
    assert_eq!(url.path(), "/services/oauth2/authorize");
    let q = |k| query_param(&url, k);
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(
        q("scope").as_deref(),
        Some("id profile email refresh_token")
    );
    assert_eq!(q("login_hint").as_deref(), Some("alice@acme.example.com"));
    let before = mcpgate_provider_kit::now_unix();
    let tokens = signed_in(&p).await?;
    assert!(tokens.refresh_token.is_some());
    // No expires_in: issued_at (milliseconds, a string) + the configured 900 s.
    let expires = tokens.expires_at.unwrap_or_default() - before;
    assert!((899..=901).contains(&expires), "expires in {expires}");
    let user = p.user_info(&tokens.access_token).await?;
    assert_eq!(user.subject, USER_ID);
    assert_eq!(user.tenant.get("org_id").map(String::as_str), Some(ORG_ID));
    assert_eq!(
        user.tenant.get("instance_url").map(String::as_str),
        Some(fake.login_url().as_str())
    );
    assert_eq!(
        user.claims["id"],
        json!(format!("{}/id/{ORG_ID}/{USER_ID}", fake.login_url()))
    );
    assert_eq!(user.claims["organization_id"], ORG_ID);
    assert_eq!(user.claims["preferred_username"], "alice@acme.example.com");
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert!(user.email_verified);
    Ok(())
}

#[tokio::test]
async fn a_401_from_userinfo_is_unauthorized_and_a_refresh_mends_it() -> anyhow::Result<()> {
    let fake = Salesforce::start(Options::default()).await?;
    let p = provider(&fake, 7200)?;
    let tokens = signed_in(&p).await?;
    // The session times out long before the assumed 7200 s.
    fake.expire_access_tokens().await;
    let err = p.user_info(&tokens.access_token).await.err();
    match err {
        Some(ProviderError::Unauthorized(why)) => assert!(why.contains("401"), "{why}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let old = rt(&tokens)?;
    let refreshed = p.refresh(&old).await?;
    assert!(
        refreshed.refresh_token.is_none(),
        "no rotation: keep the old one"
    );
    assert!(refreshed.expires_at.is_some());
    assert_eq!(p.user_info(&refreshed.access_token).await?.subject, USER_ID);
    p.refresh(&old).await?;
    Ok(())
}

#[tokio::test]
async fn with_rotation_the_new_refresh_token_is_returned_and_reuse_is_invalid_grant()
-> anyhow::Result<()> {
    let fake = Salesforce::start(Options {
        rotate: true,
        ..Default::default()
    })
    .await?;
    let p = provider(&fake, 7200)?;
    let old = rt(&signed_in(&p).await?)?;
    let new = rt(&p.refresh(&old).await?)?;
    assert_ne!(new.expose(), old.expose());
    let err = p.refresh(&old).await.err();
    match err {
        Some(ProviderError::InvalidGrant(why)) => {
            assert!(why.contains("expired access/refresh token"), "{why}")
        }
        other => panic!("expected InvalidGrant, got {other:?}"),
    }
    p.refresh(&new).await?;
    Ok(())
}

#[tokio::test]
async fn pkce_is_checked_and_revoke_ends_the_refresh_token() -> anyhow::Result<()> {
    let fake = Salesforce::start(Options::default()).await?;
    let p = provider(&fake, 7200)?;
    let url = p.authorization_url(&request()).await?;
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
    let rt = rt(&signed_in(&p).await?)?;
    p.revoke(&rt).await?;
    assert_eq!(fake.counts.get("revoke").await, 1);
    let err = p.refresh(&rt).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    Ok(())
}

/// The fake never sends `expires_in`, and `issued_at` is a string of milliseconds.
#[tokio::test]
async fn the_fake_never_sends_expires_in() -> anyhow::Result<()> {
    let fake = Salesforce::start(Options::default()).await?;
    let http = mcpgate_provider_kit::build_client(Duration::from_secs(5), Duration::from_secs(5))?;
    let url = provider(&fake, 60)?.authorization_url(&request()).await?;
    let back = authorize(&url).await?;
    let code = query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code"))?;
    let body: serde_json::Value = http
        .post(format!("{}/services/oauth2/token", fake.login_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await?
        .json()
        .await?;
    assert!(body.get("access_token").is_some(), "{body}");
    assert!(body.get("expires_in").is_none(), "{body}");
    assert!(body["issued_at"].is_string(), "{body}");
    Ok(())
}
