//! Refreshing a provider grant exactly once, in this process and across replicas.

use std::sync::Arc;
use std::time::Duration;

use mcpgate_core::{ProviderError, SecretString};
use mcpgate_storage::{GrantTokens, LeaseClaim, StorageError, now_ms};

use super::{GrantSnapshot, IdentityError, IdentityService, place};

/// How long a waiter sleeps before re-reading a grant another replica is refreshing.
const WAIT_STEP: Duration = Duration::from_millis(50);
/// How many times a waiter re-reads before giving up (then the client may retry).
const MAX_WAITS: u32 = 200;

impl IdentityService {
    /// Refreshes `grant_id` if it is still at `seen_version`; every concurrent caller in this
    /// process that saw the same version shares one refresh. The refresh runs in a task of its
    /// own, so callers that give up do not cancel it halfway (see the module comment).
    pub async fn refresh(
        &self,
        grant_id: &str,
        seen_version: i64,
    ) -> Result<GrantSnapshot, IdentityError> {
        let key = (grant_id.to_owned(), seen_version);
        let this = self.clone();
        let grant = grant_id.to_owned();
        self.refreshing
            .try_get_with(key, async move {
                let task = tokio::spawn(async move {
                    this.refresh_leased(&grant, seen_version)
                        .await
                        .map(Arc::new)
                });
                task.await.unwrap_or_else(|e| {
                    Err(IdentityError::Provider(ProviderError::Transient(format!(
                        "the refresh task failed: {e}"
                    ))))
                })
            })
            .await
            .map(|s| (*s).clone())
            .map_err(|e| match &*e {
                IdentityError::SignInAgain => IdentityError::SignInAgain,
                IdentityError::Provider(p) => IdentityError::Provider(clone_provider_error(p)),
                IdentityError::Storage(s) => {
                    IdentityError::Storage(StorageError::Query(s.to_string()))
                }
                IdentityError::Sealed(s) => IdentityError::Sealed(s.clone()),
                IdentityError::UnknownProvider(p) => IdentityError::UnknownProvider(p.clone()),
                IdentityError::TimedOut(d) => IdentityError::TimedOut(*d),
            })
    }

    async fn refresh_leased(
        &self,
        grant_id: &str,
        seen_version: i64,
    ) -> Result<GrantSnapshot, IdentityError> {
        for _ in 0..MAX_WAITS {
            let claim = self
                .store
                .claim_refresh_lease(grant_id, &self.owner, seen_version, self.lease_ttl)
                .await?;
            match claim {
                LeaseClaim::Claimed { version } => {
                    return self.refresh_claimed(grant_id, version).await;
                }
                // Someone else refreshed it: use theirs.
                LeaseClaim::Changed { .. } => return self.reread(grant_id).await,
                LeaseClaim::Gone => {
                    self.forget_grant(grant_id).await;
                    return Err(IdentityError::SignInAgain);
                }
                LeaseClaim::HeldByOther { until } => {
                    let wait = Duration::from_millis(
                        u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0),
                    )
                    .clamp(Duration::from_millis(5), WAIT_STEP);
                    tokio::time::sleep(wait).await;
                    let grant = self.store.get_grant(grant_id).await?;
                    if grant.version != seen_version || grant.dead_at.is_some() {
                        return self.open(&grant);
                    }
                }
            }
        }
        Err(IdentityError::Provider(ProviderError::Transient(
            "another replica is still refreshing this grant".into(),
        )))
    }

    async fn reread(&self, grant_id: &str) -> Result<GrantSnapshot, IdentityError> {
        let grant = self.store.get_grant(grant_id).await?;
        self.open(&grant)
    }

    /// We hold the lease: call the provider (no transaction open, nothing held), then write
    /// the result under the version we claimed.
    async fn refresh_claimed(
        &self,
        grant_id: &str,
        version: i64,
    ) -> Result<GrantSnapshot, IdentityError> {
        let grant = self.store.get_grant(grant_id).await?;
        let release = || async {
            if let Err(e) = self
                .store
                .release_refresh_lease(grant_id, &self.owner)
                .await
            {
                tracing::warn!(grant.id = %grant_id, error = %e, "could not release a refresh lease");
            }
        };
        let Some(sealed_refresh) = grant.refresh_token.as_deref() else {
            // Expired and nothing to renew it with: the sign-in is over.
            return Err(self.end_grant(grant_id, &grant.user_id).await);
        };
        let refresh_token = match self
            .secret_box
            .open(sealed_refresh, &place("refresh_token", grant_id))
        {
            Ok(t) => SecretString::new(String::from_utf8_lossy(&t).into_owned()),
            Err(e) => {
                release().await;
                return Err(IdentityError::Sealed(e.to_string()));
            }
        };
        let provider = match self.provider(&grant.provider_id) {
            Ok(p) => p.clone(),
            Err(e) => {
                release().await;
                return Err(e);
            }
        };
        tracing::debug!(grant.id = %grant_id, "refreshing provider tokens");
        let tokens = match provider.refresh(&refresh_token).await {
            Ok(t) => t,
            Err(ProviderError::InvalidGrant(detail)) => {
                tracing::info!(grant.id = %grant_id, %detail, "provider refused the refresh");
                return Err(self.end_grant(grant_id, &grant.user_id).await);
            }
            Err(e) => {
                release().await;
                return Err(e.into());
            }
        };
        let seal = |column: &str, value: &str| {
            self.secret_box
                .seal(value.as_bytes(), &place(column, grant_id))
                .map_err(|e| IdentityError::Sealed(e.to_string()))
        };
        // A rotated refresh token replaces the old one; a provider that sends none keeps it.
        let refresh_sealed = match &tokens.refresh_token {
            Some(rt) => Some(seal("refresh_token", rt.expose())?),
            None => grant.refresh_token.clone(),
        };
        let written = GrantTokens {
            access_token: seal("access_token", tokens.access_token.expose())?,
            refresh_token: refresh_sealed,
            id_token: grant.id_token.clone(),
            expires_at: tokens.expires_at.map(|s| s.saturating_mul(1000)),
            refresh_expires_at: tokens
                .refresh_expires_at
                .map(|s| s.saturating_mul(1000))
                .or(grant.refresh_expires_at),
            scopes: if tokens.scopes.is_empty() {
                grant.scopes.clone()
            } else {
                tokens.scopes.join(" ")
            },
        };
        // Persisted before anyone uses the new tokens.
        let new_version = self
            .store
            .complete_refresh(grant_id, &self.owner, version, &written)
            .await?;
        Ok(GrantSnapshot {
            id: grant_id.to_owned(),
            user_id: grant.user_id.clone(),
            version: new_version,
            provider_id: grant.provider_id,
            access_token: tokens.access_token,
            expires_at: written.expires_at,
            has_refresh_token: written.refresh_token.is_some(),
        })
    }
}

fn clone_provider_error(e: &ProviderError) -> ProviderError {
    match e {
        ProviderError::InvalidGrant(d) => ProviderError::InvalidGrant(d.clone()),
        ProviderError::Unauthorized(d) => ProviderError::Unauthorized(d.clone()),
        ProviderError::Transient(d) => ProviderError::Transient(d.clone()),
        ProviderError::Misconfigured(d) => ProviderError::Misconfigured(d.clone()),
        ProviderError::NotImplemented { kind, operation } => {
            ProviderError::NotImplemented { kind, operation }
        }
    }
}
