//! A provider whose network operations are not built yet: it validates and describes itself,
//! and every call answers [`ProviderError::NotImplemented`], never a panic.

use async_trait::async_trait;
use mcpgate_core::{
    AuthorizationRequest, Capabilities, IdentityProvider, ProviderError, SecretString, TokenSet,
    UserContext,
};
use url::Url;

#[derive(Debug)]
pub struct PendingProvider {
    pub id: String,
    pub kind: &'static str,
    pub display_name: String,
    pub capabilities: Capabilities,
}

impl PendingProvider {
    fn not_yet(&self, operation: &'static str) -> ProviderError {
        ProviderError::NotImplemented {
            kind: self.kind,
            operation,
        }
    }
}

#[async_trait]
impl IdentityProvider for PendingProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    async fn authorization_url(
        &self,
        _request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        Err(self.not_yet("authorization_url"))
    }

    async fn exchange_code(
        &self,
        _code: &str,
        _pkce_verifier: &str,
        _redirect_uri: &str,
        _nonce: &str,
    ) -> Result<TokenSet, ProviderError> {
        Err(self.not_yet("exchange_code"))
    }

    async fn refresh(&self, _refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        Err(self.not_yet("refresh"))
    }

    async fn user_info(&self, _access_token: &SecretString) -> Result<UserContext, ProviderError> {
        Err(self.not_yet("user_info"))
    }
}

/// Validates a provider entry (common checks, then the kind's own `options` struct and its
/// `validate`) and builds a [`PendingProvider`]. Every problem is reported, not just the first.
pub fn build_pending<T: serde::de::DeserializeOwned>(
    settings: &mcpgate_core::ProviderSettings,
    kind: &'static str,
    default_display_name: &'static str,
    capabilities: Capabilities,
    validate: impl FnOnce(&T) -> Vec<mcpgate_core::FieldError>,
) -> Result<std::sync::Arc<dyn IdentityProvider>, Vec<mcpgate_core::FieldError>> {
    let mut errors = crate::check_common(settings);
    match crate::parse_options::<T>(settings) {
        Ok(options) => errors.extend(validate(&options)),
        Err(e) => errors.push(e),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(std::sync::Arc::new(PendingProvider {
        id: settings.id.clone(),
        kind,
        display_name: settings
            .display_name
            .clone()
            .unwrap_or_else(|| default_display_name.to_owned()),
        capabilities,
    }))
}
