//! The generic OIDC plugin against a real OpenID-certified server (`fixtures/oidc-provider`),
//! found through discovery.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::{
    AuthorizationRequest, IdentityProvider, ProviderError, ProviderSettings, SecretString,
};
use mcpgate_fixture_oidc_provider::{
    CLIENT_SECRET, REDIRECT_URI, Realm, RealmOptions, query_param,
};
use mcpgate_provider_oidc::OidcProvider;
use sha2::Digest as _;

const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";

fn settings(issuer: &str) -> ProviderSettings {
    ProviderSettings {
        id: "sso".into(),
        kind: "oidc".into(),
        client_id: "mcpgate-basic".into(),
        client_secret: Some(SecretString::new(CLIENT_SECRET)),
        scopes: vec![
            "email".into(),
            "profile".into(),
            "roles".into(),
            "groups".into(),
        ],
        options: serde_json::json!({ "issuer": issuer })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn request() -> AuthorizationRequest {
    AuthorizationRequest {
        redirect_uri: REDIRECT_URI.into(),
        state: "s".into(),
        nonce: "n".into(),
        code_challenge: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER.as_bytes())),
        login_hint: Some("bob".into()),
    }
}

#[tokio::test]
async fn discovery_sign_in_and_userinfo() -> anyhow::Result<()> {
    // Opaque access tokens: the generic provider reads the user from userinfo.
    let options = RealmOptions {
        jwt_access_tokens: false,
        ..Default::default()
    };
    let Some(realm) = Realm::start("discovery_sign_in_and_userinfo", options).await? else {
        return Ok(());
    };
    let p = OidcProvider::from_settings(&settings(&realm.issuer))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let url = p.authorization_url(&request()).await?;
    assert!(
        url.as_str()
            .starts_with(&format!("{}/protocol/openid-connect/auth?", realm.issuer))
    );
    assert_eq!(
        query_param(&url, "scope").as_deref(),
        Some("openid email profile roles groups")
    );
    let back = realm.sign_in(&url, REDIRECT_URI).await?;
    let code = query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code: {back}"))?;
    let tokens = p.exchange_code(&code, VERIFIER, REDIRECT_URI, "n").await?;
    let user = p.user_info(&tokens.access_token).await?;
    assert_eq!(user.subject, "6d2e9f40-1c3b-4e7a-8f5d-3a9b0c7e2d44");
    assert_eq!(user.email.as_deref(), Some("bob@example.com"));
    assert!(!user.email_verified);
    let refreshed = p.refresh(&tokens.refresh_token.unwrap_or_default()).await?;
    assert!(refreshed.refresh_token.is_some());
    let counts = realm.counts().await?;
    assert_eq!(
        counts.get("discovery"),
        Some(&1),
        "discovery is cached: {counts:?}"
    );
    assert_eq!(counts.get("token"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("userinfo"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("certs"), Some(&1), "{counts:?}");
    Ok(())
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer_exactly() -> anyhow::Result<()> {
    let Some(realm) = Realm::start(
        "discovery_must_name_the_configured_issuer_exactly",
        RealmOptions::default(),
    )
    .await?
    else {
        return Ok(());
    };
    // The same server, spelled with a trailing slash: discovery answers, but its issuer differs.
    let p = OidcProvider::from_settings(&settings(&format!("{}/", realm.issuer)))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let err = p.authorization_url(&request()).await.err();
    match err {
        Some(ProviderError::Misconfigured(why)) => assert!(why.contains("issuer"), "{why}"),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    Ok(())
}
