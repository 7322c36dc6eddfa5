//! Kind `login_token`: the user's own access token at the identity provider they signed in
//! with, obtained through the server's identity service (which refreshes it when due).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use http::HeaderName;

use crate::config::TokenHeader;
use crate::token_cache::header_value;
use crate::{
    Caller, CredentialError, CredentialSnapshot, CredentialSource, OutgoingRequest, ProviderTokens,
};

pub(crate) struct LoginToken {
    pub(crate) upstream: String,
    pub(crate) provider: String,
    pub(crate) header_name: HeaderName,
    pub(crate) header: TokenHeader,
    pub(crate) tokens: Arc<dyn ProviderTokens>,
    pub(crate) timeout: std::time::Duration,
}

impl fmt::Debug for LoginToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginToken")
            .field("upstream", &self.upstream)
            .field("provider", &self.provider)
            .field("header", &self.header_name)
            .finish_non_exhaustive()
    }
}

/// The user's token at `provider`, or `NotConnected` naming the provider to sign in with.
pub(crate) async fn user_token(
    tokens: &dyn ProviderTokens,
    user_id: &str,
    provider: &str,
    upstream: &str,
    timeout: std::time::Duration,
) -> Result<mcpgate_core::SecretString, CredentialError> {
    match tokio::time::timeout(timeout, tokens.provider_token(user_id, provider)).await {
        Err(_) => Err(CredentialError::timeout(upstream, timeout)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(None)) => Err(CredentialError::NotConnected {
            provider: provider.to_owned(),
        }),
        Ok(Ok(Some(token))) => Ok(token),
    }
}

#[async_trait]
impl CredentialSource for LoginToken {
    async fn resolve(
        &self,
        caller: &Caller<'_>,
        _request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let token = user_token(
            self.tokens.as_ref(),
            caller.user_id,
            &self.provider,
            &self.upstream,
            self.timeout,
        )
        .await?;
        let value = header_value(&self.header, token.expose(), &self.upstream)?;
        Ok(CredentialSnapshot::empty().with_header(self.header_name.clone(), value))
    }
}
