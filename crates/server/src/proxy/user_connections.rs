//! Each user's own connections to upstreams, lent to the per-user credential kinds:
//! [`UserTokens`] for `user_oauth` (the grant as JSON, sealed; the refresh lease of
//! `user_connections`, one refresh per (user, upstream) across replicas) and [`UserSecrets`]
//! for `user_secret`. Sealed with the key ring, AAD = table, column and `{user id}/{upstream}`,
//! so a ciphertext cannot be moved to another user's row.
//!
//! The app lends this store to the proxy's credential sources (`AppState::user_connections`);
//! the connect pages (`web::connect`) write to it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcpgate_core::SecretString;
use mcpgate_credentials::user_oauth::{RefreshClaim, StoredUserGrant, UserGrant};
use mcpgate_credentials::{CredentialError, UserSecrets, UserTokens};
use mcpgate_crypto::{Place, SecretBox};
use mcpgate_storage::{ConnectedAccount, LeaseClaim, StorageError, Store, now_ms};

pub const KIND_OAUTH: &str = "user_oauth";
pub const KIND_SECRET: &str = "user_secret";

/// How long a claimed refresh lease lasts (a replica that dies mid-refresh frees it then).
const LEASE_TTL: Duration = Duration::from_secs(30);

/// Why a connection could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the value is empty, longer than {} bytes or not a valid header value",
        mcpgate_credentials::config::MAX_USER_SECRET_LEN
    )]
    Invalid,
    #[error("the value could not be sealed")]
    Seal,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct UserConnections {
    store: Store,
    secret_box: Arc<SecretBox>,
    /// This replica's lease owner name.
    owner: String,
}

impl std::fmt::Debug for UserConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConnections").finish_non_exhaustive()
    }
}

fn row(user_id: &str, upstream: &str) -> String {
    // User ids are generated (no `/`), so the pair is unambiguous.
    format!("{user_id}/{upstream}")
}

fn unavailable(upstream: &str, why: &str) -> CredentialError {
    CredentialError::Unavailable {
        upstream: upstream.to_owned(),
        reason: why.to_owned(),
    }
}

fn storage(upstream: &str, e: &StorageError) -> CredentialError {
    tracing::warn!(upstream, error = %e, "user connection store");
    unavailable(upstream, "the connection store is unavailable")
}

impl UserConnections {
    pub fn new(store: Store, secret_box: Arc<SecretBox>) -> Self {
        Self {
            store,
            secret_box,
            owner: format!("mcpgate-{}", mcpgate_storage::new_id()),
        }
    }

    fn seal(&self, user_id: &str, upstream: &str, clear: &[u8]) -> Result<Vec<u8>, StoreError> {
        let at = row(user_id, upstream);
        self.secret_box
            .seal(clear, &Place::new("user_connections", "sealed", &at))
            .map_err(|_| StoreError::Seal)
    }

    fn open(&self, c: &ConnectedAccount) -> Result<zeroize::Zeroizing<Vec<u8>>, CredentialError> {
        let at = row(&c.user_id, &c.upstream);
        self.secret_box
            .open(&c.sealed, &Place::new("user_connections", "sealed", &at))
            .map_err(|_| unavailable(&c.upstream, "the stored connection cannot be opened"))
    }

    fn grant(&self, c: &ConnectedAccount) -> Result<UserGrant, CredentialError> {
        let clear = self.open(c)?;
        serde_json::from_slice(&clear)
            .map_err(|_| unavailable(&c.upstream, "the stored connection is unreadable"))
    }

    /// Stores the grant of a completed connect flow (replacing any earlier one).
    pub async fn connect_oauth(
        &self,
        user_id: &str,
        upstream: &str,
        grant: &UserGrant,
    ) -> Result<i64, StoreError> {
        let json =
            zeroize::Zeroizing::new(serde_json::to_vec(grant).map_err(|_| StoreError::Seal)?);
        let sealed = self.seal(user_id, upstream, &json)?;
        Ok(self
            .store
            .put_user_connection(user_id, upstream, KIND_OAUTH, &sealed)
            .await?)
    }

