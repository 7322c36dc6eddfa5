//! The Atlassian (3LO) provider: plain OAuth 2 with JSON token requests and rotating refresh
//! tokens, the user from `/me` and the sites from `accessible-resources`.

use async_trait::async_trait;
use mcpgate_core::{
    AuthorizationRequest, Capabilities, FieldError, IdentityProvider, ProviderError,
    ProviderSettings, SecretString, TokenSet, UserContext,
};
use mcpgate_provider_kit::{
    ClientAuth, HttpClient, OAuthClient, OAuthConfig, check_common, client_secret, get_json,
    now_unix, parse_options, parse_url, shared_client, truthy,
};
use serde_json::{Value, json};
use url::Url;

use crate::{DEFAULT_SCOPES, DESCRIPTOR, Options, capabilities, validate};

/// A configured Atlassian Cloud sign-in.
#[derive(Debug)]
pub struct AtlassianProvider {
    id: String,
    display_name: String,
    oauth: OAuthClient,
    me: Url,
    resources: Url,
}

fn base(path: &str, value: &str) -> Result<Url, Vec<FieldError>> {
    let mut url = parse_url(path, value).map_err(|e| vec![e])?;
    if !url.path().ends_with('/') {
        let with_slash = format!("{}/", url.path());
        url.set_path(&with_slash);
    }
    Ok(url)
}

fn join(base: &Url, path: &str, option: &str) -> Result<Url, Vec<FieldError>> {
    base.join(path)
        .map_err(|e| vec![FieldError::new(option, e.to_string())])
}

impl AtlassianProvider {
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
        let auth = base(
            "options.auth_url",
            options
                .auth_url
                .as_deref()
                .unwrap_or("https://auth.atlassian.com"),
        )?;
        let api = base(
            "options.api_url",
            options
                .api_url
                .as_deref()
                .unwrap_or("https://api.atlassian.com"),
        )?;
        let mut scopes: Vec<String> = if settings.scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            settings.scopes.clone()
        };
        if !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".into());
        }
        let mut extra = vec![("audience".to_owned(), "api.atlassian.com".to_owned())];
        if options.prompt_consent {
            extra.push(("prompt".into(), "consent".into()));
        }
        let config = OAuthConfig {
            client_id: settings.client_id.clone(),
            // The documented requests carry the client credentials in the JSON body.
            auth: if secret.is_some() {
                ClientAuth::Post
            } else {
                ClientAuth::None
            },
            client_secret: secret,
            authorization_url: join(&auth, "authorize", "options.auth_url")?,
            token_url: join(&auth, "oauth/token", "options.auth_url")?,
            scopes,
            pkce: options.pkce,
            extra_authorize_params: extra,
        };
        Ok(Self {
            id: settings.id.clone(),
            display_name: settings
                .display_name
                .clone()
                .unwrap_or_else(|| DESCRIPTOR.display_name.to_owned()),
            // Exchange and refresh both go through this client: JSON bodies for both.
            oauth: OAuthClient::new(config, HttpClient::new(http).json_bodies()),
            me: join(&api, "me", "options.api_url")?,
            resources: join(&api, "oauth/token/accessible-resources", "options.api_url")?,
        })
    }

    pub fn token_url(&self) -> &Url {
        &self.oauth.config().token_url
    }

    async fn get(
        &self,
        what: &str,
        url: &Url,
        token: &SecretString,
    ) -> Result<Value, ProviderError> {
        get_json(self.oauth.http(), what, url.clone(), token, &[], &[])
            .await?
            .map_err(|status| ProviderError::Misconfigured(format!("{what}: HTTP {status}")))
    }
}

#[async_trait]
impl IdentityProvider for AtlassianProvider {
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
        capabilities(self.oauth.config().pkce)
    }

    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        self.oauth.authorization_url(request, &[])
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

    /// Rotating: the new refresh token must be stored at once; reuse of the old one answers
    /// 403 `invalid_grant`, which is `InvalidGrant`.
    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        let response = self.oauth.refresh(refresh_token).await?;
        Ok(response.into_token_set(now_unix(), &self.oauth.config().scopes))
    }

    /// `/me` (`account_id` is the subject) and `accessible-resources`: every site's cloud id
    /// and URL in the claims (`sites`, `cloud_ids`, `site_urls`), the first site's in
    /// `tenant.cloud_id` and `tenant.site`.
    async fn user_info(&self, access_token: &SecretString) -> Result<UserContext, ProviderError> {
        let me = self.get("Atlassian /me", &self.me, access_token).await?;
        let subject = me
            .get("account_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ProviderError::Misconfigured("Atlassian /me: no account_id".into()))?
            .to_owned();
        let sites = self
            .get(
                "Atlassian accessible-resources",
                &self.resources,
                access_token,
            )
            .await?;
        let sites: Vec<Value> = sites
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| json!({"id": s.get("id"), "name": s.get("name"), "url": s.get("url")}))
            .collect();
        let field = |s: &Value, k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
        let cloud_ids: Vec<String> = sites.iter().filter_map(|s| field(s, "id")).collect();
        let site_urls: Vec<String> = sites.iter().filter_map(|s| field(s, "url")).collect();
        let mut tenant = std::collections::BTreeMap::new();
        if let Some(first) = cloud_ids.first() {
            tenant.insert("cloud_id".to_owned(), first.clone());
        }
        if let Some(first) = site_urls.first() {
            tenant.insert("site".to_owned(), first.clone());
        }
        let text = |k: &str| me.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut claims = me.clone();
        if let Some(object) = claims.as_object_mut() {
            object.insert("sub".into(), json!(subject));
            object.insert("sites".into(), json!(sites));
            object.insert("cloud_ids".into(), json!(cloud_ids));
            object.insert("site_urls".into(), json!(site_urls));
        }
        Ok(UserContext {
            subject,
            email: text("email"),
            email_verified: truthy(me.get("email_verified")),
            name: text("name").or_else(|| text("nickname")),
            groups: Vec::new(),
            roles: Vec::new(),
            tenant,
            claims,
        })
    }
}
