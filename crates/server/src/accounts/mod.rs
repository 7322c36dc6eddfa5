//! Local accounts: sign-in, creation, password changes, the bootstrap admin.
//!
//! Every password hash runs on the crypto crate's bounded pool, never on the async runtime,
//! and no database connection is held while it runs: each step is one short unit of work.

pub mod policy;

use std::sync::Arc;

use mcpgate_core::SecretString;
use mcpgate_crypto::{CryptoError, PasswordHasher, Verification};
use mcpgate_storage::{NewUser, StorageError, Store, User};

use crate::config::BootstrapConfig;
use crate::error::ApiError;
pub use policy::PolicyError;

/// Why a sign-in or account change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Unknown email, wrong password or disabled account: one answer for all three.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for AccountError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(_) => Self::EmailTaken,
            other => Self::Storage(other),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::InvalidCredentials => ApiError::Challenge {
                status: axum::http::StatusCode::UNAUTHORIZED,
                challenge: crate::error::Challenge {
                    error: Some("invalid_grant"),
                    description: Some("invalid email or password".into()),
                    ..Default::default()
                },
            },
            AccountError::Policy(p) => ApiError::BadRequest(p.to_string()),
            AccountError::EmailTaken => ApiError::Conflict(e.to_string()),
            AccountError::Crypto(c) => crypto_error(c),
            AccountError::Storage(s) => s.into(),
        }
    }
}

/// Hashing-pool overload is a 503 with `Retry-After`; anything else is internal.
pub fn crypto_error(e: CryptoError) -> ApiError {
    match e.retry_after() {
        Some(retry) => ApiError::Overloaded {
            what: "password hashing",
            retry_after_secs: retry.as_secs().max(1),
        },
        None => ApiError::Internal(e.to_string()),
    }
}

/// A new account as an admin (or the bootstrap) asks for it.
#[derive(Debug, Clone)]
pub struct AccountRequest {
    pub email: String,
    pub password: SecretString,
    pub display_name: Option<String>,
    pub is_admin: bool,
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: Arc<PasswordHasher>,
}

impl Accounts {
    pub fn new(store: Store, hasher: Arc<PasswordHasher>) -> Self {
        Self { store, hasher }
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Checks an email and password. Unknown email, wrong password and disabled account all
    /// do the same work (a verify on the pool) and give the same error.
    pub async fn sign_in(&self, email: &str, password: SecretString) -> Result<User, AccountError> {
        policy::check_presented_password(password.expose())?;
        let user = self.store.find_user_by_email(email).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verification = self
            .hasher
            .verify_account(password.clone(), stored.as_deref())
            .await;
        let verification = match verification {
            // A corrupt or too-costly stored hash must not reveal the account: same answer.
            Err(CryptoError::MalformedHash(_) | CryptoError::HashTooCostly { .. }) => {
                tracing::warn!("a stored password hash could not be verified");
                Verification::Mismatch
            }
            other => other?,
        };
        let user = match (user, verification) {
            (Some(user), Verification::Match { needs_rehash }) if !user.is_disabled() => {
                if needs_rehash {
                    self.rehash(&user, password).await;
                }
                user
            }
            _ => return Err(AccountError::InvalidCredentials),
        };
        Ok(user)
    }

    /// Re-hash with the current parameters after a successful sign-in. Best effort: a failure
    /// is logged and the sign-in still succeeds.
    async fn rehash(&self, user: &User, password: SecretString) {
        match self.hasher.hash(password).await {
            Ok(hash) => {
                if let Err(e) = self.store.set_password_hash(&user.id, &hash).await {
                    tracing::warn!(user.id = %user.id, error = %e, "could not store a re-hashed password");
                } else {
                    tracing::info!(user.id = %user.id, "password re-hashed with current parameters");
                }
            }
            Err(e) => tracing::warn!(user.id = %user.id, error = %e, "re-hash skipped"),
        }
    }

    /// Creates an account: policy first (cheap), then the hash on the pool, then one insert.
    pub async fn create(&self, request: AccountRequest) -> Result<User, AccountError> {
        policy::check_email(&request.email)?;
        policy::check_new_password(request.password.expose())?;
        // An early duplicate check saves a hash; the unique index still decides.
        if self
            .store
            .find_user_by_email(&request.email)
            .await?
            .is_some()
        {
            return Err(AccountError::EmailTaken);
        }
        let hash = self.hasher.hash(request.password).await?;
        Ok(self
            .store
            .create_user(&NewUser {
                email: request.email,
                display_name: request.display_name,
                password_hash: Some(hash),
                is_admin: request.is_admin,
            })
            .await?)
    }

    /// Changes a password after checking the current one; then revokes every other session
    /// and token of the user (keeping `keep_token`, the caller's own).
    pub async fn change_password(
        &self,
        user_id: &str,
        current: SecretString,
        new: SecretString,
        keep_token: Option<&[u8]>,
    ) -> Result<(), AccountError> {
        policy::check_presented_password(current.expose())?;
        policy::check_new_password(new.expose())?;
        let user = self.store.get_user(user_id).await?;
        let matched = self
            .hasher
            .verify_account(current, user.password_hash.as_deref())
            .await?
            .is_match();
        if !matched || user.is_disabled() {
            return Err(AccountError::InvalidCredentials);
        }
        let hash = self.hasher.hash(new).await?;
        self.store.set_password_hash(user_id, &hash).await?;
        self.store
            .revoke_user_credentials(user_id, keep_token)
            .await?;
        Ok(())
    }

    /// An administrator sets a user's password (no current password); every session and
    /// token of the user is revoked.
    pub async fn reset_password(
        &self,
        user_id: &str,
        new: SecretString,
    ) -> Result<(), AccountError> {
        policy::check_new_password(new.expose())?;
        // NotFound before hashing: no work for an unknown id.
        self.store.get_user(user_id).await?;
        let hash = self.hasher.hash(new).await?;
        self.store.set_password_hash(user_id, &hash).await?;
        self.store.revoke_user_credentials(user_id, None).await?;
        Ok(())
    }

    /// Creates the configured first admin if no account has that email. Idempotent: an
    /// existing account is left exactly as it is (not re-hashed, not overwritten).
    pub async fn ensure_bootstrap_admin(
        &self,
        bootstrap: &BootstrapConfig,
    ) -> Result<Option<User>, String> {
        let Some(email) = &bootstrap.admin_email else {
            return Ok(None);
        };
        if self
            .store
            .find_user_by_email(email)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(None);
        }
        let Some(password) = bootstrap.password()? else {
            return Err(format!(
                "bootstrap.admin_email {email} has no account yet and no admin_password or \
                 admin_password_file to create it with"
            ));
        };
        let created = self
            .create(AccountRequest {
                email: email.clone(),
                password,
                display_name: Some("Administrator".into()),
                is_admin: true,
            })
            .await;
        match created {
            Ok(user) => Ok(Some(user)),
            // Another replica created it at the same moment: fine.
            Err(AccountError::EmailTaken) => Ok(None),
            Err(e) => Err(format!("cannot create the bootstrap admin: {e}")),
        }
    }
}
