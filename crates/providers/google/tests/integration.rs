//! The Google plugin against a strict fake Google (`fixtures/oauth-fakes`, `google` module):
//! discovery, signed id tokens checked against its JWKS, offline access and consent, refresh
//! without a new refresh token, `invalid_grant`, `hd` and `allowed_domains`.

use mcpgate_core::{
    AuthorizationRequest, IdentityProvider, ProviderError, ProviderSettings, SecretString, TokenSet,
};
use mcpgate_fixture_oauth_fakes::google::{GRANTED_SCOPE, Google, Options};
use mcpgate_fixture_oauth_fakes::{
    CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, authorize, query_param, s256,
};
use mcpgate_provider_google::GoogleProvider;
use serde_json::json;

const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@gmail.com";

fn provider(fake: &Google, options: serde_json::Value) -> anyhow::Result<GoogleProvider> {
    let mut all = json!({ "issuer": fake.issuer() });
    if let (Some(all), Some(extra)) = (all.as_object_mut(), options.as_object()) {
        all.extend(extra.clone());
    }
    let settings = ProviderSettings {
        id: "google".into(),
        kind: "google".into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SecretString::new(CLIENT_SECRET)),
        options: all.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    };
    GoogleProvider::from_settings(&settings).map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn request(hint: &str, nonce: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        redirect_uri: REDIRECT_URI.into(),
        state: "state-1".into(),
        nonce: nonce.into(),
        code_challenge: s256(VERIFIER),
        login_hint: Some(hint.into()),
    }
}

async fn code(p: &GoogleProvider, hint: &str, nonce: &str) -> anyhow::Result<String> {
    let url = p.authorization_url(&request(hint, nonce)).await?;
    let back = authorize(&url).await?;
    assert_eq!(query_param(&back, "state").as_deref(), Some("state-1"));
    query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code in {back}"))
}

async fn signed_in(p: &GoogleProvider, hint: &str) -> anyhow::Result<TokenSet> {
    let code = code(p, hint, "nonce-1").await?;
    Ok(p.exchange_code(&code, VERIFIER, REDIRECT_URI, "nonce-1")
        .await?)
}

#[tokio::test]
async fn sign_in_with_offline_access_a_verified_id_token_and_hd() -> anyhow::Result<()> {
    let fake = Google::start(Options::default()).await?;
    let p = provider(&fake, json!({}))?;
    let url = p.authorization_url(&request(ALICE, "n")).await?;
    assert_eq!(url.path(), "/o/oauth2/v2/auth");
    let q = |k| query_param(&url, k);
    assert_eq!(q("access_type").as_deref(), Some("offline"));
    assert_eq!(
        q("prompt").as_deref(),
        Some("consent"),
        "default: consent every time"
    );
    assert_eq!(q("scope").as_deref(), Some("openid email profile"));
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(q("nonce").as_deref(), Some("n"));
    let tokens = signed_in(&p, ALICE).await?;
    assert!(tokens.access_token.expose().starts_with("ya29."));
    assert!(
        tokens.refresh_token.is_some(),
        "offline access gives a refresh token"
    );
    assert!(tokens.id_token.is_some());
    assert_eq!(
        tokens.scopes,
        GRANTED_SCOPE.split(' ').collect::<Vec<_>>(),
        "URL scopes kept"
    );
    let user = p.user_info(&tokens.access_token).await?;
    assert_eq!(user.subject, "110169484474386276334");
    assert_eq!(user.email.as_deref(), Some(ALICE));
    assert!(user.email_verified);
    assert_eq!(
        user.tenant.get("hd").map(String::as_str),
        Some("example.com")
    );
    assert_eq!(user.claims["hd"], "example.com");
    // Discovery and the JWKS were read once.
    assert_eq!(fake.counts.get("discovery").await, 1);
    assert_eq!(fake.counts.get("certs").await, 1);
    Ok(())
}

#[tokio::test]
async fn without_prompt_consent_only_the_first_consent_gives_a_refresh_token() -> anyhow::Result<()>
{
    let fake = Google::start(Options::default()).await?;
    let p = provider(&fake, json!({ "prompt_consent": false }))?;
    let url = p.authorization_url(&request(ALICE, "n")).await?;
    assert_eq!(query_param(&url, "prompt"), None);
    let first = signed_in(&p, ALICE).await?;
    assert!(first.refresh_token.is_some(), "first consent");
    let second = signed_in(&p, ALICE).await?;
    assert!(
        second.refresh_token.is_none(),
        "Google omits it after the first consent"
    );
    // With prompt=consent it comes back.
    let again = provider(&fake, json!({}))?;
    assert!(signed_in(&again, ALICE).await?.refresh_token.is_some());
    Ok(())
}

