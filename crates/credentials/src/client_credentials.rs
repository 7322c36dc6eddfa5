//! Kind `client_credentials`: mcpgate's own client at the upstream's authorization server
//! (RFC 6749 §4.4). One token per upstream, cached until expiry minus skew, fetched once for
//! any number of concurrent callers.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderName;
use tokio::sync::OnceCell;
use url::Url;

use crate::config::{TokenHeader, TokenTiming};
use crate::oauth::{OAuthClient, discover_token_endpoint, token_request};
use crate::token_cache::{CachedToken, TokenCache};
use crate::{Caller, CredentialError, CredentialSnapshot, CredentialSource, OutgoingRequest};

pub(crate) enum Endpoint {
    Fixed(Url),
    /// Discovered once from the issuer's metadata (not cached on failure).
    Discovered {
        issuer: Url,
        found: OnceCell<Url>,
    },
}

pub(crate) struct ClientCredentials {
    pub(crate) upstream: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) client: OAuthClient,
    pub(crate) scope: Option<String>,
    pub(crate) audience: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) header_name: HeaderName,
    pub(crate) header: TokenHeader,
    pub(crate) timing: TokenTiming,
    pub(crate) timeout: Duration,
    pub(crate) http: reqwest::Client,
    /// Keyed by the upstream name: one token per upstream.
    pub(crate) cache: TokenCache<String>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("upstream", &self.upstream)
            .field("client_id", &self.client.id)
            .field("scope", &self.scope)
            .field("header", &self.header_name)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    async fn token_endpoint(&self) -> Result<Url, CredentialError> {
        match &self.endpoint {
            Endpoint::Fixed(url) => Ok(url.clone()),
            Endpoint::Discovered { issuer, found } => found
                .get_or_try_init(|| {
                    discover_token_endpoint(&self.http, issuer, &self.upstream, self.timeout)
                })
                .await
                .cloned(),
        }
    }

    async fn fetch(&self) -> Result<CachedToken, CredentialError> {
        let endpoint = self.token_endpoint().await?;
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        for (name, value) in [
            ("scope", &self.scope),
            ("audience", &self.audience),
            ("resource", &self.resource),
        ] {
            if let Some(v) = value {
                form.push((name, v.clone()));
            }
        }
        let issued = token_request(
            &self.http,
            &endpoint,
            Some(&self.client),
            form,
            &self.upstream,
            self.timeout,
        )
        .await?;
        tracing::debug!(upstream = %self.upstream, "client credentials token fetched");
        CachedToken::new(&issued, &self.header, &self.timing, &self.upstream)
    }
}

#[async_trait]
impl CredentialSource for ClientCredentials {
    async fn resolve(
        &self,
        _caller: &Caller<'_>,
        _request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let value = self
            .cache
            .get_or_fetch(
                self.upstream.clone(),
                self.fetch(),
                &self.upstream,
                self.timeout,
            )
            .await?;
        Ok(CredentialSnapshot::empty().with_header(self.header_name.clone(), value))
    }
}
