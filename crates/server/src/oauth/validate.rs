//! The resource-server check for tokens mcpgate issued — OAuth access tokens (users' and
//! service clients') and personal access tokens — token → principal, with no database work
//! on a cache hit.
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
use mcpgate_crypto::{TokenHash, TokenKind};
use mcpgate_storage::{Revoked, Store, now_ms};

use super::last_used::LastUsed;
use crate::auth::{AuthError, Authenticator};

/// What the cache holds for a known, active token: an OAuth access token (one resource) or a
/// personal access token (some upstreams).
#[derive(Debug, Clone)]
struct Entry {
    user_id: String,
    client_id: String,
    family_id: Option<String>,
    audience: Audience,
    scopes: Vec<String>,
    expires_at: i64,
}

#[derive(Debug, Clone)]
enum Audience {
    /// RFC 8707: the one resource an OAuth access token was issued for.
    Resource(String),
    /// A personal access token: its id (for `last_used_at`) and the upstreams it may call.
    Personal { id: String, upstreams: Vec<String> },
}

fn scope_list(scopes: &str) -> Vec<String> {
    scopes.split_ascii_whitespace().map(String::from).collect()
}

type Cache = moka::future::Cache<[u8; 32], Option<Arc<Entry>>>;

pub struct TokenValidator {
    store: Store,
    cache: Cache,
    /// `{issuer}/mcp/`: a personal token's upstream names become resources under it.
    mcp_base: String,
    last_used: LastUsed,
    /// Applies revocations other replicas announce; stopped at shutdown.
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TokenValidator {
    /// Needs a tokio runtime: it starts the listener for other replicas' revocations and the
    /// writer of personal tokens' last-used times (at most once per `last_used_interval`).
    pub fn new(store: Store, ttl: Duration, issuer: &str, last_used_interval: Duration) -> Self {
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
            last_used: LastUsed::start(store.clone(), last_used_interval),
            mcp_base: format!("{issuer}/mcp/"),
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
        self.last_used.stop();
    }

    /// The last-used recorder of personal tokens (its counters).
    pub fn last_used(&self) -> &LastUsed {
        &self.last_used
    }

    /// Routes by the prefix: a personal token is looked up only among personal tokens, so
    /// ordinary tokens never cost a miss there (and the other way round).
    async fn lookup(
        &self,
        token: &str,
    ) -> Result<Option<Arc<Entry>>, Arc<mcpgate_storage::StorageError>> {
        let hash = TokenHash::of(token);
        if TokenKind::of(token) == Some(TokenKind::Personal) {
            self.lookup_personal(hash).await
        } else {
            self.lookup_oauth(hash).await
        }
    }

    async fn lookup_personal(
        &self,
        hash: TokenHash,
    ) -> Result<Option<Arc<Entry>>, Arc<mcpgate_storage::StorageError>> {
        let store = self.store.clone();
        self.cache
            .try_get_with(*hash.as_bytes(), async move {
                let found = store.find_personal_token(hash.as_bytes()).await?;
                Ok(found
                    .filter(|(t, user_disabled)| !user_disabled && t.is_active(now_ms()))
                    .map(|(t, _)| {
                        Arc::new(Entry {
                            client_id: format!("pat:{}", t.id),
                            user_id: t.user_id,
                            family_id: None,
                            scopes: scope_list(&t.scopes),
                            expires_at: t.expires_at,
                            audience: Audience::Personal {
                                upstreams: serde_json::from_str(&t.upstreams).unwrap_or_default(),
                                id: t.id,
                            },
                        })
                    }))
            })
            .await
    }

    /// A personal access token presented to the API: its user and scopes, or why not. Served
    /// from the same cache as the resource-server check.
    pub async fn personal(&self, token: &str) -> Result<(String, Vec<String>), AuthError> {
        if TokenKind::of(token) != Some(TokenKind::Personal) {
            return Err(AuthError::InvalidToken(
                "not a personal access token".into(),
            ));
        }
        let entry = self.active(token).await?;
        if let Audience::Personal { id, .. } = &entry.audience {
            self.last_used.record(id);
        }
        Ok((entry.user_id.clone(), entry.scopes.clone()))
    }

    async fn active(&self, token: &str) -> Result<Arc<Entry>, AuthError> {
        let entry = self
            .lookup(token)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?
            .ok_or_else(|| AuthError::InvalidToken("unknown, expired or revoked".into()))?;
        if entry.expires_at <= now_ms() {
            return Err(AuthError::InvalidToken("expired".into()));
        }
        Ok(entry)
    }

    async fn lookup_oauth(
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
                            audience: Audience::Resource(r.resource?),
                            user_id: r.user_id,
                            family_id: r.family_id,
                            scopes: scope_list(&r.scopes),
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
        let entry = self.active(token).await?;
        match &entry.audience {
            // RFC 8707: a token is good only at the resource it was issued for.
            Audience::Resource(issued_for) if issued_for != resource => {
                return Err(AuthError::InvalidToken(
                    "issued for another resource".into(),
                ));
            }
            Audience::Resource(_) => {}
            Audience::Personal { id, upstreams } => {
                let upstream = resource.strip_prefix(&self.mcp_base);
                if !upstream.is_some_and(|u| upstreams.iter().any(|allowed| allowed == u)) {
                    return Err(AuthError::InvalidToken(
                        "the personal access token is not for this upstream".into(),
                    ));
                }
                // Off the request path: a bounded, throttled note (see `last_used`).
                self.last_used.record(id);
            }
        }
        Ok(Principal {
            user_id: entry.user_id.clone(),
            client_id: entry.client_id.clone(),
            scopes: entry.scopes.clone(),
            resource: resource.to_owned(),
        })
    }

    fn challenge_scope(&self, _resource: &str) -> Option<String> {
        Some(super::scopes::MCP.to_owned())
    }
}
