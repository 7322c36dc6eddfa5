//! OpenID Connect discovery (OIDC Discovery 1.0 §4) through `openidconnect`, cached. The crate
//! checks that the document's `issuer` equals the configured one exactly and fetches the JWKS
//! the document names; both are kept together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpgate_core::ProviderError;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, DiscoveryError, IssuerUrl, RevocationUrl};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::http::{HttpClient, HttpError};

/// Discovery fields beyond OIDC Discovery's own: the RFC 7009 revocation endpoint (RFC 8414).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RevocationMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<RevocationUrl>,
}

impl AdditionalProviderMetadata for RevocationMetadata {}

/// A discovery document as mcpgate reads it.
pub type ProviderMetadata = openidconnect::ProviderMetadata<
    RevocationMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Turns a discovery or JWKS fetch failure into the class the server acts on.
pub fn discovery_error(what: &str, e: DiscoveryError<HttpError>) -> ProviderError {
    match e {
        DiscoveryError::Request(e) => e.classify(what),
        DiscoveryError::Response(status, _, why) => {
            ProviderError::Misconfigured(format!("{what}: HTTP {status}: {why}"))
        }
        DiscoveryError::Validation(why) => ProviderError::Misconfigured(format!("{what}: {why}")),
        DiscoveryError::Parse(why) => {
            ProviderError::Misconfigured(format!("{what}: unexpected document: {why}"))
        }
        DiscoveryError::UrlParse(why) => ProviderError::Misconfigured(format!("{what}: {why}")),
        other => ProviderError::Misconfigured(format!("{what}: {other}")),
    }
}

/// Fetches a discovery document and the JWKS it names.
pub async fn fetch(http: &HttpClient, issuer: &str) -> Result<ProviderMetadata, ProviderError> {
    let issuer = IssuerUrl::new(issuer.to_owned())
        .map_err(|e| ProviderError::Misconfigured(format!("issuer {issuer:?}: {e}")))?;
    ProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| discovery_error("discovery", e))
}

/// Fetches a JWKS.
pub async fn fetch_jwks(
    http: &HttpClient,
    url: &openidconnect::JsonWebKeySetUrl,
) -> Result<CoreJsonWebKeySet, ProviderError> {
    CoreJsonWebKeySet::fetch_async(url, http)
        .await
        .map_err(|e| discovery_error("jwks", e))
}

/// A discovery document cached for `ttl`; concurrent callers share one fetch. When a refetch
/// fails, the last good document is kept.
#[derive(Debug)]
pub struct DiscoveryCache {
    issuer: String,
    ttl: Duration,
    state: Mutex<Option<(Instant, Arc<ProviderMetadata>)>>,
}

impl DiscoveryCache {
    pub fn new(issuer: impl Into<String>, ttl: Duration) -> Self {
        Self {
            issuer: issuer.into(),
            ttl,
            state: Mutex::new(None),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The document, and whether it was fetched by this call (its JWKS is then fresh).
    pub async fn get(
        &self,
        http: &HttpClient,
    ) -> Result<(Arc<ProviderMetadata>, bool), ProviderError> {
        let mut state = self.state.lock().await;
        if let Some((at, metadata)) = state.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok((metadata.clone(), false));
        }
        match fetch(http, &self.issuer).await {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                *state = Some((Instant::now(), metadata.clone()));
                Ok((metadata, true))
            }
            Err(e) => match state.as_ref() {
                Some((_, stale)) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "discovery refetch failed; keeping the cached document");
                    Ok((stale.clone(), false))
                }
                None => Err(e),
            },
        }
    }
}
