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

/// Sign-in attempts allowed per minute; 0 turns a limit off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Attempts per account (by normalised email) per minute.
    pub per_account_per_minute: u32,
    /// Attempts per client address per minute.
    pub per_address_per_minute: u32,
    /// How many reverse proxies in front of mcpgate append to `X-Forwarded-For`. 0: use the
    /// connection's peer address (no proxy, or one you do not trust). N: the client is the
    /// N-th address from the right.
    pub forwarded_hops: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_account_per_minute: 10,
            per_address_per_minute: 60,
            forwarded_hops: 0,
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
