//! The GitHub provider: OAuth Apps and GitHub Apps, github.com or GitHub Enterprise Server.

use async_trait::async_trait;
use mcpgate_core::{
    AuthorizationRequest, Capabilities, FieldError, IdentityProvider, ProviderError,
    ProviderSettings, SecretString, TokenSet, UserContext,
};
use mcpgate_provider_kit::{
    ClientAuth, HttpClient, OAuthClient, OAuthConfig, check_common, client_secret, get_json,
    now_unix, parse_options, parse_url, shared_client,
};
use serde_json::{Value, json};
use url::Url;

use crate::{DEFAULT_SCOPES, DESCRIPTOR, Options, capabilities, validate};

/// The REST API headers GitHub asks for (the `User-Agent` comes with the shared client).
const API_HEADERS: [(&str, &str); 2] = [
    ("accept", "application/vnd.github+json"),
    ("x-github-api-version", "2022-11-28"),
];

/// A configured GitHub (or GitHub Enterprise Server) sign-in.
#[derive(Debug)]
pub struct GitHubProvider {
    id: String,
    display_name: String,
    oauth: OAuthClient,
    /// `{api_url}/` (with a trailing slash, so joins keep the GHES `/api/v3` prefix).
    api: Url,
    groups: bool,
}

fn base(path: &str, value: &str) -> Result<Url, FieldError> {
    let mut url = parse_url(path, value)?;
    if !url.path().ends_with('/') {
        let with_slash = format!("{}/", url.path());
        url.set_path(&with_slash);
    }
    Ok(url)
}

impl GitHubProvider {
    /// Validates the settings (every problem reported) and builds the provider.
    pub fn from_settings(settings: &ProviderSettings) -> Result<Self, Vec<FieldError>> {
        let mut errors = check_common(settings);
        let options = match parse_options::<Options>(settings) {
            Ok(options) => {
                errors.extend(validate(&options));
                Some(options)
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let secret = client_secret(settings)
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let http = shared_client().map_err(|e| errors.push(FieldError::new("", e.to_string())));
        let (Some(options), Ok(http), true) = (options, http, errors.is_empty()) else {
            return Err(errors);
        };
        let web = options.web_url.as_deref().unwrap_or("https://github.com");
        let api = options
            .api_url
            .as_deref()
            .unwrap_or("https://api.github.com");
        let web = base("options.web_url", web).map_err(|e| vec![e])?;
        let api = base("options.api_url", api).map_err(|e| vec![e])?;
        let join = |path: &str| {
            web.join(path)
                .map_err(|e| vec![FieldError::new("options.web_url", e.to_string())])
        };
        let scopes = if settings.scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            settings.scopes.clone()
        };
        let config = OAuthConfig {
            client_id: settings.client_id.clone(),
            // GitHub documents the client credentials as body parameters.
            auth: if secret.is_some() {
                ClientAuth::Post
            } else {
                ClientAuth::None
            },
            client_secret: secret,
            authorization_url: join("login/oauth/authorize")?,
            token_url: join("login/oauth/access_token")?,
            scopes,
            pkce: true,
            extra_authorize_params: Vec::new(),
        };
        Ok(Self {
            id: settings.id.clone(),
            display_name: settings
                .display_name
                .clone()
                .unwrap_or_else(|| DESCRIPTOR.display_name.to_owned()),
            oauth: OAuthClient::new(config, HttpClient::new(http)),
            api,
            groups: options.groups,
        })
    }

    pub fn token_url(&self) -> &Url {
        &self.oauth.config().token_url
    }

    /// The `/user` endpoint of the configured API.
    pub fn api_url(&self) -> Url {
        self.endpoint("user")
    }

    fn endpoint(&self, path: &str) -> Url {
        // `api` is a base URL ending in '/', and `path` is a fixed relative path.
        self.api.join(path).unwrap_or_else(|_| self.api.clone())
    }

    async fn get(
        &self,
        what: &str,
        path: &str,
        token: &SecretString,
        soft: &[u16],
    ) -> Result<Result<Value, u16>, ProviderError> {
        get_json(
            self.oauth.http(),
            what,
            self.endpoint(path),
            token,
            &API_HEADERS,
            soft,
        )
        .await
    }
}

/// Groups from `/user/orgs` and `/user/teams`: `org` and `org:team` (oauth2-proxy's names).
pub fn groups(orgs: &Value, teams: &Value) -> Vec<String> {
    let mut groups: Vec<String> = orgs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("login").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    for team in teams.as_array().into_iter().flatten() {
        let org = team.pointer("/organization/login").and_then(Value::as_str);
        let slug = team.get("slug").and_then(Value::as_str);
        if let (Some(org), Some(slug)) = (org, slug) {
            groups.push(format!("{org}:{slug}"));
        }
    }
    groups
}

/// The primary address and whether it is verified; the public `/user` email (unverified)
/// when the list is unavailable or has no primary entry.
fn primary_email(list: Option<&Value>, public: Option<&str>) -> (Option<String>, bool) {
    let primary = list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true));
    match primary {
        Some(entry) => (
            entry
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_owned),
            entry.get("verified").and_then(Value::as_bool) == Some(true),
        ),
        None => (public.map(str::to_owned), false),
    }
}

