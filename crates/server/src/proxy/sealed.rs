//! Static upstream secrets set through the admin API (`kind = "static"` with `sealed = true`):
//! sealed with the key ring into `upstream_secrets` (AAD = table, column, upstream name),
//! opened here for the credentials step. The opened value is cached per upstream name for
//! [`CACHE_TTL`], so the request path reads the database at most once per upstream per TTL,
//! one read for many concurrent callers; a change through this replica's admin API applies at
//! once, other replicas follow within the TTL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcpgate_core::SecretString;
use mcpgate_credentials::{CredentialError, SealedSecrets};
use mcpgate_crypto::{Place, SecretBox};
use mcpgate_storage::{StorageError, Store};

/// How long an opened secret (or its absence) is served from memory.
pub const CACHE_TTL: Duration = Duration::from_secs(10);

/// The longest secret accepted (it becomes one header value).
pub const MAX_LEN: usize = 8 * 1024;

fn unavailable(upstream: &str, reason: &str) -> CredentialError {
    CredentialError::Unavailable {
        upstream: upstream.to_owned(),
        reason: reason.to_owned(),
    }
}

fn place(upstream: &str) -> Place<'_> {
    Place::new("upstream_secrets", "sealed", upstream)
}

/// Why a secret could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("the value is empty, longer than {MAX_LEN} bytes or not a valid header value")]
    Invalid,
    #[error("the value could not be sealed")]
    Seal,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The store of sealed upstream secrets, with its cache of opened values.
pub struct StoredSecrets {
    store: Store,
    secret_box: Arc<SecretBox>,
    cache: moka::future::Cache<String, Option<SecretString>>,
}

impl std::fmt::Debug for StoredSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecrets").finish_non_exhaustive()
    }
}

impl StoredSecrets {
    pub fn new(store: Store, secret_box: Arc<SecretBox>) -> Self {
        Self {
            store,
            secret_box,
            cache: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(CACHE_TTL)
                .build(),
        }
    }

    /// Seals and stores `value` for `upstream`, replacing any earlier one.
    pub async fn set(
        &self,
        upstream: &str,
        value: &SecretString,
        updated_by: &str,
    ) -> Result<(), SetError> {
        let clear = value.expose();
        if clear.is_empty() || clear.len() > MAX_LEN || http::HeaderValue::from_str(clear).is_err()
        {
            return Err(SetError::Invalid);
        }
        let sealed = self
            .secret_box
            .seal(clear.as_bytes(), &place(upstream))
            .map_err(|_| SetError::Seal)?;
        self.store
            .put_upstream_secret(upstream, &sealed, updated_by)
            .await?;
        self.cache.invalidate(upstream).await;
        Ok(())
    }

    /// Removes the secret; `false` when none was set.
    pub async fn delete(&self, upstream: &str) -> Result<bool, StorageError> {
        let removed = self.store.delete_upstream_secret(upstream).await?;
        self.cache.invalidate(upstream).await;
        Ok(removed)
    }

    /// When and by whom the secret was last set, never the value.
    pub async fn status(&self, upstream: &str) -> Result<Option<(i64, String)>, StorageError> {
        Ok(self
            .store
            .upstream_secret(upstream)
            .await?
            .map(|s| (s.updated_at, s.updated_by)))
    }

    async fn load(&self, upstream: &str) -> Result<Option<SecretString>, CredentialError> {
        let Some(row) = self.store.upstream_secret(upstream).await.map_err(|e| {
            tracing::warn!(upstream, error = %e, "reading a sealed upstream secret");
            unavailable(upstream, "the secret store is unavailable")
        })?
        else {
            return Ok(None);
        };
        let opened = self
            .secret_box
            .open(&row.sealed, &place(upstream))
            .map_err(|_| {
                unavailable(
                    upstream,
                    "the stored secret cannot be opened with the key ring",
                )
            })?;
        let text = String::from_utf8(opened.to_vec())
            .map_err(|_| unavailable(upstream, "the stored secret is not text"))?;
        Ok(Some(SecretString::new(text)))
    }
}

#[async_trait]
impl SealedSecrets for StoredSecrets {
    async fn upstream_secret(
        &self,
        upstream: &str,
    ) -> Result<Option<SecretString>, CredentialError> {
        self.cache
            .try_get_with_by_ref(upstream, self.load(upstream))
            .await
            .map_err(|e| (*e).clone())
    }
}
