//! Tokens cached per key until expiry minus skew, fetched once for N concurrent callers
//! (moka's `try_get_with` runs one loader per key; the others wait for its result).

use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use moka::Expiry;
use moka::future::Cache;

use crate::CredentialError;
use crate::config::{TokenHeader, TokenTiming};
use crate::oauth::IssuedToken;

/// A cached header value (already `"{scheme} {token}"`, marked sensitive) and how long it may
/// be used.
pub(crate) struct CachedToken {
    value: HeaderValue,
    use_for: Duration,
}

impl CachedToken {
    pub(crate) fn new(
        issued: &IssuedToken,
        header: &TokenHeader,
        timing: &TokenTiming,
        upstream: &str,
    ) -> Result<Self, CredentialError> {
        let value = header_value(header, issued.access_token.expose(), upstream)?;
        // Use a token until `expiry_skew_secs` before it expires; a token that lives shorter
        // than the skew is used for half its life.
        let use_for = match issued.expires_in {
            Some(secs) if secs > timing.expiry_skew_secs => secs - timing.expiry_skew_secs,
            Some(secs) => secs / 2,
            None => timing.unknown_expiry_ttl_secs,
        };
        Ok(Self {
            value,
            use_for: Duration::from_secs(use_for),
        })
    }

    pub(crate) fn value(&self) -> HeaderValue {
        self.value.clone()
    }
}

/// `"{scheme} {token}"` (or the bare token), marked sensitive. The error names no value.
pub(crate) fn header_value(
    header: &TokenHeader,
    token: &str,
    upstream: &str,
) -> Result<HeaderValue, CredentialError> {
    let text = if header.scheme.is_empty() {
        token.to_owned()
    } else {
        format!("{} {token}", header.scheme)
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        CredentialError::unavailable(upstream, "the token is not a valid header value")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

struct UseFor;

impl<K> Expiry<K, Arc<CachedToken>> for UseFor {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Arc<CachedToken>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.use_for)
    }
}

pub(crate) struct TokenCache<K> {
    cache: Cache<K, Arc<CachedToken>>,
}

impl<K: Hash + Eq + Send + Sync + Clone + 'static> TokenCache<K> {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UseFor)
                .build(),
        }
    }

    /// The cached token for `key`, or the one `fetch` gets (one fetch for all concurrent
    /// callers of a key). Each caller waits at most `timeout`; errors are not cached.
    pub(crate) async fn get_or_fetch<F>(
        &self,
        key: K,
        fetch: F,
        upstream: &str,
        timeout: Duration,
    ) -> Result<HeaderValue, CredentialError>
    where
        F: Future<Output = Result<CachedToken, CredentialError>>,
    {
        let load = async { fetch.await.map(Arc::new) };
        match tokio::time::timeout(timeout, self.cache.try_get_with(key, load)).await {
            Ok(Ok(token)) => Ok(token.value()),
            Ok(Err(e)) => Err((*e).clone()),
            Err(_) => Err(CredentialError::timeout(upstream, timeout)),
        }
    }
}