#[async_trait]
impl IdentityProvider for GitHubProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        DESCRIPTOR.kind
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        // GitHub's account hint is `login`.
        let hint: Vec<(&str, &str)> = request
            .login_hint
            .as_deref()
            .map(|h| ("login", h))
            .into_iter()
            .collect();
        self.oauth.authorization_url(request, &hint)
    }

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        _nonce: &str,
    ) -> Result<TokenSet, ProviderError> {
        let response = self
            .oauth
            .exchange_code(code, pkce_verifier, redirect_uri)
            .await?;
        Ok(response.into_token_set(now_unix(), &self.oauth.config().scopes))
    }

    /// GitHub Apps with expiring user tokens: the refresh token rotates (the new one must be
    /// stored at once); reuse answers HTTP 200 `bad_refresh_token`, which is `InvalidGrant`.
    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        let response = self.oauth.refresh(refresh_token).await?;
        Ok(response.into_token_set(now_unix(), &self.oauth.config().scopes))
    }

    async fn user_info(&self, access_token: &SecretString) -> Result<UserContext, ProviderError> {
        let user = match self.get("GitHub /user", "user", access_token, &[]).await? {
            Ok(user) => user,
            Err(status) => {
                return Err(ProviderError::Misconfigured(format!(
                    "GitHub /user: HTTP {status}"
                )));
            }
        };
        let id = match user.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(ProviderError::Misconfigured(
                    "GitHub /user: no numeric id".into(),
                ));
            }
        };
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        // Without `user:email` (or the Email permission) the list is 403/404: fall back.
        let emails = self
            .get(
                "GitHub /user/emails",
                "user/emails",
                access_token,
                &[403, 404],
            )
            .await?
            .ok();
        let (email, email_verified) =
            primary_email(emails.as_ref(), user.get("email").and_then(Value::as_str));
        let (orgs, teams) = if self.groups {
            // Without `read:org`, or hidden by an organization's OAuth-App restrictions: 403.
            let orgs = self
                .get(
                    "GitHub /user/orgs",
                    "user/orgs?per_page=100",
                    access_token,
                    &[403, 404],
                )
                .await?
                .unwrap_or_else(|_| json!([]));
            let teams = self
                .get(
                    "GitHub /user/teams",
                    "user/teams?per_page=100",
                    access_token,
                    &[403, 404],
                )
                .await?
                .unwrap_or_else(|_| json!([]));
            (orgs, teams)
        } else {
            (json!([]), json!([]))
        };
        let groups = groups(&orgs, &teams);
        let org_logins: Vec<&str> = groups
            .iter()
            .filter(|g| !g.contains(':'))
            .map(String::as_str)
            .collect();
        let team_names: Vec<&str> = groups
            .iter()
            .filter(|g| g.contains(':'))
            .map(String::as_str)
            .collect();
        let claims = json!({
            "sub": id,
            "id": user.get("id"),
            "login": text(&user, "login"),
            "name": text(&user, "name"),
            "email": email,
            "email_verified": email_verified,
            "orgs": org_logins,
            "teams": team_names,
        });
        Ok(UserContext {
            subject: id,
            email,
            email_verified,
            name: text(&user, "name").or_else(|| text(&user, "login")),
            groups,
            roles: Vec::new(),
            tenant: Default::default(),
            claims,
        })
    }
}
