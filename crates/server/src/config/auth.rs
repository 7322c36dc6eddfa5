//! `[auth]` and `[bootstrap]`: sign-in, sessions, abuse limits, the first admin.

use mcpgate_core::SecretString;
use mcpgate_crypto::HasherConfig;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of an API token from `POST /api/v1/login`.
    pub api_token_ttl_secs: u64,
    /// Lifetime of a browser sign-in session.
    pub session_ttl_secs: u64,
    /// How long an identity provider's answer about a user (groups, roles, claims) is reused
    /// before it is asked again.
    pub user_context_ttl_secs: u64,
    /// Provider access tokens are refreshed this long before they expire.
    pub provider_token_skew_secs: u64,
    /// How long a request waits for the identity provider (user info, a token refresh) before
    /// it gets 504. A refresh that is already under way still finishes in the background and
    /// is kept, so a slow provider never costs the user their sign-in.
    pub provider_timeout_secs: u64,
    /// Password hashing (argon2id) and its bounded pool.
    pub hashing: HasherConfig,
    pub rate_limit: RateLimitConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            api_token_ttl_secs: 3_600,
            session_ttl_secs: 12 * 3_600,
            user_context_ttl_secs: 300,
            provider_token_skew_secs: 30,
            provider_timeout_secs: 10,
            hashing: HasherConfig::default(),
            rate_limit: RateLimitConfig::default(),
        }
    }
}

/// Sign-in abuse limits; 0 turns a limit off. A refused attempt gets 429 with `Retry-After`
/// and costs no hash and no database read.
///
/// Failures are budgeted so an attacker cannot keep the owner out: per (account, address), per
/// address over all accounts, and a per-account back-off that does not hold back a browser
/// that signed in to the account before (its device cookie) or an address it signed in from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Attempts per account (by normalised email) per minute, from browsers and addresses the
    /// account has not signed in from before. Known ones are not counted against it.
    pub per_account_per_minute: u32,
    /// Attempts per client address per minute.
    pub per_address_per_minute: u32,
    /// How many reverse proxies in front of mcpgate append to `X-Forwarded-For`. 0: use the
    /// connection's peer address (no proxy, or one you do not trust). N: the client is the
    /// N-th address from the right.
    pub forwarded_hops: usize,
    /// Failures count over this window, from the first one.
    pub failure_window_secs: u64,
    /// Failed sign-ins per (account, address) in the window; then that address waits for the
    /// rest of the window before it may try that account again.
    pub failures_per_account_address: u32,
    /// Failed sign-ins per address over all accounts in the window (password spraying).
    pub failures_per_address: u32,
    /// Failed sign-ins per account, from any address, after which clients the account does
    /// not know back off: 1 s, doubling with every further failure.
    pub account_backoff_after: u32,
    /// The longest back-off.
    pub account_backoff_max_secs: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_account_per_minute: 10,
            per_address_per_minute: 60,
            forwarded_hops: 0,
            failure_window_secs: 900,
            failures_per_account_address: 5,
            failures_per_address: 20,
            account_backoff_after: 5,
            account_backoff_max_secs: 900,
        }
    }
}

impl RateLimitConfig {
    /// Every limit off (tests and benchmarks that sign in in bulk).
    pub fn off() -> Self {
        Self {
            per_account_per_minute: 0,
            per_address_per_minute: 0,
            forwarded_hops: 0,
            failure_window_secs: 900,
            failures_per_account_address: 0,
            failures_per_address: 0,
            account_backoff_after: 0,
            account_backoff_max_secs: 900,
        }
    }
}

/// The first administrator, created at start-up when missing (never overwritten after).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    /// Read the password from this file instead (trailing newline trimmed).
    pub admin_password_file: Option<String>,
}

impl AuthConfig {
    pub(super) fn validate(&self, errors: &mut Vec<ConfigError>) {
        if self.api_token_ttl_secs == 0 {
            errors.push(ConfigError::new(
                "auth.api_token_ttl_secs",
                "must be at least 1",
            ));
        }
        if self.provider_timeout_secs == 0 {
            errors.push(ConfigError::new(
                "auth.provider_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.session_ttl_secs == 0 {
            errors.push(ConfigError::new(
                "auth.session_ttl_secs",
                "must be at least 1",
            ));
        }
        if self.rate_limit.failure_window_secs == 0 {
            errors.push(ConfigError::new(
                "auth.rate_limit.failure_window_secs",
                "must be at least 1",
            ));
        }
        if let Err(problems) = self.hashing.validate() {
            for p in problems {
                errors.push(ConfigError::new("auth.hashing", p.to_string()));
            }
        }
    }
}

impl BootstrapConfig {
    pub(super) fn validate(&self, errors: &mut Vec<ConfigError>) {
        let has_password = self.admin_password.is_some() || self.admin_password_file.is_some();
        if self.admin_password.is_some() && self.admin_password_file.is_some() {
            errors.push(ConfigError::new(
                "bootstrap.admin_password_file",
                "set either admin_password or admin_password_file, not both",
            ));
        }
        match &self.admin_email {
            Some(email) if !email.contains('@') => errors.push(ConfigError::new(
                "bootstrap.admin_email",
                "not an email address",
            )),
            None if has_password => errors.push(ConfigError::new(
                "bootstrap.admin_email",
                "a bootstrap password needs an admin_email",
            )),
            _ => {}
        }
    }

    /// The configured password, from the value or the file.
    pub fn password(&self) -> Result<Option<SecretString>, String> {
        if let Some(p) = &self.admin_password {
            return Ok(Some(p.clone()));
        }
        match &self.admin_password_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Some(SecretString::new(s.trim_end_matches(['\r', '\n']))))
                .map_err(|e| format!("cannot read bootstrap.admin_password_file {path}: {e}")),
            None => Ok(None),
        }
    }
}
