//! The Google provider: OpenID Connect through the kit, with Google's offline access,
//! consent and hosted-domain rules.

use async_trait::async_trait;
use mcpgate_core::{
    AuthorizationRequest, Capabilities, FieldError, IdentityProvider, ProviderError,
    ProviderSettings, SecretString, TokenSet, UserContext,
};
use mcpgate_provider_kit::{
    OidcClient, OidcConfig, check_common, client_secret, parse_options, shared_client, user_context,
};
use serde_json::Value;
use url::Url;

use crate::{DEFAULT_SCOPES, DESCRIPTOR, Options, capabilities, validate};

/// A configured Google sign-in.
#[derive(Debug)]
pub struct GoogleProvider {
    id: String,
    display_name: String,
    allowed_domains: Vec<String>,
    rp: OidcClient,
}

impl GoogleProvider {
    /// Validates the settings (every problem reported) and builds the provider. Discovery
    /// happens on first use and is cached.
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
        let mut config = OidcConfig::new(options.issuer.clone(), settings.client_id.clone());
        config.auth = options.token_auth.client_auth(secret.is_some());
        config.id_token_leeway =
            mcpgate_provider_kit::id_token_leeway(options.id_token_leeway_secs)
                .map_err(|e| vec![e])?;
        config.client_secret = secret;
        config.scopes = if settings.scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            settings.scopes.clone()
        };
        // Without access_type=offline Google issues no refresh token at all.
        config
            .extra_authorize_params
            .push(("access_type".into(), "offline".into()));
        if options.prompt_consent {
            config
                .extra_authorize_params
                .push(("prompt".into(), "consent".into()));
        }
        let allowed_domains: Vec<String> = options
            .allowed_domains
            .iter()
            .map(|d| d.trim().to_ascii_lowercase())
            .collect();
        if let [only] = allowed_domains.as_slice() {
            // A hint for Google's account chooser; the check is ours.
            config
                .extra_authorize_params
                .push(("hd".into(), only.clone()));
        }
        Ok(Self {
            id: settings.id.clone(),
            display_name: settings
                .display_name
                .clone()
                .unwrap_or_else(|| DESCRIPTOR.display_name.to_owned()),
            allowed_domains,
            rp: OidcClient::new(config, http),
        })
    }

    /// Refuses an account outside `allowed_domains` (by its verified `hd` claim; a consumer
    /// account has none).
    fn check_domain(&self, claims: &Value) -> Result<(), ProviderError> {
        if self.allowed_domains.is_empty() {
            return Ok(());
        }
        let hd = claims
            .get("hd")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        match hd {
            Some(hd) if self.allowed_domains.contains(&hd) => Ok(()),
            other => Err(ProviderError::Unauthorized(format!(
                "the Google account's hosted domain {other:?} is not one of the allowed domains"
            ))),
        }
    }
}

#[async_trait]
impl IdentityProvider for GoogleProvider {
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
        self.rp.authorization_url(request).await
    }

    /// The id token is verified (signature, `iss`, `aud`, `exp`, `nonce`), and its `hd` is
    /// checked against `allowed_domains` before the sign-in goes on.
    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<TokenSet, ProviderError> {
        let (tokens, id_claims) = self
            .rp
            .exchange_code(code, pkce_verifier, redirect_uri, nonce)
            .await?;
        self.check_domain(&id_claims)?;
        Ok(tokens)
    }

    /// Google's refresh answer has no refresh token: `refresh_token: None`, and the server
    /// keeps the one it holds. 400 `invalid_grant` ("Token has been expired or revoked.") is
    /// `InvalidGrant`.
    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        self.rp.refresh(refresh_token).await
    }

    async fn revoke(&self, refresh_token: &SecretString) -> Result<(), ProviderError> {
        self.rp
            .revoke_refresh_token(DESCRIPTOR.kind, refresh_token)
            .await
    }

    /// The OIDC userinfo: `sub` is the subject; `email_verified` is kept; `hd` goes to
    /// `tenant.hd` (and is checked against `allowed_domains`).
    async fn user_info(&self, access_token: &SecretString) -> Result<UserContext, ProviderError> {
        let claims = self.rp.userinfo(access_token).await?;
        self.check_domain(&claims)?;
        let mut context = user_context(claims)?;
        if let Some(hd) = context.claims.get("hd").and_then(Value::as_str) {
            context.tenant.insert("hd".into(), hd.to_owned());
        }
        Ok(context)
    }
}
