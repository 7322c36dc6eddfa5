//! Sign-in through the gateway with each non-OIDC-server provider against its strict fake
//! (`fixtures/oauth-fakes`): the sign-in page offers them, and each button ends signed in —
//! the browser goes to the provider, comes back to `/callback/{id}`, the gateway trades the
//! code and reads the user, and the home page names the user.

use mcpgate_core::{ProviderSettings, SecretString};
use mcpgate_fixture_oauth_fakes::atlassian::Atlassian;
use mcpgate_fixture_oauth_fakes::github::GitHub;
use mcpgate_fixture_oauth_fakes::google::Google;
use mcpgate_fixture_oauth_fakes::salesforce::Salesforce;
use mcpgate_fixture_oauth_fakes::{CLIENT_ID, CLIENT_SECRET};
use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use crate::oauth::browser;

fn entry(id: &str, kind: &str, options: Value) -> ProviderSettings {
    ProviderSettings {
        id: id.into(),
        kind: kind.into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SecretString::new(CLIENT_SECRET)),
        options: options.as_object().cloned().unwrap(),
        ..Default::default()
    }
}

/// Plays the browser from `/login/{id}` through the provider and back; the final page.
async fn sign_in(gateway: &TestServer, id: &str, hint: &str) -> (StatusCode, String) {
    let b = browser();
    let mut next = Url::parse(&gateway.url(&format!("/login/{id}"))).unwrap();
    next.query_pairs_mut()
        .append_pair("return_to", "/")
        .append_pair("login_hint", hint);
    let mut hops = Vec::new();
    for _ in 0..10 {
        let r = b.get(next.clone()).send().await.unwrap();
        if !r.status().is_redirection() {
            let status = r.status();
            return (status, r.text().await.unwrap());
        }
        hops.push(next.path().to_owned());
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        next = next.join(&loc).unwrap();
    }
    panic!("too many redirects: {hops:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_provider_button_ends_signed_in() {
    let github = GitHub::start(Default::default()).await.unwrap();
    let google = Google::start(Default::default()).await.unwrap();
    let atlassian = Atlassian::start(Default::default()).await.unwrap();
    let salesforce = Salesforce::start(Default::default()).await.unwrap();
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    config.providers = vec![
        entry(
            "github",
            "github",
            json!({ "web_url": github.web_url(), "api_url": github.api_url() }),
        ),
        entry("google", "google", json!({ "issuer": google.issuer() })),
        entry(
            "atlassian",
            "atlassian",
            json!({ "auth_url": atlassian.base(), "api_url": atlassian.base() }),
        ),
        entry(
            "salesforce",
            "salesforce",
            json!({ "login_url": salesforce.login_url() }),
        ),
    ];
    let gateway = TestServer::start(config).await.unwrap();

    let login = reqwest::get(gateway.url("/login")).await.unwrap();
    let page = login.text().await.unwrap();
    for name in ["GitHub", "Google", "Atlassian", "Salesforce"] {
        assert!(page.contains(name), "the sign-in page offers {name}");
    }

    let (status, home) = sign_in(&gateway, "github", "octocat").await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert!(home.contains("octocat@example.com"), "{home}");
    assert_eq!(github.counts.get("token").await, 1);
    assert_eq!(github.counts.get("user").await, 1);

    let (status, home) = sign_in(&gateway, "google", "alice@example.com").await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert!(home.contains("alice@example.com"), "{home}");
    assert_eq!(google.counts.get("token").await, 1);

    // The same verified email: the Atlassian and Salesforce identities join alice's account.
    let (status, home) = sign_in(&gateway, "atlassian", "alice").await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert!(home.contains("alice@example.com"), "{home}");
    assert_eq!(atlassian.counts.get("me").await, 1);

    let (status, home) = sign_in(&gateway, "salesforce", "alice@acme.example.com").await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert!(home.contains("alice@example.com"), "{home}");
    assert_eq!(salesforce.counts.get("userinfo").await, 1);
}

/// Signs in through a provider and its fake (the plugin API, no gateway); the user context.
async fn user_of(p: &dyn mcpgate_core::IdentityProvider, hint: &str) -> mcpgate_core::UserContext {
    use mcpgate_fixture_oauth_fakes::{REDIRECT_URI, authorize, query_param, s256};
    let verifier = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";
    let request = mcpgate_core::AuthorizationRequest {
        redirect_uri: REDIRECT_URI.into(),
        state: "s".into(),
        nonce: "n".into(),
        code_challenge: s256(verifier),
        login_hint: Some(hint.into()),
    };
    let url = p.authorization_url(&request).await.unwrap();
    let back = authorize(&url).await.unwrap();
    let code = query_param(&back, "code").unwrap();
    let tokens = p
        .exchange_code(&code, verifier, REDIRECT_URI, "n")
        .await
        .unwrap();
    p.user_info(&tokens.access_token).await.unwrap()
}

/// The claims each provider reports are what `[[policy.mappings]]` rules match: GitHub
/// `groups` (`org:team`), Google `tenant.hd`, Atlassian `site_urls`, Salesforce
/// `tenant.org_id` — the rules of the provider READMEs.
#[tokio::test(flavor = "multi_thread")]
async fn mapping_rules_match_the_claims_each_provider_reports() {
    use mcpgate_fixture_oauth_fakes::salesforce::ORG_ID;
    use mcpgate_rbac::{Identity, MappingRule, Policy, RoleSpec, Subject};

    let github = GitHub::start(Default::default()).await.unwrap();
    let google = Google::start(Default::default()).await.unwrap();
    let atlassian = Atlassian::start(Default::default()).await.unwrap();
    let salesforce = Salesforce::start(Default::default()).await.unwrap();
    let gh = mcpgate_provider_github::GitHubProvider::from_settings(&entry(
        "github",
        "github",
        json!({ "web_url": github.web_url(), "api_url": github.api_url() }),
    ))
    .unwrap();
    let go = mcpgate_provider_google::GoogleProvider::from_settings(&entry(
        "google",
        "google",
        json!({ "issuer": google.issuer() }),
    ))
    .unwrap();
    let at = mcpgate_provider_atlassian::AtlassianProvider::from_settings(&entry(
        "atlassian",
        "atlassian",
        json!({ "auth_url": atlassian.base(), "api_url": atlassian.base() }),
    ))
    .unwrap();
    let sf = mcpgate_provider_salesforce::SalesforceProvider::from_settings(&entry(
        "salesforce",
        "salesforce",
        json!({ "login_url": salesforce.login_url() }),
    ))
    .unwrap();
    let users = [
        ("github", user_of(&gh, "octocat").await),
        ("google", user_of(&go, "alice@example.com").await),
        ("atlassian", user_of(&at, "alice").await),
        ("salesforce", user_of(&sf, "alice").await),
    ];

    let rule = |provider: &str, claim: &str, value: &str, role: &str| MappingRule {
        provider: Some(provider.into()),
        claim: claim.into(),
        value: value.into(),
        role: role.into(),
    };
    let mappings = [
        rule("github", "groups", "acme:platform", "platform"),
        rule("google", "tenant.hd", "example.com", "staff"),
        rule(
            "atlassian",
            "site_urls",
            "https://acme.atlassian.net",
            "jira",
        ),
        rule("salesforce", "tenant.org_id", ORG_ID, "sales"),
    ];
    let roles: Vec<RoleSpec> = ["platform", "staff", "jira", "sales"]
        .into_iter()
        .map(|name| RoleSpec {
            name: name.into(),
            description: String::new(),
            grants: Vec::new(),
        })
        .collect();
    let policy = Policy::compile(&roles, &mappings, None).unwrap();
    for ((provider, user), role) in users.iter().zip(["platform", "staff", "jira", "sales"]) {
        let held = policy.effective_roles(&Subject {
            identities: &[Identity { provider, user }],
            ..Default::default()
        });
        let names: Vec<&str> = held.names().collect();
        assert_eq!(names, [role], "{provider}: {user:?}");
    }
}

/// An id token whose `exp` passed less than the leeway ago (a provider clock behind ours) is
/// accepted; one past the leeway, or with the leeway set to 0, is refused.
#[tokio::test(flavor = "multi_thread")]
async fn id_tokens_get_a_clock_leeway_and_no_more() {
    use mcpgate_fixture_oauth_fakes::{REDIRECT_URI, authorize, google, query_param, s256};
    let verifier = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";
    let sign_in = |id_token_ttl: i64, leeway: Option<u64>| async move {
        let fake = Google::start(google::Options {
            id_token_ttl,
            ..Default::default()
        })
        .await
        .unwrap();
        let mut options = json!({ "issuer": fake.issuer() });
        if let Some(l) = leeway {
            options["id_token_leeway_secs"] = json!(l);
        }
        let p = mcpgate_provider_google::GoogleProvider::from_settings(&entry(
            "google", "google", options,
        ))
        .unwrap();
        let request = mcpgate_core::AuthorizationRequest {
            redirect_uri: REDIRECT_URI.into(),
            state: "s".into(),
            nonce: "n".into(),
            code_challenge: s256(verifier),
            login_hint: Some("alice@example.com".into()),
        };
        let url = mcpgate_core::IdentityProvider::authorization_url(&p, &request)
            .await
            .unwrap();
        let code = query_param(&authorize(&url).await.unwrap(), "code").unwrap();
        mcpgate_core::IdentityProvider::exchange_code(&p, &code, verifier, REDIRECT_URI, "n")
            .await
            .map(|_| ())
    };
    assert!(sign_in(3600, None).await.is_ok());
    assert!(sign_in(-30, None).await.is_ok(), "within the default 60 s");
    let late = sign_in(-120, None).await.unwrap_err();
    assert!(format!("{late:?}").contains("Expired"), "{late:?}");
    assert!(sign_in(-30, Some(0)).await.is_err(), "no leeway configured");
    assert!(sign_in(-100, Some(120)).await.is_ok(), "a wider leeway");
    let too_wide = mcpgate_provider_google::GoogleProvider::from_settings(&entry(
        "google",
        "google",
        json!({ "issuer": "https://accounts.google.com", "id_token_leeway_secs": 3600 }),
    ));
    assert_eq!(
        too_wide.err().map(|e| e[0].path.clone()).as_deref(),
        Some("options.id_token_leeway_secs")
    );
}
