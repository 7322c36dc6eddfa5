//! The generic OIDC provider: endpoints from discovery, claims from userinfo.

use std::time::Duration;

use async_trait::async_trait;
use mcpgate_core::{
    AuthorizationRequest, Capabilities, FieldError, IdentityProvider, ProviderError,
    ProviderSettings, SecretString, TokenSet, UserContext,
};
use mcpgate_provider_kit::{
    MIN_REFETCH, OidcClient, OidcConfig, check_common, client_secret, parse_options, shared_client,
    user_context,
};
use url::Url;

use crate::{DESCRIPTOR, Options, capabilities, validate};

/// A configured OpenID Connect provider.
#[derive(Debug)]
pub struct OidcProvider {
    id: String,
    display_name: String,
    rp: OidcClient,
}

impl OidcProvider {
    /// Validates the settings (every problem reported) and builds the provider. Nothing is
    /// fetched yet: discovery happens on first use and is cached.
    pub fn from_settings(settings: &ProviderSettings) -> Result<Self, Vec<FieldError>> {
        Self::with_jwks_refetch_interval(settings, MIN_REFETCH)
    }

    /// As [`Self::from_settings`], with the minimum time between JWKS refetches on unknown key
    /// ids (tests shorten it).
    pub fn with_jwks_refetch_interval(
        settings: &ProviderSettings,
        jwks_min_refetch: Duration,
    ) -> Result<Self, Vec<FieldError>> {
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
        config.scopes = settings.scopes.clone();
        config.jwks_min_refetch = jwks_min_refetch;
        if let Some(audience) = &options.audience {
            config
                .extra_authorize_params
                .push(("audience".into(), audience.clone()));
        }
        config
            .extra_authorize_params
            .extend(options.authorize_params);
        Ok(Self {
            id: settings.id.clone(),
            display_name: settings
                .display_name
                .clone()
                .unwrap_or_else(|| DESCRIPTOR.display_name.to_owned()),
            rp: OidcClient::new(config, http),
        })
    }

    /// The relying party underneath (discovery, JWT checks).
    pub fn client(&self) -> &OidcClient {
        &self.rp
    }
}

#[async_trait]
impl IdentityProvider for OidcProvider {
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

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<TokenSet, ProviderError> {
        let (tokens, _id_claims) = self
            .rp
            .exchange_code(code, pkce_verifier, redirect_uri, nonce)
            .await?;
        Ok(tokens)
    }

    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        self.rp.refresh(refresh_token).await
    }

    async fn revoke(&self, refresh_token: &SecretString) -> Result<(), ProviderError> {
        self.rp
            .revoke_refresh_token(DESCRIPTOR.kind, refresh_token)
            .await
    }

    async fn user_info(&self, access_token: &SecretString) -> Result<UserContext, ProviderError> {
        user_context(self.rp.userinfo(access_token).await?)
    }
}
