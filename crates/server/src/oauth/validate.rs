//! The resource-server check for tokens mcpgate issued: token → principal, with no database
//! work on a cache hit.
//!
//! The cache maps a token's SHA-256 to what one short read found (or to "no such token": a
//! random token can never become valid later, so negative answers are safe to keep). Loads are
//! single-flight: N concurrent requests with a cold token make one read. Revocation, sign-out,
//! password changes and disabling a user drop the affected entries at once on this replica,
//! and are announced to the others (PostgreSQL `NOTIFY`, see `Store::revocations`), which drop
//! theirs as soon as they hear it; `token_cache_ttl_secs` bounds what a lost announcement costs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcpgate_core::Principal;
use mcpgate_crypto::TokenHash;
use mcpgate_storage::{Revoked, Store, now_ms};

use crate::auth::{AuthError, Authenticator};

/// What the cache holds for a known, active OAuth access token.
#[derive(Debug, Clone)]
struct Entry {
    user_id: String,
    client_id: String,
    family_id: Option<String>,
    resource: String,
    scopes: Vec<String>,
    expires_at: i64,
}

type Cache = moka::future::Cache<[u8; 32], Option<Arc<Entry>>>;

pub struct TokenValidator {
    store: Store,
    cache: Cache,
    /// Applies revocations other replicas announce; stopped at shutdown.
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TokenValidator {
    /// Needs a tokio runtime: it starts the listener for other replicas' revocations.
    pub fn new(store: Store, ttl: Duration) -> Self {
        let cache: Cache = moka::future::Cache::builder()
            .max_capacity(200_000)
            .time_to_live(ttl)
            .support_invalidation_closures()
            .build();
        let mut revocations = store.revocations();
        let listening = cache.clone();
        let listener = tokio::spawn(async move {
            while let Some(revoked) = revocations.recv().await {
                forget(&listening, &revoked).await;
            }
        });
        Self {
            store,
            cache,
            listener: std::sync::Mutex::new(Some(listener)),
        }
    }

    /// Stops listening for other replicas' revocations (shutdown).
    pub fn stop(&self) {
        if let Ok(mut slot) = self.listener.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }

    async fn lookup(
        &self,
        hash: TokenHash,
    ) -> Result<Option<Arc<Entry>>, Arc<mcpgate_storage::StorageError>> {
        let store = self.store.clone();
        self.cache
            .try_get_with(*hash.as_bytes(), async move {
                let record = store.find_access_token(hash.as_bytes()).await?;
                Ok(record
                    .filter(|r| r.kind == "oauth" && r.is_active(now_ms()))
                    .and_then(|r| {
                        Some(Arc::new(Entry {
                            client_id: r.client_id?,
                            resource: r.resource?,
                            user_id: r.user_id,
                            family_id: r.family_id,
                            scopes: r
                                .scopes
                                .split_ascii_whitespace()
                                .map(String::from)
                                .collect(),
                            expires_at: r.expires_at,
                        }))
                    }))
            })
            .await
    }

    /// Drops one token (revocation), here and, announced, on every other replica.
    pub async fn invalidate_token(&self, hash: &TokenHash) {
        self.revoked(Revoked::Token(*hash.as_bytes())).await;
    }

    /// Drops every token of a user (password change, disabling, sign-out everywhere).
    pub async fn invalidate_user(&self, user_id: &str) {
        self.revoked(Revoked::User(user_id.to_owned())).await;
    }

    /// Drops every token of a token family (refresh-token reuse, revocation of a refresh token).
    pub async fn invalidate_family(&self, family_id: &str) {
        self.revoked(Revoked::Family(family_id.to_owned())).await;
    }

    /// Called once the revocation is stored: forget it here at once, then tell the others. A
    /// failed announcement is logged; other replicas then see it within the cache TTL.
    async fn revoked(&self, revoked: Revoked) {
        forget(&self.cache, &revoked).await;
        if let Err(e) = self.store.announce_revocation(&revoked).await {
            tracing::warn!(error = %e, "a revocation could not be announced to other replicas");
        }
    }
}

/// Drops what a revocation makes stale.
async fn forget(cache: &Cache, revoked: &Revoked) {
    match revoked {
        Revoked::Token(hash) => cache.invalidate(hash).await,
        Revoked::User(user_id) => {
            let user_id = user_id.clone();
            let _ = cache.invalidate_entries_if(move |_, v| {
                v.as_ref().is_some_and(|e| e.user_id == user_id)
            });
        }
        Revoked::Family(family_id) => {
            let family_id = family_id.clone();
            let _ = cache.invalidate_entries_if(move |_, v| {
                v.as_ref()
                    .is_some_and(|e| e.family_id.as_deref() == Some(family_id.as_str()))
            });
        }
        Revoked::Anything => cache.invalidate_all(),
    }
}

#[async_trait]
impl Authenticator for TokenValidator {
    async fn authenticate(&self, token: &str, resource: &str) -> Result<Principal, AuthError> {
        let entry = self
            .lookup(TokenHash::of(token))
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?
            .ok_or_else(|| AuthError::InvalidToken("unknown, expired or revoked".into()))?;
        if entry.expires_at <= now_ms() {
            return Err(AuthError::InvalidToken("expired".into()));
        }
        // RFC 8707: a token is good only at the resource it was issued for.
        if entry.resource != resource {
            return Err(AuthError::InvalidToken(
                "issued for another resource".into(),
            ));
        }
        Ok(Principal {
            user_id: entry.user_id.clone(),
            client_id: entry.client_id.clone(),
            scopes: entry.scopes.clone(),
            resource: entry.resource.clone(),
        })
    }

    fn challenge_scope(&self, _resource: &str) -> Option<String> {
        Some(super::scopes::MCP.to_owned())
    }
}
