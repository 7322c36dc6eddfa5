//! OpenID Connect discovery (OIDC Discovery 1.0 §4), fetched once and cached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpgate_core::ProviderError;
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::classify::send_error;

/// The fields of a discovery document mcpgate uses; the rest is ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Url,
    pub revocation_endpoint: Option<Url>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// The discovery URL of an issuer: `{issuer}/.well-known/openid-configuration`.
pub fn discovery_url(issuer: &str) -> Result<Url, ProviderError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    Url::parse(&url).map_err(|e| ProviderError::Misconfigured(format!("issuer {issuer:?}: {e}")))
}

/// Fetches and checks a discovery document. The `issuer` it names must equal the configured
/// one exactly (OIDC Discovery §4.3), or tokens could be accepted from another issuer.
pub async fn fetch(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<ProviderMetadata, ProviderError> {
    let url = discovery_url(issuer)?;
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| send_error("discovery", &e))?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(ProviderError::Transient(format!(
            "discovery: HTTP {status}"
        )));
    }
    if !status.is_success() {
        return Err(ProviderError::Misconfigured(format!(
            "discovery: HTTP {status}"
        )));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| send_error("discovery", &e))?;
    let metadata: ProviderMetadata = serde_json::from_slice(&body)
        .map_err(|e| ProviderError::Misconfigured(format!("discovery document: {e}")))?;
    if metadata.issuer != issuer {
        return Err(ProviderError::Misconfigured(format!(
            "discovery names issuer {:?}, configured {issuer:?}",
            metadata.issuer
        )));
    }
    Ok(metadata)
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

    pub async fn get(
        &self,
        http: &reqwest::Client,
    ) -> Result<Arc<ProviderMetadata>, ProviderError> {
        let mut state = self.state.lock().await;
        if let Some((at, metadata)) = state.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(metadata.clone());
        }
        match fetch(http, &self.issuer).await {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                *state = Some((Instant::now(), metadata.clone()));
                Ok(metadata)
            }
            Err(e) => match state.as_ref() {
                Some((_, stale)) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "discovery refetch failed; keeping the cached document");
                    Ok(stale.clone())
                }
                None => Err(e),
            },
        }
    }
}
