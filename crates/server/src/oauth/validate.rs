//! The resource-server check for tokens mcpgate issued: token → principal, with no database
//! work on a cache hit.
//!
//! The cache maps a token's SHA-256 to what one short read found (or to "no such token": a
//! random token can never become valid later, so negative answers are safe to keep). Loads are
//! single-flight: N concurrent requests with a cold token make one read. Revocation, sign-out,
//! password changes and disabling a user drop the affected entries at once on this replica;
//! other replicas see it within `token_cache_ttl_secs`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcpgate_core::Principal;
use mcpgate_crypto::TokenHash;
use mcpgate_storage::{Store, now_ms};

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

pub struct TokenValidator {
    store: Store,
    cache: moka::future::Cache<[u8; 32], Option<Arc<Entry>>>,
}

impl TokenValidator {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            cache: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
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

    /// Drops one token (revocation).
    pub async fn invalidate_token(&self, hash: &TokenHash) {
        self.cache.invalidate(hash.as_bytes()).await;
    }

    /// Drops every token of a user (password change, disabling, sign-out everywhere).
    pub fn invalidate_user(&self, user_id: &str) {
        let user_id = user_id.to_owned();
        let _ = self
            .cache
            .invalidate_entries_if(move |_, v| v.as_ref().is_some_and(|e| e.user_id == user_id));
    }

    /// Drops every token of a token family (refresh-token reuse, revocation of a refresh token).
    pub fn invalidate_family(&self, family_id: &str) {
        let family_id = family_id.to_owned();
        let _ = self.cache.invalidate_entries_if(move |_, v| {
            v.as_ref()
                .is_some_and(|e| e.family_id.as_deref() == Some(family_id.as_str()))
        });
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
