//! The Salesforce provider: OAuth 2 web-server flow with PKCE on a configurable login host,
//! no `expires_in` (a configured lifetime from `issued_at`), the user from userinfo.

use async_trait::async_trait;
use mcpgate_core::{
    AuthorizationRequest, Capabilities, FieldError, IdentityProvider, ProviderError,
    ProviderSettings, SecretString, TokenSet, UserContext,
};
use mcpgate_provider_kit::{
    ClientAuth, HttpClient, KitTokenResponse, OAuthClient, OAuthConfig, check_common,
    client_secret, get_json, now_unix, parse_options, parse_url, revoke_token, shared_client,
    truthy,
};
use serde_json::{Value, json};
use url::Url;

use crate::{DEFAULT_SCOPES, DEFAULT_TOKEN_TTL, DESCRIPTOR, Options, capabilities, validate};

/// A configured Salesforce org (or sandbox, My Domain, Experience Cloud site).
#[derive(Debug)]
pub struct SalesforceProvider {
    id: String,
    display_name: String,
    oauth: OAuthClient,
    userinfo: Url,
    revocation: Url,
    token_ttl: i64,
}

impl SalesforceProvider {
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
        let login = options
            .login_url
            .as_deref()
            .unwrap_or("https://login.salesforce.com");
        let mut base = parse_url("options.login_url", login).map_err(|e| vec![e])?;
        if !base.path().ends_with('/') {
            let with_slash = format!("{}/", base.path());
            base.set_path(&with_slash);
        }
        let endpoint = |name: &str| {
            base.join(&format!("services/oauth2/{name}"))
                .map_err(|e| vec![FieldError::new("options.login_url", e.to_string())])
        };
        let scopes = if settings.scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            settings.scopes.clone()
        };
        let config = OAuthConfig {
            client_id: settings.client_id.clone(),
            auth: if secret.is_some() {
                ClientAuth::Post
            } else {
                ClientAuth::None
            },
            client_secret: secret,
            authorization_url: endpoint("authorize")?,
            token_url: endpoint("token")?,
            scopes,
            pkce: true,
            extra_authorize_params: Vec::new(),
        };
        let ttl = options.token_ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL);
        Ok(Self {
            id: settings.id.clone(),
            display_name: settings
                .display_name
                .clone()
                .unwrap_or_else(|| DESCRIPTOR.display_name.to_owned()),
            userinfo: endpoint("userinfo")?,
            revocation: endpoint("revoke")?,
            oauth: OAuthClient::new(config, HttpClient::new(http)),
            token_ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
        })
    }

    /// Salesforce sends no `expires_in`: the expiry is `issued_at` (epoch milliseconds, as a
    /// string) plus the configured lifetime, or now plus it when `issued_at` is missing.
    fn token_set(&self, response: KitTokenResponse) -> TokenSet {
        let now = now_unix();
        let issued = response
            .extra
            .get("issued_at")
            .and_then(|v| match v {
                Value::String(s) => s.trim().parse::<i64>().ok(),
                Value::Number(n) => n.as_i64(),
                _ => None,
            })
            .map(|ms| ms / 1000)
            .filter(|s| *s > 0)
            .unwrap_or(now);
        let told = response.expires_in.is_some();
        let mut tokens = response.into_token_set(now, &self.oauth.config().scopes);
        if !told {
            tokens.expires_at = Some(issued.saturating_add(self.token_ttl));
        }
        tokens
    }
}

#[async_trait]
impl IdentityProvider for SalesforceProvider {
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
        let hint: Vec<(&str, &str)> = request
            .login_hint
            .as_deref()
            .map(|h| ("login_hint", h))
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
        Ok(self.token_set(response))
    }

    /// The refresh answer has no refresh token unless the app rotates them; when it has one,
    /// it is returned (and must be stored). 400 `invalid_grant` is `InvalidGrant`.
    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        let response = self.oauth.refresh(refresh_token).await?;
        Ok(self.token_set(response))
    }

    async fn revoke(&self, refresh_token: &SecretString) -> Result<(), ProviderError> {
        let config = self.oauth.config();
        revoke_token(
            self.oauth.http(),
            &self.revocation,
            &config.client_id,
            config.client_secret.as_ref(),
            config.auth,
            refresh_token.expose(),
            "refresh_token",
        )
        .await
    }

    /// `{login_url}/services/oauth2/userinfo`. A 401 (`INVALID_SESSION_ID`: the session
    /// timed out before the assumed lifetime) is `Unauthorized`, so the server refreshes and
    /// retries. The subject is `user_id`; `organization_id` is `tenant.org_id`; the identity
    /// URL (`id`, the OIDC `sub`) and the instance URL (from `urls.custom_domain` or the REST
    /// URL's origin) are in the claims.
    async fn user_info(&self, access_token: &SecretString) -> Result<UserContext, ProviderError> {
        let info = get_json(
            self.oauth.http(),
            "Salesforce userinfo",
            self.userinfo.clone(),
            access_token,
            &[],
            &[],
        )
        .await?
        .map_err(|status| {
            ProviderError::Misconfigured(format!("Salesforce userinfo: HTTP {status}"))
        })?;
        let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
        let user_id = text("user_id").filter(|s| !s.is_empty()).ok_or_else(|| {
            ProviderError::Misconfigured("Salesforce userinfo: no user_id".into())
        })?;
        let org_id = text("organization_id");
        let instance_url = info
            .pointer("/urls/custom_domain")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                info.pointer("/urls/rest")
                    .and_then(Value::as_str)
                    .and_then(|u| Url::parse(u).ok())
                    .map(|u| u.origin().ascii_serialization())
            });
        let mut claims = info.clone();
        if let Some(object) = claims.as_object_mut() {
            object.insert("id".into(), json!(text("sub")));
            object.insert("instance_url".into(), json!(instance_url));
        }
        let mut tenant = std::collections::BTreeMap::new();
        if let Some(org) = &org_id {
            tenant.insert("org_id".to_owned(), org.clone());
        }
        if let Some(instance) = &instance_url {
            tenant.insert("instance_url".to_owned(), instance.clone());
        }
        Ok(UserContext {
            subject: user_id,
            email: text("email"),
            email_verified: truthy(info.get("email_verified")),
            name: text("name").or_else(|| text("preferred_username")),
            groups: Vec::new(),
            roles: Vec::new(),
            tenant,
            claims,
        })
    }
}
