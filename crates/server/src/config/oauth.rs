//! `[oauth]`: mcpgate as the OAuth 2.1 authorization server of its MCP clients.

use mcpgate_core::SecretString;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Access tokens are short-lived (OAuth 2.1 §1.3.2; MCP: SHOULD).
    pub access_token_ttl_secs: u64,
    /// A refresh token's lifetime; each refresh issues a new one (sliding).
    pub refresh_token_ttl_secs: u64,
    /// No refresh extends an authorization past this (the family's absolute end).
    pub refresh_token_max_lifetime_secs: u64,
    /// Authorization codes are single-use and short-lived.
    pub code_ttl_secs: u64,
    /// How long a checked access token is trusted from the in-memory cache before one short
    /// database read confirms it again. Revocation on this replica takes effect at once;
    /// elsewhere within this bound.
    pub token_cache_ttl_secs: u64,
    /// A refresh token presented again within this many seconds of its rotation gets the same
    /// new pair back instead of revoking its family: a client's network retry, or two
    /// refreshes sent at once, is not theft. Later reuse revokes the family. The pair is kept
    /// sealed for this long only. 0 turns the grace off (every reuse revokes). At most 60.
    pub refresh_reuse_grace_secs: u64,
    /// Client ID Metadata Documents: fetching and caching rules.
    pub client_metadata: ClientMetadataConfig,
    /// Dynamic client registration (`POST /oauth/register`, RFC 7591): abuse limits.
    pub registration: RegistrationConfig,
    /// Pre-registered clients (`[[oauth.clients]]`).
    pub clients: Vec<ConfiguredClient>,
    /// Personal access tokens of users (`/me/tokens`, `/api/v1/me/tokens`).
    pub personal_tokens: PersonalTokensConfig,
    /// Service clients (the client-credentials grant; `/api/v1/admin/service-clients`).
    pub service_clients: ServiceClientsConfig,
}

/// `[oauth.personal_tokens]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonalTokensConfig {
    /// Longest lifetime a user may give a token.
    pub max_lifetime_days: u32,
    /// Lifetime of a token created without one.
    pub default_lifetime_days: u32,
    /// Active tokens one user may hold at once.
    pub max_per_user: u32,
    /// `last_used_at` is written off the request path, at most once per token per this many
    /// seconds (uses in between are coalesced).
    pub last_used_interval_secs: u64,
}

impl Default for PersonalTokensConfig {
    fn default() -> Self {
        Self {
            max_lifetime_days: 365,
            default_lifetime_days: 30,
            max_per_user: 50,
            last_used_interval_secs: 60,
        }
    }
}

/// `[oauth.service_clients]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceClientsConfig {
    /// After a rotation the previous secret stays valid this long, unless retired sooner.
    pub previous_secret_ttl_secs: u64,
}

impl Default for ServiceClientsConfig {
    fn default() -> Self {
        Self {
            previous_secret_ttl_secs: 86_400,
        }
    }
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 3_600,
            refresh_token_ttl_secs: 30 * 86_400,
            refresh_token_max_lifetime_secs: 90 * 86_400,
            code_ttl_secs: 60,
            token_cache_ttl_secs: 30,
            refresh_reuse_grace_secs: 5,
            client_metadata: ClientMetadataConfig::default(),
            registration: RegistrationConfig::default(),
            clients: Vec::new(),
            personal_tokens: PersonalTokensConfig::default(),
            service_clients: ServiceClientsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientMetadataConfig {
    /// Accept `client_id` URLs at all (CIMD).
    pub enabled: bool,
    /// Largest document accepted.
    pub max_bytes: usize,
    /// Longest time a fetch may take.
    pub timeout_ms: u64,
    /// Bounds on how long a fetched document is cached (HTTP `max-age` within them).
    pub min_cache_secs: u64,
    pub max_cache_secs: u64,
    /// DEVELOPMENT AND TESTS ONLY: allow `http://` documents on loopback addresses. Off, only
    /// `https` documents on public addresses are fetched (no private, loopback or link-local
    /// targets: SSRF guard).
    pub allow_loopback_http: bool,
}

impl Default for ClientMetadataConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 16 * 1024,
            timeout_ms: 5_000,
            min_cache_secs: 60,
            max_cache_secs: 86_400,
            allow_loopback_http: false,
        }
    }
}

