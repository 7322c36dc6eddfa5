//! Service clients: confidential clients for agents and CI jobs, and their grant,
//! `grant_type=client_credentials` (RFC 6749 §4.4) with an RFC 8707 `resource`.
//!
//! A service client's principal is a user row of its own (no password, no identity), so the
//! roles an admin gives it decide its calls exactly as a person's are decided. Its secret is a
//! 256-bit random token stored as a SHA-256 hash: with that much entropy there is nothing to
//! brute-force, so a slow password hash (argon2) would only add a blocking-pool round trip to
//! every token request. A rotation keeps the previous secret valid until it is retired or its
//! time runs out, so a fleet of agents can be moved to the new one without an outage.

use axum::http::StatusCode;
use mcpgate_core::SecretString;
use mcpgate_crypto::{TokenHash, TokenKind};
use mcpgate_storage::{NewAccessToken, ServiceClient, now_ms};

use super::issue::TokenResponse;
use super::params::Params;
use crate::accounts::crypto_error;
use crate::app::AppState;
use crate::error::ApiError;

/// Every service client id starts so: the token endpoint knows where to look it up.
pub const CLIENT_ID_PREFIX: &str = "mcpgate-svc-";

/// The address of a service client's user row: reserved (RFC 2606 `.invalid`), so it can
/// never collide with a person's nor receive mail.
pub fn user_email(client_id: &str) -> String {
    format!("{client_id}@service.invalid")
}

/// A fresh client id.
pub fn new_client_id() -> String {
    format!(
        "{CLIENT_ID_PREFIX}{}",
        mcpgate_storage::new_id().replace('-', "")
    )
}

/// A fresh secret (shown once) and the hash to store.
pub fn new_secret() -> Result<(SecretString, TokenHash), ApiError> {
    mcpgate_crypto::token::mint(TokenKind::ClientSecret).map_err(crypto_error)
}

pub fn is_service_client_id(client_id: &str) -> bool {
    client_id.starts_with(CLIENT_ID_PREFIX)
}

/// The service client `client_id` if `secret` is one of its valid secrets (the current one,
/// or the previous one during a rotation) and it is enabled. Each comparison is constant-time.
pub async fn authenticate(
    state: &AppState,
    client_id: &str,
    secret: Option<&str>,
) -> Result<Option<ServiceClient>, ApiError> {
    let Some(secret) = secret else {
        return Ok(None);
    };
    let Some(client) = state.store.get_service_client(client_id).await? else {
        return Ok(None);
    };
    if client.disabled_at.is_some() {
        return Ok(None);
    }
    let now = now_ms();
    let mut matched = false;
    for hash in client.valid_secret_hashes(now) {
        if let Ok(bytes) = <[u8; 32]>::try_from(hash) {
            // No early exit: both hashes are compared whichever matches.
            matched |= TokenHash::from_bytes(bytes).matches(secret);
        }
    }
    Ok(matched.then_some(client))
}

/// The upstreams a client may get tokens for (`*`: all).
pub fn upstreams(client: &ServiceClient) -> Vec<String> {
    serde_json::from_str(&client.upstreams).unwrap_or_default()
}

fn err(error: &'static str, description: &str) -> ApiError {
    ApiError::oauth(StatusCode::BAD_REQUEST, error, description)
}

/// `grant_type=client_credentials` for an authenticated service client: an access token for
/// one resource (RFC 8707), no refresh token (RFC 6749 §4.4.3).
pub async fn client_credentials(
    state: &AppState,
    client: &ServiceClient,
    params: &Params,
) -> Result<TokenResponse, ApiError> {
    let issuer = state.config.issuer();
    let resource = params.get("resource").ok_or_else(|| {
        err(
            "invalid_target",
            "resource is required: the MCP endpoint URL ({issuer}/mcp/{name})",
        )
    })?;
    let upstream = resource
        .strip_prefix(&format!("{issuer}/mcp/"))
        .filter(|name| state.config.upstreams.iter().any(|u| u.name == *name))
        .ok_or_else(|| {
            err(
                "invalid_target",
                "resource is not an MCP endpoint of mcpgate",
            )
        })?;
    let allowed = upstreams(client);
    if !allowed.iter().any(|u| u == "*" || u == upstream) {
        return Err(err(
            "invalid_target",
            "this client may not get tokens for that upstream",
        ));
    }
    let held = &client.scopes;
    let scopes = match params.get("scope") {
        None => held.clone(),
        Some(asked) => {
            let asked: Vec<&str> = asked.split_ascii_whitespace().collect();
            if asked
                .iter()
                .any(|s| !held.split_ascii_whitespace().any(|h| h == *s))
            {
                return Err(err(
                    "invalid_scope",
                    "the client may not have one of the scopes asked for",
                ));
            }
            asked.join(" ")
        }
    };
    let (token, hash) = mcpgate_crypto::token::mint(TokenKind::Access).map_err(crypto_error)?;
    let now = now_ms();
    let ttl = state.config.oauth.access_token_ttl_secs;
    state
        .store
        .insert_access_token(&NewAccessToken {
            token_hash: hash.as_bytes().to_vec(),
            kind: "oauth".into(),
            family_id: None,
            user_id: client.user_id.clone(),
            client_id: Some(client.client_id.clone()),
            resource: Some(resource.to_owned()),
            scopes: scopes.clone(),
            expires_at: now
                .saturating_add(i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX)),
            created_at: now,
        })
        .await?;
    tracing::info!(client.id = %client.client_id, upstream, "client-credentials token issued");
    Ok(TokenResponse {
        access_token: token.expose().to_owned(),
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: None,
        scope: scopes,
    })
}