    /// Stores (or replaces) the user's secret for `upstream`.
    pub async fn set_secret(
        &self,
        user_id: &str,
        upstream: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        let clear = value.expose().trim();
        if clear.is_empty()
            || clear.len() > mcpgate_credentials::config::MAX_USER_SECRET_LEN
            || http::HeaderValue::from_str(clear).is_err()
        {
            return Err(StoreError::Invalid);
        }
        let sealed = self.seal(user_id, upstream, clear.as_bytes())?;
        self.store
            .put_user_connection(user_id, upstream, KIND_SECRET, &sealed)
            .await?;
        Ok(())
    }

    /// Deletes the connection; the grant, if any, for an RFC 7009 revocation by the caller.
    pub async fn disconnect(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<UserGrant>, StoreError> {
        let found = self.store.connected_account(user_id, upstream).await?;
        self.store.delete_user_connection(user_id, upstream).await?;
        Ok(found
            .filter(|c| c.kind == KIND_OAUTH)
            .and_then(|c| self.grant(&c).ok()))
    }
}

#[async_trait]
impl UserTokens for UserConnections {
    async fn user_grant(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<StoredUserGrant>, CredentialError> {
        let found = self
            .store
            .connected_account(user_id, upstream)
            .await
            .map_err(|e| storage(upstream, &e))?;
        match found {
            Some(c) if c.kind == KIND_OAUTH => Ok(Some(StoredUserGrant {
                grant: self.grant(&c)?,
                version: c.version,
            })),
            _ => Ok(None),
        }
    }

    async fn claim_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        seen_version: i64,
    ) -> Result<RefreshClaim, CredentialError> {
        let claim = self
            .store
            .claim_connection_refresh(user_id, upstream, &self.owner, seen_version, LEASE_TTL)
            .await
            .map_err(|e| storage(upstream, &e))?;
        Ok(match claim {
            LeaseClaim::Claimed { .. } => match self.user_grant(user_id, upstream).await? {
                Some(stored) => RefreshClaim::Claimed(Box::new(stored)),
                None => RefreshClaim::Gone,
            },
            LeaseClaim::Changed { .. } => RefreshClaim::Changed,
            LeaseClaim::Gone => RefreshClaim::Gone,
            LeaseClaim::HeldByOther { until } => RefreshClaim::HeldByOther {
                retry_in: Duration::from_millis(
                    u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0),
                ),
            },
        })
    }

    async fn complete_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        claimed_version: i64,
        grant: &UserGrant,
    ) -> Result<(), CredentialError> {
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(grant).map_err(|_| unavailable(upstream, "cannot encode"))?,
        );
        let sealed = self
            .seal(user_id, upstream, &json)
            .map_err(|_| unavailable(upstream, "the refreshed grant cannot be sealed"))?;
        self.store
            .complete_connection_refresh(user_id, upstream, &self.owner, claimed_version, &sealed)
            .await
            .map(|_| ())
            .map_err(|e| storage(upstream, &e))
    }

    async fn release_refresh(&self, user_id: &str, upstream: &str) -> Result<(), CredentialError> {
        self.store
            .release_connection_refresh(user_id, upstream, &self.owner)
            .await
            .map_err(|e| storage(upstream, &e))
    }

    async fn disconnect(&self, user_id: &str, upstream: &str) -> Result<(), CredentialError> {
        self.store
            .delete_user_connection(user_id, upstream)
            .await
            .map(|_| ())
            .map_err(|e| storage(upstream, &e))
    }
}

