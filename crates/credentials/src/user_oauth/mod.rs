//! Kind `user_oauth`: each user's own token at the upstream's authorization server, mcpgate
//! being an OAuth client there ([`UpstreamOAuth`]: discovery, registration, PKCE, exchange,
//! refresh, revocation). Grants live in the server's store, lent through [`UserTokens`];
//! a due token is refreshed once per (user, upstream) in this process (moka single-flight)
//! and across replicas (the store's lease), the rotated refresh token persisted before the
//! new access token is used. `invalid_grant` disconnects the account.

mod discovery;
mod flow;
mod http;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::http::HeaderName;
use async_trait::async_trait;

pub use discovery::{Challenge, Discovery, ResourceMetadata, ServerMetadata};
pub use flow::{
    Callback, ClientMetadata, PendingAuthorization, RegisteredClient, TokenAuth, UpstreamOAuth,
    UserGrant,
};

use crate::config::TokenHeader;
use crate::token_cache::header_value;
use crate::{Caller, CredentialError, CredentialSnapshot, CredentialSource, OutgoingRequest};

/// How long a waiter sleeps at most before asking the store again while another replica
/// refreshes.
const WAIT_STEP: Duration = Duration::from_millis(50);

/// A user's grant as stored, with its version (bumped by every write; the lease and the
/// compare-and-swap use it).
#[derive(Debug, Clone)]
pub struct StoredUserGrant {
    pub grant: UserGrant,
    pub version: i64,
}

/// The answer to a refresh-lease claim.
#[derive(Debug, Clone)]
pub enum RefreshClaim {
    /// This caller holds the lease; refresh this grant and complete (or release) it.
    Claimed(Box<StoredUserGrant>),
    /// The grant changed since `seen_version` (someone refreshed it): read it again.
    Changed,
    /// The grant is gone (disconnected).
    Gone,
    /// Another replica holds the lease; ask again after this long.
    HeldByOther { retry_in: Duration },
}

/// Per-user grants at upstreams, stored sealed by the server (which owns the database).
#[async_trait]
pub trait UserTokens: Send + Sync {
    /// The user's grant at `upstream`; `Ok(None)`: not connected.
    async fn user_grant(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<StoredUserGrant>, CredentialError>;

    /// Claims the refresh lease if the grant is still at `seen_version` and no one else
    /// holds an unexpired lease.
    async fn claim_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        seen_version: i64,
    ) -> Result<RefreshClaim, CredentialError>;

    /// Writes the refreshed grant if still at `claimed_version` (bumping it) and releases
    /// the lease.
    async fn complete_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        claimed_version: i64,
        grant: &UserGrant,
    ) -> Result<(), CredentialError>;

    /// Releases the lease without a change (the refresh failed transiently).
    async fn release_refresh(&self, user_id: &str, upstream: &str) -> Result<(), CredentialError>;

    /// Deletes the grant: the authorization server ended it (`invalid_grant`).
    async fn disconnect(&self, user_id: &str, upstream: &str) -> Result<(), CredentialError>;
}

/// The source of an upstream with `kind = "user_oauth"`.
#[derive(Clone)]
pub(crate) struct UserOAuth {
    inner: Arc<Inner>,
}

struct Inner {
    client: UpstreamOAuth,
    tokens: Arc<dyn UserTokens>,
    header_name: HeaderName,
    header: TokenHeader,
    skew: Duration,
    timeout: Duration,
    /// One refresh per (user, seen version) in this process; keyed by user id, never a token.
    refreshing: moka::future::Cache<(String, i64), Arc<UserGrant>>,
}

impl fmt::Debug for UserOAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserOAuth")
            .field("upstream", &self.inner.client.upstream())
            .field("header", &self.inner.header_name)
            .finish_non_exhaustive()
    }
}

