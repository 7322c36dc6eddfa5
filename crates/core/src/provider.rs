//! The identity-provider plugin contract.
//!
//! Each provider crate exports one [`ProviderDescriptor`]; the `mcpgate-providers` facade lists
//! the descriptors compiled in (one Cargo feature each) and builds providers from
//! [`ProviderSettings`]. The trait is object-safe so the server holds `Arc<dyn IdentityProvider>`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::SecretString;

/// What building a provider from its settings gives: the provider, or every problem found.
pub type BuildResult = Result<Arc<dyn IdentityProvider>, Vec<FieldError>>;

/// A provider kind a build can contain: its config name, the Cargo feature that compiles it in,
/// and the constructor.
#[derive(Clone, Copy)]
pub struct ProviderDescriptor {
    /// The value of `kind` in a `[[providers]]` config entry.
    pub kind: &'static str,
    /// The Cargo feature of `mcpgate-server` (and the facade) that compiles this provider in.
    pub feature: &'static str,
    /// A human name for sign-in pages and messages.
    pub display_name: &'static str,
    /// Validates the settings (reporting every problem) and builds the provider.
    pub build: fn(&ProviderSettings) -> BuildResult,
}

impl fmt::Debug for ProviderDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderDescriptor")
            .field("kind", &self.kind)
            .field("feature", &self.feature)
            .finish_non_exhaustive()
    }
}

/// One problem in a configuration value, with the key path relative to the provider entry
/// (the caller prefixes `providers[N].`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The settings of one configured provider. Fields common to every provider are typed here;
/// what only one kind understands (a Keycloak realm, a GitHub Enterprise URL) stays in
/// `options` and is parsed, strictly, by that provider's crate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// Stable id of this entry, used in URLs (`/callback/{id}`) and stored identities.
    pub id: String,
    /// Which provider implementation (`oidc`, `keycloak`, `google`, …).
    pub kind: String,
    /// Shown on the sign-in page; defaults to the kind's display name.
    #[serde(default)]
    pub display_name: Option<String>,
    pub client_id: String,
    /// The client secret. Prefer `client_secret_file` or an environment variable in production.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// Read the client secret from this file (trailing newline trimmed).
    #[serde(default)]
    pub client_secret_file: Option<String>,
    /// Scopes requested at the provider, in addition to what the kind always needs.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Kind-specific options, validated by the provider crate.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// How a provider wants its token-endpoint request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TokenBodyFormat {
    Form,
    Json,
}

/// What a refresh does at this provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RefreshBehaviour {
    /// No refresh tokens: the access token lives until it is revoked or expires.
    None,
    /// Refresh returns no new refresh token; keep the old one.
    Static,
    /// Every refresh returns a new refresh token and invalidates the one sent.
    Rotating,
}

/// The quirks the server needs to know about without knowing the provider.
#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    pub token_body: TokenBodyFormat,
    pub pkce: bool,
    pub refresh: RefreshBehaviour,
    /// `false` when the provider sends no `expires_in` (the server then uses a configured TTL).
    pub expiry_known: bool,
    /// Errors may arrive with HTTP 200 and an `error` field (GitHub).
    pub errors_in_200: bool,
    /// User info is refused without the `openid` scope (Keycloak 20+).
    pub userinfo_needs_openid: bool,
}

/// What the server hands a provider to build the authorization redirect.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    /// The S256 challenge of the PKCE verifier the server keeps sealed.
    pub code_challenge: String,
    pub login_hint: Option<String>,
}

/// Tokens a provider issued for one user (the "provider grant").
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    /// Unix seconds; `None` when the provider did not say.
    pub expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub scopes: Vec<String>,
}

/// Who the user is, normalised across providers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserContext {
    /// The provider's stable subject (never a changeable username).
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Tenant facts: a Google hosted domain, a GitHub org, a Salesforce org id, …
    pub tenant: BTreeMap<String, String>,
    /// The raw claims the provider returned.
    pub claims: serde_json::Value,
}

/// Why a provider call failed, classified by what the caller must do about it.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The grant is dead (`invalid_grant`, GitHub's `bad_refresh_token`): sign in again.
    #[error("the provider ended the grant: {0}")]
    InvalidGrant(String),
    /// The token was rejected: refresh and retry once.
    #[error("the provider rejected the token: {0}")]
    Unauthorized(String),
    /// 5xx, timeout or network trouble: retry with backoff.
    #[error("the provider is unavailable: {0}")]
    Transient(String),
    /// Wrong client id or secret, bad URL, unexpected response shape.
    #[error("the provider is misconfigured: {0}")]
    Misconfigured(String),
    /// The plugin does not do this yet.
    #[error("the {kind} provider does not implement {operation} yet")]
    NotImplemented {
        kind: &'static str,
        operation: &'static str,
    },
}

/// An identity provider. Object-safe: the server holds `Arc<dyn IdentityProvider>`.
#[async_trait]
pub trait IdentityProvider: Send + Sync + fmt::Debug {
    /// The configured id of this provider entry.
    fn id(&self) -> &str;
    /// The descriptor kind (`keycloak`, `github`, …).
    fn kind(&self) -> &'static str;
    fn display_name(&self) -> &str;
    fn capabilities(&self) -> Capabilities;
    /// The URL to send the browser to. Async because a discovery-based provider may have to
    /// fetch (or refresh) its discovery document to know the authorization endpoint.
    async fn authorization_url(&self, request: &AuthorizationRequest)
    -> Result<Url, ProviderError>;
    /// Trades an authorization code for tokens. `nonce` is the value sent in the authorization
    /// request: an OIDC provider checks it against the id token's `nonce` claim.
    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<TokenSet, ProviderError>;
    /// Uses a refresh token. Rotating providers return a new one that must be stored at once.
    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError>;
    /// Who the access token belongs to.
    async fn user_info(&self, access_token: &SecretString) -> Result<UserContext, ProviderError>;
    /// Revokes a refresh token at the provider (when the gateway deletes a session). Providers
    /// without revocation answer `NotImplemented`, which the caller may ignore.
    async fn revoke(&self, refresh_token: &SecretString) -> Result<(), ProviderError> {
        let _ = refresh_token;
        Err(ProviderError::NotImplemented {
            kind: self.kind(),
            operation: "revoke",
        })
    }
}
