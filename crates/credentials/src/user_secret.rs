//! Kind `user_secret`: each user's own API key or personal access token for the upstream,
//! entered on mcpgate's connect page (never through the MCP client or a form-mode
//! elicitation) and stored sealed by the server, which lends it through [`UserSecrets`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderName;
use mcpgate_core::SecretString;

use crate::config::TokenHeader;
use crate::token_cache::header_value;
use crate::{Caller, CredentialError, CredentialSnapshot, CredentialSource, OutgoingRequest};

/// Per-user secrets, stored sealed by the server (AAD naming the user and the upstream).
#[async_trait]
pub trait UserSecrets: Send + Sync {
    /// `Ok(None)`: the user has not entered one (or deleted it).
    async fn user_secret(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<SecretString>, CredentialError>;
}

pub(crate) struct UserSecret {
    pub(crate) upstream: String,
    pub(crate) header_name: HeaderName,
    pub(crate) header: TokenHeader,
    pub(crate) secrets: Arc<dyn UserSecrets>,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSecret")
            .field("upstream", &self.upstream)
            .field("header", &self.header_name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CredentialSource for UserSecret {
    async fn resolve(
        &self,
        caller: &Caller<'_>,
        _request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let found = tokio::time::timeout(
            self.timeout,
            self.secrets.user_secret(caller.user_id, &self.upstream),
        )
        .await
        .map_err(|_| CredentialError::timeout(&self.upstream, self.timeout))??;
        let Some(secret) = found else {
            return Err(CredentialError::AccountNotConnected {
                upstream: self.upstream.clone(),
            });
        };
        let value = header_value(&self.header, secret.expose(), &self.upstream)?;
        Ok(CredentialSnapshot::empty().with_header(self.header_name.clone(), value))
    }
}
