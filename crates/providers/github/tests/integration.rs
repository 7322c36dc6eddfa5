//! The GitHub plugin against a strict fake GitHub (`fixtures/oauth-fakes`, `github` module):
//! the sign-in, both token shapes, rotation and reuse, the 200-with-error answers, the
//! REST API's header rules, emails, and orgs/teams as groups.

use mcpgate_core::{
    AuthorizationRequest, IdentityProvider, ProviderError, ProviderSettings, SecretString, TokenSet,
};
use mcpgate_fixture_oauth_fakes::github::{AppKind, GitHub, Options};
use mcpgate_fixture_oauth_fakes::{
    CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, authorize, query_param, s256,
};
use mcpgate_provider_github::GitHubProvider;
use serde_json::json;

const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";

fn settings(fake: &GitHub, secret: &str) -> ProviderSettings {
    ProviderSettings {
        id: "gh".into(),
        kind: "github".into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SecretString::new(secret)),
        options: json!({ "web_url": fake.web_url(), "api_url": fake.api_url() })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn provider(fake: &GitHub) -> anyhow::Result<GitHubProvider> {
    GitHubProvider::from_settings(&settings(fake, CLIENT_SECRET))
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn request() -> AuthorizationRequest {
    AuthorizationRequest {
        redirect_uri: REDIRECT_URI.into(),
        state: "state-1".into(),
        nonce: "unused".into(),
        code_challenge: s256(VERIFIER),
        login_hint: Some("octocat".into()),
    }
}

async fn code(p: &GitHubProvider) -> anyhow::Result<String> {
    let url = p.authorization_url(&request()).await?;
    let back = authorize(&url).await?;
    assert_eq!(query_param(&back, "state").as_deref(), Some("state-1"));
    query_param(&back, "code").ok_or_else(|| anyhow::anyhow!("no code in {back}"))
}

async fn signed_in(p: &GitHubProvider) -> anyhow::Result<TokenSet> {
    let code = code(p).await?;
    Ok(p.exchange_code(&code, VERIFIER, REDIRECT_URI, "unused")
        .await?)
}

fn rt(tokens: &TokenSet) -> anyhow::Result<SecretString> {
    tokens
        .refresh_token
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no refresh token"))
}

#[tokio::test]
async fn github_app_sign_in_gives_expiring_tokens_and_the_user_with_orgs_and_teams()
-> anyhow::Result<()> {
    let fake = GitHub::start(Options::default()).await?;
    let p = provider(&fake)?;
    let url = p.authorization_url(&request()).await?;
    assert_eq!(url.path(), "/login/oauth/authorize");
    let q = |k| query_param(&url, k);
    assert_eq!(q("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(q("code_challenge"), Some(s256(VERIFIER)));
    assert_eq!(q("login").as_deref(), Some("octocat"));
    assert_eq!(q("scope").as_deref(), Some("read:user user:email read:org"));
    let before = mcpgate_provider_kit::now_unix();
    let tokens = signed_in(&p).await?;
    assert!(tokens.access_token.expose().starts_with("ghu_"));
    assert!(rt(&tokens)?.expose().starts_with("ghr_"));
    let expires = tokens.expires_at.unwrap_or_default() - before;
    assert!((28799..=28801).contains(&expires), "expires in {expires}");
    assert!(
        tokens.refresh_expires_at.is_some(),
        "refresh_token_expires_in kept"
    );
    let user = p.user_info(&tokens.access_token).await?;
    assert_eq!(user.subject, "583231", "the numeric id, not the login");
    assert_eq!(user.email.as_deref(), Some("octocat@example.com"));
    assert!(user.email_verified);
    assert_eq!(user.name.as_deref(), Some("The Octocat"));
    assert_eq!(user.groups, ["acme", "octo-org", "acme:platform"]);
    assert_eq!(user.claims["login"], "octocat");
    assert_eq!(user.claims["orgs"], json!(["acme", "octo-org"]));
    assert_eq!(fake.counts.get("token").await, 1);
    Ok(())
}

#[tokio::test]
async fn oauth_app_tokens_do_not_expire_and_have_no_refresh_token() -> anyhow::Result<()> {
    let fake = GitHub::start(Options {
        kind: AppKind::OAuthApp,
        ..Default::default()
    })
    .await?;
    let p = provider(&fake)?;
    let tokens = signed_in(&p).await?;
    assert!(tokens.access_token.expose().starts_with("gho_"));
    assert_eq!(
        tokens.expires_at, None,
        "no expires_in means no expiry, not an hour"
    );
    assert!(tokens.refresh_token.is_none());
    assert_eq!(
        tokens.scopes,
        ["read:user", "user:email", "read:org"],
        "comma-separated scope"
    );
    assert_eq!(p.user_info(&tokens.access_token).await?.subject, "583231");
    Ok(())
}

#[tokio::test]
async fn numbers_sent_as_strings_are_read() -> anyhow::Result<()> {
    let fake = GitHub::start(Options {
        string_numbers: true,
        ..Default::default()
    })
    .await?;
    let p = provider(&fake)?;
    let before = mcpgate_provider_kit::now_unix();
    let tokens = signed_in(&p).await?;
    let expires = tokens.expires_at.unwrap_or_default() - before;
    assert!((28799..=28801).contains(&expires), "expires in {expires}");
    Ok(())
}

#[tokio::test]
async fn refresh_across_an_expiry_rotates_and_reuse_is_invalid_grant() -> anyhow::Result<()> {
    let fake = GitHub::start(Options::default()).await?;
    let p = provider(&fake)?;
    let tokens = signed_in(&p).await?;
    // The access token's lifetime (expires_in) runs out.
    fake.expire_access_tokens().await;
    let err = p.user_info(&tokens.access_token).await.err();
    assert!(
        matches!(err, Some(ProviderError::Unauthorized(_))),
        "{err:?}"
    );
    let old = rt(&tokens)?;
    let refreshed = p.refresh(&old).await?;
    let new = rt(&refreshed)?;
    assert_ne!(new.expose(), old.expose(), "the refresh token rotates");
    assert_eq!(
        p.user_info(&refreshed.access_token).await?.subject,
        "583231"
    );
    // Reuse: GitHub answers HTTP 200 {"error":"bad_refresh_token"}.
    let err = p.refresh(&old).await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    // The rotated one still works.
    p.refresh(&new).await?;
    Ok(())
}

#[tokio::test]
async fn errors_in_http_200_are_classified() -> anyhow::Result<()> {
    let fake = GitHub::start(Options::default()).await?;
    let p = provider(&fake)?;
    // A wrong PKCE verifier: bad_verification_code.
    let c = code(&p).await?;
    let err = p
        .exchange_code(
            &c,
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
    // A used code: bad_verification_code.
    let c = code(&p).await?;
    p.exchange_code(&c, VERIFIER, REDIRECT_URI, "").await?;
    let err = p.exchange_code(&c, VERIFIER, REDIRECT_URI, "").await.err();
    assert!(
        matches!(err, Some(ProviderError::InvalidGrant(_))),
        "{err:?}"
    );
    // A wrong secret: incorrect_client_credentials is a configuration problem.
    let wrong = GitHubProvider::from_settings(&settings(&fake, "wrong"))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let c = code(&wrong).await?;
    let err = wrong
        .exchange_code(&c, VERIFIER, REDIRECT_URI, "")
        .await
        .err();
    match err {
        Some(ProviderError::Misconfigured(why)) => {
            assert!(why.contains("incorrect_client_credentials"), "{why}")
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    // A redirect URI that differs from the authorization request's.
    let c = code(&p).await?;
    let err = p
        .exchange_code(&c, VERIFIER, "http://127.0.0.1:9/elsewhere", "")
        .await
        .err();
    assert!(
        matches!(err, Some(ProviderError::Misconfigured(_))),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn orgs_forbidden_degrades_to_no_groups() -> anyhow::Result<()> {
    let fake = GitHub::start(Options {
        orgs_forbidden: true,
        ..Default::default()
    })
    .await?;
    let p = provider(&fake)?;
    let tokens = signed_in(&p).await?;
    let user = p.user_info(&tokens.access_token).await?;
    assert!(user.groups.is_empty(), "{:?}", user.groups);
    assert_eq!(
        fake.counts.get("orgs").await,
        1,
        "the orgs call was made and refused"
    );
    Ok(())
}

#[tokio::test]
async fn an_unverified_primary_email_is_not_verified() -> anyhow::Result<()> {
    let fake = GitHub::start(Options {
        emails: json!([
            {"email": "octocat@example.com", "primary": true, "verified": false, "visibility": "public"},
            {"email": "octocat@users.example.com", "primary": false, "verified": true, "visibility": null}
        ]),
        ..Default::default()
    })
    .await?;
    let p = provider(&fake)?;
    let tokens = signed_in(&p).await?;
    let user = p.user_info(&tokens.access_token).await?;
    assert_eq!(user.email.as_deref(), Some("octocat@example.com"));
    assert!(
        !user.email_verified,
        "a verified secondary does not verify the primary"
    );
    Ok(())
}

/// The fake is strict: without `Accept: application/json` the token endpoint answers form
/// encoding, and the API refuses a request without `User-Agent`. (The plugin passes because
/// it sends both.)
#[tokio::test]
async fn the_fake_is_strict_about_accept_and_user_agent() -> anyhow::Result<()> {
    let fake = GitHub::start(Options::default()).await?;
    // A bare client: no User-Agent, no Accept.
    mcpgate_provider_kit::ensure_tls_provider();
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let answer = raw
        .post(format!("{}/login/oauth/access_token", fake.web_url()))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", "nope"),
        ])
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/x-www-form-urlencoded"),
        "{content_type}"
    );
    assert!(answer.text().await?.contains("error=bad_verification_code"));
    let answer = raw.get(format!("{}/user", fake.api_url())).send().await?;
    assert_eq!(answer.status(), 403, "no User-Agent");
    Ok(())
}
