//! Personal access tokens: a user's bearer token for scripts, `mcpgate_pat_…` (the prefix lets
//! the validator route it without a lookup among OAuth tokens, and secret scanners find a
//! leaked one). Shown once, stored as a SHA-256 hash (256 random bits: nothing to brute-force).
//!
//! A token never carries rights of its own: its principal is the user, decided by RBAC on
//! every request like an OAuth token (a role taken away applies to the next call). The token
//! only narrows that further: to its upstreams, to its scopes (`mcp`, `mcp:read`, and `api`
//! for `/api/v1/*`), and to its lifetime (at most `oauth.personal_tokens.max_lifetime_days`).

use mcpgate_core::SecretString;
use mcpgate_crypto::{TokenHash, TokenKind};
use mcpgate_storage::{AuditEvent, PersonalToken, now_ms};
use serde::{Deserialize, Serialize};

use crate::accounts::crypto_error;
use crate::app::AppState;
use crate::error::ApiError;

/// Lets a personal token call `/api/v1/*` as its user.
pub const API: &str = "api";
/// The scopes a personal token may hold.
pub const SCOPES: &[&str] = &[super::scopes::MCP, super::scopes::MCP_READ, API];
/// Scopes of a token created without any: full use of its upstreams and the API.
pub const DEFAULT_SCOPES: &str = "mcp api";

const MAX_NAME: usize = 100;
const MAX_UPSTREAMS: usize = 64;

/// What a user asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Upstream names (`/mcp/{name}`) the token may call; at least one.
    pub upstreams: Vec<String>,
    /// Space-separated subset of `mcp mcp:read api`; [`DEFAULT_SCOPES`] when absent.
    #[serde(default)]
    pub scope: Option<String>,
    /// Lifetime in days (default and maximum from the configuration).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A token as the API and the page show it (never the token or its hash).
#[derive(Debug, Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub upstreams: Vec<String>,
    pub scope: String,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
    pub active: bool,
}

impl From<&PersonalToken> for TokenView {
    fn from(t: &PersonalToken) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            upstreams: serde_json::from_str(&t.upstreams).unwrap_or_default(),
            scope: t.scopes.clone(),
            created_at: t.created_at / 1000,
            expires_at: t.expires_at / 1000,
            last_used_at: t.last_used_at.map(|at| at / 1000),
            revoked: t.revoked_at.is_some(),
            active: t.is_active(now_ms()),
        }
    }
}

fn bad(description: impl Into<String>) -> ApiError {
    ApiError::BadRequest(description.into())
}

/// Checks a request against the configuration; the scopes to store.
fn check(state: &AppState, new: &NewToken) -> Result<(String, u32), ApiError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(bad(format!("name must be 1 to {MAX_NAME} characters")));
    }
    if new.upstreams.is_empty() || new.upstreams.len() > MAX_UPSTREAMS {
        return Err(bad(format!(
            "upstreams must name 1 to {MAX_UPSTREAMS} upstreams"
        )));
    }
    for upstream in &new.upstreams {
        if !state.config.upstreams.iter().any(|u| &u.name == upstream) {
            return Err(bad(format!("no upstream named {upstream:?}")));
        }
    }
    let scope = new
        .scope
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SCOPES);
    let mut kept: Vec<&str> = Vec::new();
    for s in scope.split_ascii_whitespace() {
        if !SCOPES.contains(&s) {
            return Err(bad(format!(
                "unknown scope {s:?}; a personal token may hold {}",
                SCOPES.join(", ")
            )));
        }
        if !kept.contains(&s) {
            kept.push(s);
        }
    }
    let settings = &state.config.oauth.personal_tokens;
    let days = new
        .expires_in_days
        .unwrap_or(settings.default_lifetime_days);
    if days == 0 || days > settings.max_lifetime_days {
        return Err(bad(format!(
            "expires_in_days must be between 1 and {}",
            settings.max_lifetime_days
        )));
    }
    Ok((kept.join(" "), days))
}

/// Creates a token for `user_id`: the token (shown once) and what is stored.
pub async fn create(
    state: &AppState,
    user_id: &str,
    new: &NewToken,
) -> Result<(SecretString, PersonalToken), ApiError> {
    let (scopes, days) = check(state, new)?;
    let max = state.config.oauth.personal_tokens.max_per_user;
    if state.store.count_active_personal_tokens(user_id).await? >= i64::from(max) {
        return Err(ApiError::Conflict(format!(
            "at most {max} active personal access tokens per user; revoke one first"
        )));
    }
    let (token, hash) = mcpgate_crypto::token::mint(TokenKind::Personal).map_err(crypto_error)?;
    let now = now_ms();
    let record = PersonalToken {
        id: mcpgate_storage::new_id(),
        token_hash: hash.as_bytes().to_vec(),
        user_id: user_id.to_owned(),
        name: new.name.trim().to_owned(),
        upstreams: serde_json::to_string(&new.upstreams)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        scopes,
        expires_at: now.saturating_add(i64::from(days) * 86_400_000),
        revoked_at: None,
        last_used_at: None,
        created_at: now,
    };
    state.store.insert_personal_token(&record).await?;
    audit(state, "pat.create", user_id, &record.id, &record.name);
    tracing::info!(user.id = %user_id, token.id = %record.id, "personal access token created");
    Ok((token, record))
}

/// Revokes token `id` of `user_id`: stored, dropped from this replica's cache at once and
/// announced to the others. `false` when the user has no such active token.
pub async fn revoke(state: &AppState, user_id: &str, id: &str) -> Result<bool, ApiError> {
    let Some(hash) = state.store.revoke_personal_token(id, Some(user_id)).await? else {
        return Ok(false);
    };
    forget(state, &hash).await;
    audit(state, "pat.revoke", user_id, id, "");
    Ok(true)
}

/// Drops a revoked token from the validator's cache, here and on other replicas.
pub async fn forget(state: &AppState, hash: &[u8]) {
    if let Ok(bytes) = <[u8; 32]>::try_from(hash) {
        state
            .tokens
            .invalidate_token(&TokenHash::from_bytes(bytes))
            .await;
    }
}

fn audit(state: &AppState, action: &str, user_id: &str, id: &str, name: &str) {
    let mut event = AuditEvent::new(action, "ok");
    event.user_id = Some(user_id.to_owned());
    event.target = Some(id.to_owned());
    event.detail = serde_json::json!({ "name": name }).to_string();
    state.audit.record(event);
}
