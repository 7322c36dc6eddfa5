//! JSON Web Key Sets: fetched from the provider, cached, refetched once when a token names an
//! unknown `kid` (key rotation), and not more often than every `min_refetch` so a flood of
//! tokens with made-up key ids cannot hammer the provider.

use std::time::{Duration, Instant};

use mcpgate_core::ProviderError;
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::classify::send_error;

/// The default minimum time between two JWKS fetches caused by unknown key ids.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);

/// One public key (RFC 7517). Only the members signature checks need.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    pub alg: Option<String>,
    #[serde(rename = "use")]
    pub use_: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Debug, Default)]
struct State {
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
}

/// The key set of one provider.
#[derive(Debug)]
pub struct JwksCache {
    uri: Url,
    min_refetch: Duration,
    state: Mutex<State>,
}

impl JwksCache {
    pub fn new(uri: Url, min_refetch: Duration) -> Self {
        Self {
            uri,
            min_refetch,
            state: Mutex::new(State::default()),
        }
    }

    /// The signing key for a token header. Fetches on first use; on an unknown `kid`,
    /// refetches once unless the last fetch is more recent than `min_refetch`.
    pub async fn key(
        &self,
        http: &reqwest::Client,
        kid: Option<&str>,
        alg: &str,
    ) -> Result<Jwk, ProviderError> {
        let mut state = self.state.lock().await;
        if state.fetched_at.is_none() {
            state.keys = self.fetch(http).await?;
            state.fetched_at = Some(Instant::now());
        }
        if let Some(key) = find(&state.keys, kid, alg) {
            return Ok(key);
        }
        let may_refetch = state
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.min_refetch);
        if may_refetch {
            tracing::info!(jwks = %self.uri, ?kid, "unknown key id: refetching the JWKS");
            state.keys = self.fetch(http).await?;
            state.fetched_at = Some(Instant::now());
            if let Some(key) = find(&state.keys, kid, alg) {
                return Ok(key);
            }
        }
        Err(ProviderError::Unauthorized(format!(
            "no key {kid:?} for {alg} in the provider's JWKS"
        )))
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<Vec<Jwk>, ProviderError> {
        let response = http
            .get(self.uri.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| send_error("jwks", &e))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ProviderError::Transient(format!("jwks: HTTP {status}")));
        }
        if !status.is_success() {
            return Err(ProviderError::Misconfigured(format!("jwks: HTTP {status}")));
        }
        let body = response.bytes().await.map_err(|e| send_error("jwks", &e))?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Misconfigured(format!("jwks document: {e}")))?;
        // A key of a type we do not know is skipped, not fatal (RFC 7517 §5).
        Ok(set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
            .collect())
    }
}

fn find(keys: &[Jwk], kid: Option<&str>, alg: &str) -> Option<Jwk> {
    let fits = |k: &&Jwk| {
        k.alg.as_deref().is_none_or(|a| a == alg)
            && crate::jws::kty_for(alg) == Some(k.kty.as_str())
    };
    match kid {
        Some(kid) => keys
            .iter()
            .filter(fits)
            .find(|k| k.kid.as_deref() == Some(kid)),
        // Without a kid, only an unambiguous key will do.
        None => {
            let mut candidates = keys.iter().filter(fits);
            let first = candidates.next();
            if candidates.next().is_some() {
                None
            } else {
                first
            }
        }
    }
    .cloned()
}