#[async_trait]
impl UserSecrets for UserConnections {
    async fn user_secret(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<SecretString>, CredentialError> {
        let found = self
            .store
            .connected_account(user_id, upstream)
            .await
            .map_err(|e| storage(upstream, &e))?;
        match found {
            Some(c) if c.kind == KIND_SECRET => {
                let clear = self.open(&c)?;
                let text = std::str::from_utf8(&clear)
                    .map_err(|_| unavailable(upstream, "the stored secret is unreadable"))?;
                Ok(Some(SecretString::new(text.to_owned())))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_credentials::user_oauth::{RegisteredClient, TokenAuth};
    use mcpgate_storage::{NewUser, StoreOptions};
    use zeroize::Zeroizing;

    fn grant(token: &str) -> UserGrant {
        UserGrant {
            access_token: SecretString::new(token.to_owned()),
            refresh_token: Some(SecretString::new(format!("rt-{token}"))),
            expires_at: Some(1),
            scope: None,
            client: RegisteredClient {
                client_id: "c".into(),
                client_secret: None,
                auth: TokenAuth::None,
                registration: mcpgate_credentials::Registration::Dynamic,
                issuer: "https://as.example".into(),
            },
            issuer: "https://as.example".into(),
            token_endpoint: url::Url::parse("https://as.example/token")
                .unwrap_or_else(|e| panic!("{e}")),
            revocation_endpoint: None,
            resource: "https://files.example/mcp".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn grants_and_secrets_are_sealed_per_user_and_leased_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::connect(&StoreOptions::new(url))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
        let user = |email: &str| NewUser {
            email: email.into(),
            display_name: None,
            password_hash: None,
            is_admin: false,
        };
        let alice = store
            .create_user(&user("a@example.com"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let bob = store
            .create_user(&user("b@example.com"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let ring = Arc::new(
            SecretBox::new("k", [("k".to_owned(), Zeroizing::new([7u8; 32]))])
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let a = UserConnections::new(store.clone(), ring.clone());
        let b = UserConnections::new(store.clone(), ring);

        a.connect_oauth(&alice.id, "files", &grant("at-alice"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        a.set_secret(&bob.id, "tracker", &SecretString::new("pat-bob"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let stored = a
            .user_grant(&alice.id, "files")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let stored = stored.unwrap_or_else(|| panic!("no grant"));
        assert_eq!(stored.grant.access_token.expose(), "at-alice");
        assert_eq!(
            a.user_grant(&bob.id, "files")
                .await
                .ok()
                .flatten()
                .map(|g| g.version),
            None
        );
        assert_eq!(
            b.user_secret(&bob.id, "tracker")
                .await
                .ok()
                .flatten()
                .map(|s| s.expose().to_owned()),
            Some("pat-bob".to_owned())
        );
        // A secret is not a grant, and the other way round.
        assert!(
            a.user_grant(&bob.id, "tracker")
                .await
                .ok()
                .flatten()
                .is_none()
        );
        assert!(
            a.user_secret(&alice.id, "files")
                .await
                .ok()
                .flatten()
                .is_none()
        );
        // Stored sealed: the clear token is not in the row, and moved to Bob's row it does not open.
        let raw = store
            .connected_account(&alice.id, "files")
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!());
        assert!(!raw.sealed.windows(8).any(|w| w == b"at-alice"));
        store
            .put_user_connection(&bob.id, "files", KIND_OAUTH, &raw.sealed)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            a.user_grant(&bob.id, "files").await,
            Err(CredentialError::Unavailable { .. })
        ));

        // Two replicas: one gets the lease, the other is told to wait, then sees the change.
        let claim_a = a
            .claim_refresh(&alice.id, "files", stored.version)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(claim_a, RefreshClaim::Claimed(_)));
        let claim_b = b
            .claim_refresh(&alice.id, "files", stored.version)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(claim_b, RefreshClaim::HeldByOther { .. }));
        a.complete_refresh(&alice.id, "files", stored.version, &grant("at-alice-2"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            b.claim_refresh(&alice.id, "files", stored.version).await,
            Ok(RefreshClaim::Changed)
        ));
        let now = b
            .user_grant(&alice.id, "files")
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!());
        assert_eq!(now.grant.access_token.expose(), "at-alice-2");
        // invalid_grant → disconnect.
        UserTokens::disconnect(&b, &alice.id, "files")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            b.user_grant(&alice.id, "files")
                .await
                .ok()
                .flatten()
                .is_none()
        );
        assert!(matches!(
            a.set_secret(&bob.id, "tracker", &SecretString::new(" "))
                .await,
            Err(StoreError::Invalid)
        ));
    }
}