#[tokio::test]
async fn refresh_across_an_expiry_keeps_the_refresh_token() -> anyhow::Result<()> {
    let fake = Google::start(Options::default()).await?;
    let p = provider(&fake, json!({}))?;
    let tokens = signed_in(&p, ALICE).await?;
    // The access token's lifetime runs out.
    fake.expire_access_tokens().await;
    let err = p.user_info(&tokens.access_token).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unauthorized(_))),
        "{err:?}"
    );
    let rt = tokens
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))?;
    let refreshed = p.refresh(&rt).await?;
    assert!(refreshed.refresh_token.is_none(), "keep the old one");
    assert!(
        refreshed.id_token.is_some(),
        "the refreshed id token was verified"
    );
    assert_eq!(
        p.user_info(&refreshed.access_token).await?.subject,
        "110169484474386276334"
    );
    // The old refresh token still works.
    p.refresh(&rt).await?;
    Ok(())
}

#[tokio::test]
async fn a_revoked_refresh_token_is_invalid_grant() -> anyhow::Result<()> {
    let fake = Google::start(Options::default()).await?;
    let p = provider(&fake, json!({}))?;
    let rt = signed_in(&p, ALICE)
        .await?
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))?;
    fake.revoke_all().await;
    let err = p.refresh(&rt).await.err();
    match err {
        Some(ProviderError::InvalidGrant(why)) => {
            assert!(why.contains("expired or revoked"), "{why}")
        }
        other => panic!("expected InvalidGrant, got {other:?}"),
    }
    let err = p.refresh(&SecretString::new("1//made-up")).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn allowed_domains_refuse_other_accounts_at_sign_in() -> anyhow::Result<()> {
    let fake = Google::start(Options::default()).await?;
    let p = provider(&fake, json!({ "allowed_domains": ["example.com"] }))?;
    let url = p.authorization_url(&request(ALICE, "n")).await?;
    assert_eq!(
        query_param(&url, "hd").as_deref(),
        Some("example.com"),
        "sent as a hint"
    );
    let alice = signed_in(&p, ALICE).await?;
    assert_eq!(
        p.user_info(&alice.access_token).await?.tenant["hd"],
        "example.com"
    );
    // A consumer account (no hd) is refused.
    let c = code(&p, BOB, "n2").await?;
    let err = p
        .exchange_code(&c, VERIFIER, REDIRECT_URI, "n2")
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::Unauthorized(_))),
        "{err:?}"
    );
    // Without the restriction bob signs in, unverified and without hd.
    let open = provider(&fake, json!({}))?;
    let bob = signed_in(&open, BOB).await?;
    let user = open.user_info(&bob.access_token).await?;
    assert!(!user.email_verified);
    assert!(!user.tenant.contains_key("hd"));
    // And the restricted provider refuses him when reading the user too.
    let err = p.user_info(&bob.access_token).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unauthorized(_))),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn nonce_and_pkce_are_checked() -> anyhow::Result<()> {
    let fake = Google::start(Options::default()).await?;
    let p = provider(&fake, json!({}))?;
    let c = code(&p, ALICE, "the-nonce-sent").await?;
    let err = p
        .exchange_code(&c, VERIFIER, REDIRECT_URI, "another-nonce")
        .await
        .err();
    match err {
        Some(ProviderError::Misconfigured(why)) => assert!(why.contains("nonce"), "{why}"),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    let c = code(&p, ALICE, "n").await?;
    let err = p
        .exchange_code(
            &c,
            "another-verifier-that-is-long-enough-0123456789-xyz",
            REDIRECT_URI,
            "n",
        )
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn revoke_ends_the_refresh_token() -> anyhow::Result<()> {
    let fake = Google::start(Options::default()).await?;
    let p = provider(&fake, json!({ "token_auth": "client_secret_post" }))?;
    let rt = signed_in(&p, ALICE)
        .await?
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))?;
    p.revoke(&rt).await?;
    assert_eq!(fake.counts.get("revoke").await, 1);
    let err = p.refresh(&rt).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    Ok(())
}
