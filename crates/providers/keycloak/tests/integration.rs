//! The Keycloak plugin against a real OpenID-certified server shaped as a Keycloak realm
//! (`fixtures/oidc-provider`), signing in headlessly and counting the realm's calls.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::{
    AuthorizationRequest, IdentityProvider, ProviderError, ProviderSettings, SecretString, TokenSet,
};
use mcpgate_fixture_oidc_provider::{
    CLIENT_SECRET, REDIRECT_URI, Realm, RealmOptions, keycloak_options, query_param,
};
use mcpgate_provider_keycloak::KeycloakProvider;
use sha2::Digest as _;

const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn settings(realm: &Realm, client_id: &str, token_auth: &str) -> ProviderSettings {
    let mut options = keycloak_options(realm);
    options["token_auth"] = token_auth.into();
    ProviderSettings {
        id: "kc".into(),
        kind: "keycloak".into(),
        client_id: client_id.into(),
        client_secret: Some(SecretString::new(CLIENT_SECRET)),
        scopes: vec!["email".into(), "profile".into(), "roles".into()],
        options: options.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

fn provider(realm: &Realm) -> anyhow::Result<KeycloakProvider> {
    KeycloakProvider::with_jwks_refetch_interval(
        &settings(realm, "mcpgate", "client_secret_post"),
        Duration::from_millis(300),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn request(hint: &str, nonce: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        redirect_uri: REDIRECT_URI.into(),
        state: "state-1".into(),
        nonce: nonce.into(),
        code_challenge: challenge(VERIFIER),
        login_hint: Some(hint.into()),
    }
}

/// Signs `hint` in and returns the authorization code.
async fn code(
    realm: &Realm,
    p: &KeycloakProvider,
    hint: &str,
    nonce: &str,
) -> anyhow::Result<String> {
    let url = p.authorization_url(&request(hint, nonce)).await?;
    let back = realm.sign_in(&url, REDIRECT_URI).await?;
    assert_eq!(query_param(&back, "state").as_deref(), Some("state-1"));
    query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code in {back}"))
}

async fn signed_in(realm: &Realm, p: &KeycloakProvider) -> anyhow::Result<TokenSet> {
    let code = code(realm, p, "alice", "nonce-1").await?;
    Ok(p.exchange_code(&code, VERIFIER, REDIRECT_URI, "nonce-1")
        .await?)
}

macro_rules! realm {
    ($name:expr, $options:expr) => {
        match Realm::start($name, $options).await? {
            Some(realm) => realm,
            None => return Ok(()),
        }
    };
}

#[tokio::test]
async fn authorization_url_has_the_keycloak_shape() -> anyhow::Result<()> {
    let realm = realm!(
        "authorization_url_has_the_keycloak_shape",
        RealmOptions::default()
    );
    let p = provider(&realm)?;
    let url = p.authorization_url(&request("alice", "n")).await?;
    assert_eq!(url.path(), "/realms/test/protocol/openid-connect/auth");
    let q = |k| query_param(&url, k);
    assert_eq!(q("response_type").as_deref(), Some("code"));
    assert_eq!(q("client_id").as_deref(), Some("mcpgate"));
    assert_eq!(q("scope").as_deref(), Some("openid email profile roles"));
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(q("code_challenge"), Some(challenge(VERIFIER)));
    assert_eq!(q("nonce").as_deref(), Some("n"));
    assert_eq!(q("state").as_deref(), Some("state-1"));
    assert_eq!(q("login_hint").as_deref(), Some("alice"));
    assert_eq!(q("redirect_uri").as_deref(), Some(REDIRECT_URI));
    // The realm really accepts it: the sign-in comes back with a code and the issuer.
    let back = realm.sign_in(&url, REDIRECT_URI).await?;
    assert!(query_param(&back, "code").is_some(), "{back}");
    assert_eq!(query_param(&back, "iss"), Some(realm.issuer.clone()));
    Ok(())
}

#[tokio::test]
async fn denied_sign_in_returns_access_denied() -> anyhow::Result<()> {
    let realm = realm!(
        "denied_sign_in_returns_access_denied",
        RealmOptions::default()
    );
    let p = provider(&realm)?;
    let url = p.authorization_url(&request("deny", "n")).await?;
    let back = realm.sign_in(&url, REDIRECT_URI).await?;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    Ok(())
}

#[tokio::test]
async fn code_exchange_with_pkce_and_basic_or_post_auth() -> anyhow::Result<()> {
    let realm = realm!(
        "code_exchange_with_pkce_and_basic_or_post_auth",
        RealmOptions::default()
    );
    for (client, auth) in [
        ("mcpgate", "client_secret_post"),
        ("mcpgate-basic", "client_secret_basic"),
    ] {
        let p = KeycloakProvider::from_settings(&settings(&realm, client, auth))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        realm.reset_counts().await?;
        let before = mcpgate_provider_kit::now_unix();
        let tokens = signed_in(&realm, &p).await?;
        assert!(
            tokens.refresh_token.is_some(),
            "{client}: a refresh token is always issued"
        );
        assert!(tokens.id_token.is_some());
        let expires = tokens.expires_at.unwrap_or_default() - before;
        assert!(
            (299..=301).contains(&expires),
            "{client}: expires in {expires}"
        );
        let refresh_expires = tokens.refresh_expires_at.unwrap_or_default() - before;
        assert!(
            (1799..=1801).contains(&refresh_expires),
            "refresh_expires_in kept"
        );
        assert_eq!(realm.count("token").await?, 1, "{client}: one token call");
    }
    Ok(())
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused() -> anyhow::Result<()> {
    let realm = realm!("wrong_pkce_verifier_is_refused", RealmOptions::default());
    let p = provider(&realm)?;
    let code = code(&realm, &p, "alice", "n1").await?;
    let err = p
        .exchange_code(
            &code,
            "another-verifier-that-is-long-enough-0123456789-xyz",
            REDIRECT_URI,
            "n1",
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
async fn wrong_nonce_is_rejected() -> anyhow::Result<()> {
    let realm = realm!("wrong_nonce_is_rejected", RealmOptions::default());
    let p = provider(&realm)?;
    let code = code(&realm, &p, "alice", "the-nonce-sent").await?;
    let err = p
        .exchange_code(&code, VERIFIER, REDIRECT_URI, "another-nonce")
        .await
        .err();
    match err {
        Some(ProviderError::Misconfigured(why)) => assert!(why.contains("nonce"), "{why}"),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn user_info_from_the_verified_jwt_access_token() -> anyhow::Result<()> {
    let realm = realm!(
        "user_info_from_the_verified_jwt_access_token",
        RealmOptions::default()
    );
    let p = provider(&realm)?;
    let tokens = signed_in(&realm, &p).await?;
    realm.reset_counts().await?;
    let user = p.user_info(&tokens.access_token).await?;
    assert_eq!(user.subject, "0f8c3b1e-7a4d-4c55-9a63-2b1f6e0d9a11");
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert!(user.email_verified);
    assert_eq!(user.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(
        user.roles,
        [
            "mcp-admin",
            "offline_access",
            "account:view-profile",
            "mcpgate:tools-writer"
        ]
    );
    assert_eq!(user.groups, ["/engineering", "/engineering/platform"]);
    assert_eq!(user.tenant.get("realm").map(String::as_str), Some("test"));
    // Read from the verified token: no userinfo call, and the JWKS was already cached by the
    // id-token check.
    let counts = realm.counts().await?;
    assert_eq!(counts.get("userinfo"), None, "{counts:?}");
    assert_eq!(counts.get("certs"), None, "{counts:?}");
    // A tampered token is refused, not trusted.
    let mut forged = tokens.access_token.expose().to_owned();
    forged.push('x');
    let err = p.user_info(&SecretString::new(forged)).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unauthorized(_))),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn user_info_from_userinfo_with_opaque_tokens() -> anyhow::Result<()> {
    let options = RealmOptions {
        jwt_access_tokens: false,
        ..Default::default()
    };
    let realm = realm!("user_info_from_userinfo_with_opaque_tokens", options);
    let p = provider(&realm)?;
    let tokens = signed_in(&realm, &p).await?;
    realm.reset_counts().await?;
    let user = p.user_info(&tokens.access_token).await?;
    assert_eq!(user.subject, "0f8c3b1e-7a4d-4c55-9a63-2b1f6e0d9a11");
    assert_eq!(
        user.roles,
        [
            "mcp-admin",
            "offline_access",
            "account:view-profile",
            "mcpgate:tools-writer"
        ]
    );
    assert_eq!(realm.count("userinfo").await?, 1);
    // A token the realm does not know: 401 → Unauthorized.
    let err = p.user_info(&SecretString::new("not-a-token")).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unauthorized(_))),
        "{err:?}"
    );
    assert_eq!(realm.count("userinfo").await?, 2);
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_is_then_invalid_grant() -> anyhow::Result<()> {
    let options = RealmOptions {
        string_numbers: true,
        ..Default::default()
    };
    let realm = realm!(
        "refresh_rotates_and_the_old_token_is_then_invalid_grant",
        options
    );
    let p = provider(&realm)?;
    let tokens = signed_in(&realm, &p).await?;
    assert!(
        tokens.expires_at.is_some(),
        "string-typed expires_in parsed"
    );
    let old = tokens
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))?;
    realm.reset_counts().await?;
    let refreshed = p.refresh(&old).await?;
    let new = refreshed
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("no rotated refresh token"))?;
    assert_ne!(new.expose(), old.expose());
    assert_ne!(
        refreshed.access_token.expose(),
        tokens.access_token.expose()
    );
    let err = p.refresh(&old).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    // Reuse revoked the whole grant (as Keycloak with "Revoke Refresh Token").
    let err = p.refresh(&new).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    assert_eq!(realm.count("token").await?, 3);
    Ok(())
}

#[tokio::test]
async fn refresh_without_rotation_keeps_working() -> anyhow::Result<()> {
    let options = RealmOptions {
        rotate: false,
        ..Default::default()
    };
    let realm = realm!("refresh_without_rotation_keeps_working", options);
    let p = provider(&realm)?;
    let tokens = signed_in(&realm, &p).await?;
    let rt = tokens
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))?;
    let first = p.refresh(&rt).await?;
    let second = p.refresh(&rt).await?;
    assert!(second.expires_at.is_some());
    if let Some(returned) = first.refresh_token {
        assert_eq!(returned.expose(), rt.expose());
    }
    Ok(())
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_once() -> anyhow::Result<()> {
    let realm = realm!(
        "unknown_kid_refetches_the_jwks_once",
        RealmOptions::default()
    );
    let p = provider(&realm)?;
    // The client first sees a JWKS without the signing key (as before a key rotation).
    realm.hide_signing_key().await?;
    let forged = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"made-up"}"#),
        URL_SAFE_NO_PAD.encode("{}"),
        URL_SAFE_NO_PAD.encode("sig"),
    );
    let err = p.verify_access_token(&forged).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unauthorized(_))),
        "{err:?}"
    );
    assert_eq!(
        realm.count("certs").await?,
        1,
        "first fetch, no refetch right after it"
    );
    // A flood of unknown kids does not hammer the provider.
    for _ in 0..5 {
        let _ = p.verify_access_token(&forged).await;
    }
    assert_eq!(realm.count("certs").await?, 1);
    // The key "rotates in"; after the minimum interval, one refetch finds it.
    realm.show_signing_key().await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let tokens = signed_in(&realm, &p).await?;
    assert!(tokens.id_token.is_some());
    assert_eq!(realm.count("certs").await?, 2, "exactly one refetch");
    p.user_info(&tokens.access_token).await?;
    assert_eq!(realm.count("certs").await?, 2, "the new key is cached");
    Ok(())
}