/// `[oauth.registration]`: anyone may register a client, so what one registration may store,
/// how often one address may register, and how long a registration nobody uses is kept are
/// bounded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Largest registration request body accepted (the whole JSON document). Beyond it the
    /// answer is `invalid_client_metadata`. Each URI in it is also limited to 2 KiB, and each
    /// list (`redirect_uris`, `contacts`, …) to 10 entries.
    pub max_metadata_bytes: usize,
    /// Registrations one client address may make per hour (a burst of that many, refilled
    /// evenly); more get 429 with `Retry-After`. 0 turns the limit off. The address is read
    /// as for sign-in (`auth.rate_limit.forwarded_hops`).
    pub per_address_per_hour: u32,
    /// A dynamically registered client that has not obtained a token (nor an authorization
    /// code) this long after registering is deleted. 0 keeps them forever.
    pub unused_ttl_secs: u64,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            max_metadata_bytes: 8 * 1024,
            per_address_per_hour: 20,
            unused_ttl_secs: 86_400,
        }
    }
}

/// A pre-registered client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredClient {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// Confidential clients authenticate with this secret (Basic or POST body). Clients
    /// with a secret may also call `/oauth/introspect` (upstreams that check tokens).
    #[serde(default)]
    pub client_secret: Option<SecretString>,
}

impl OAuthConfig {
    pub(super) fn validate(&self, errors: &mut Vec<ConfigError>) {
        for (path, value) in [
            ("oauth.access_token_ttl_secs", self.access_token_ttl_secs),
            ("oauth.refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("oauth.code_ttl_secs", self.code_ttl_secs),
        ] {
            if value == 0 {
                errors.push(ConfigError::new(path, "must be at least 1"));
            }
        }
        if self.refresh_token_max_lifetime_secs < self.refresh_token_ttl_secs {
            errors.push(ConfigError::new(
                "oauth.refresh_token_max_lifetime_secs",
                "must be at least refresh_token_ttl_secs",
            ));
        }
        if self.refresh_reuse_grace_secs > 60 {
            errors.push(ConfigError::new(
                "oauth.refresh_reuse_grace_secs",
                "must be at most 60 (a replayed token gets the pair within it)",
            ));
        }
        let pat = &self.personal_tokens;
        if pat.max_lifetime_days == 0 {
            errors.push(ConfigError::new(
                "oauth.personal_tokens.max_lifetime_days",
                "must be at least 1",
            ));
        }
        if pat.default_lifetime_days == 0 || pat.default_lifetime_days > pat.max_lifetime_days {
            errors.push(ConfigError::new(
                "oauth.personal_tokens.default_lifetime_days",
                "must be between 1 and max_lifetime_days",
            ));
        }
        if pat.last_used_interval_secs == 0 {
            errors.push(ConfigError::new(
                "oauth.personal_tokens.last_used_interval_secs",
                "must be at least 1",
            ));
        }
        let cm = &self.client_metadata;
        if cm.min_cache_secs > cm.max_cache_secs {
            errors.push(ConfigError::new(
                "oauth.client_metadata.min_cache_secs",
                "must not exceed max_cache_secs",
            ));
        }
        if self.registration.max_metadata_bytes < 1024 {
            errors.push(ConfigError::new(
                "oauth.registration.max_metadata_bytes",
                "must be at least 1024",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, client) in self.clients.iter().enumerate() {
            let at = |field: &str| format!("oauth.clients[{i}].{field}");
            if client.client_id.trim().is_empty() || client.client_id.starts_with("https://") {
                errors.push(ConfigError::new(
                    at("client_id"),
                    "must be a non-empty id that is not a URL (URLs are metadata documents)",
                ));
            }
            if !seen.insert(client.client_id.clone()) {
                errors.push(ConfigError::new(at("client_id"), "duplicate client_id"));
            }
            for (j, uri) in client.redirect_uris.iter().enumerate() {
                let kind = if client.client_secret.is_some() {
                    crate::oauth::redirect::ClientType::Confidential
                } else {
                    crate::oauth::redirect::ClientType::Public
                };
                if let Err(e) = crate::oauth::redirect::check_registrable(uri, kind) {
                    errors.push(ConfigError::new(at(&format!("redirect_uris[{j}]")), e));
                }
            }
            if let Some(secret) = &client.client_secret
                && secret.len() < 16
            {
                errors.push(ConfigError::new(
                    at("client_secret"),
                    "must be at least 16 characters",
                ));
            }
        }
    }
}