impl UserOAuth {
    pub(crate) fn new(
        client: UpstreamOAuth,
        tokens: Arc<dyn UserTokens>,
        header_name: HeaderName,
        timeout: Duration,
    ) -> Self {
        let config = client.config();
        let header = config.token_header();
        let skew = Duration::from_secs(config.expiry_skew_secs);
        Self {
            inner: Arc::new(Inner {
                client,
                tokens,
                header_name,
                header,
                skew,
                timeout,
                refreshing: moka::future::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(10))
                    .build(),
            }),
        }
    }

    fn not_connected(&self) -> CredentialError {
        CredentialError::AccountNotConnected {
            upstream: self.inner.client.upstream().to_owned(),
        }
    }

    async fn token(&self, user_id: &str) -> Result<UserGrant, CredentialError> {
        let upstream = self.inner.client.upstream();
        let Some(stored) = self.inner.tokens.user_grant(user_id, upstream).await? else {
            return Err(self.not_connected());
        };
        if !stored.grant.due(self.inner.skew) {
            return Ok(stored.grant);
        }
        if stored.grant.refresh_token.is_none() {
            return Err(self.not_connected());
        }
        // The refresh runs in a task of its own: a caller that gives up (timeout, dropped
        // request) must not cancel it between the token call and the write of the rotated
        // refresh token.
        let key = (user_id.to_owned(), stored.version);
        let this = self.clone();
        let user = user_id.to_owned();
        let version = stored.version;
        let name = upstream.to_owned();
        let grant = self
            .inner
            .refreshing
            .try_get_with(key, async move {
                tokio::spawn(async move { this.refresh_leased(&user, version).await })
                    .await
                    .unwrap_or_else(|_| {
                        Err(CredentialError::unavailable(
                            &name,
                            "the refresh task failed",
                        ))
                    })
                    .map(Arc::new)
            })
            .await
            .map_err(|e| (*e).clone())?;
        Ok((*grant).clone())
    }

    async fn refresh_leased(
        &self,
        user_id: &str,
        seen_version: i64,
    ) -> Result<UserGrant, CredentialError> {
        let upstream = self.inner.client.upstream();
        let tokens = &self.inner.tokens;
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        loop {
            match tokens
                .claim_refresh(user_id, upstream, seen_version)
                .await?
            {
                RefreshClaim::Claimed(stored) => {
                    return match self.inner.client.refresh(&stored.grant).await {
                        Ok(fresh) => {
                            tokens
                                .complete_refresh(user_id, upstream, stored.version, &fresh)
                                .await?;
                            tracing::debug!(user.id = user_id, upstream, "user grant refreshed");
                            Ok(fresh)
                        }
                        Err(CredentialError::Refused { error, .. }) if error == "invalid_grant" => {
                            tracing::info!(
                                user.id = user_id,
                                upstream,
                                "upstream refused the refresh token: account disconnected"
                            );
                            tokens.disconnect(user_id, upstream).await?;
                            Err(self.not_connected())
                        }
                        Err(e) => {
                            let _ = tokens.release_refresh(user_id, upstream).await;
                            Err(e)
                        }
                    };
                }
                RefreshClaim::Changed => {
                    return match tokens.user_grant(user_id, upstream).await? {
                        Some(s) => Ok(s.grant),
                        None => Err(self.not_connected()),
                    };
                }
                RefreshClaim::Gone => return Err(self.not_connected()),
                RefreshClaim::HeldByOther { retry_in } => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(CredentialError::timeout(upstream, self.inner.timeout));
                    }
                    tokio::time::sleep(retry_in.clamp(Duration::from_millis(5), WAIT_STEP)).await;
                }
            }
        }
    }
}

#[async_trait]
impl CredentialSource for UserOAuth {
    async fn resolve(
        &self,
        caller: &Caller<'_>,
        _request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let upstream = self.inner.client.upstream();
        let grant = match tokio::time::timeout(self.inner.timeout, self.token(caller.user_id)).await
        {
            Ok(r) => r?,
            Err(_) => return Err(CredentialError::timeout(upstream, self.inner.timeout)),
        };
        let value = header_value(&self.inner.header, grant.access_token.expose(), upstream)?;
        Ok(CredentialSnapshot::empty().with_header(self.inner.header_name.clone(), value))
    }
}