#[tokio::test]
async fn a_provider_that_is_down_is_transient_quickly() -> anyhow::Result<()> {
    // A closed port: bind, note the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let settings = ProviderSettings {
        id: "kc".into(),
        kind: "keycloak".into(),
        client_id: "mcpgate".into(),
        client_secret: Some(SecretString::new("s")),
        options:
            serde_json::json!({"server_url": format!("http://127.0.0.1:{port}"), "realm": "x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ..Default::default()
    };
    let p = KeycloakProvider::from_settings(&settings).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let started = Instant::now();
    let err = p.refresh(&SecretString::new("rt")).await.err();
    assert!(matches!(err, Some(ProviderError::Transient(_))), "{err:?}");
    let err = p.user_info(&SecretString::new("opaque")).await.err();
    assert!(matches!(err, Some(ProviderError::Transient(_))), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn revoke_ends_the_grant_at_the_realm() -> anyhow::Result<()> {
    let realm = realm!(
        "revoke_ends_the_grant_at_the_realm",
        RealmOptions::default()
    );
    let p = provider(&realm)?;
    let tokens = signed_in(&realm, &p).await?;
    let rt = tokens
        .refresh_token
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))?;
    realm.reset_counts().await?;
    p.revoke(&rt).await?;
    assert_eq!(realm.count("revoke").await?, 1);
    let err = p.refresh(&rt).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    Ok(())
}
