//! Minting the tokens mcpgate hands to MCP clients: opaque, stored only as hashes, the access
//! token bound to one resource (RFC 8707), the refresh token in a rotating family.

use mcpgate_core::SecretString;
use mcpgate_crypto::{Place, TokenHash, TokenKind};
use mcpgate_storage::{FamilyRecord, NewAccessToken, NewRefreshToken, NewTokenFamily, now_ms};
use serde::Serialize;

use crate::accounts::crypto_error;
use crate::app::AppState;
use crate::error::ApiError;

/// RFC 6749 §5.1 token response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    /// None for the client-credentials grant (RFC 6749 §4.4.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A fresh access token for a family's user, client, resource and scopes.
pub fn access_token(
    state: &AppState,
    family: &FamilyRecord,
) -> Result<(SecretString, NewAccessToken), ApiError> {
    let (token, hash) = mcpgate_crypto::token::mint(TokenKind::Access).map_err(crypto_error)?;
    let now = now_ms();
    Ok((
        token,
        NewAccessToken {
            token_hash: hash.as_bytes().to_vec(),
            kind: "oauth".into(),
            family_id: Some(family.id.clone()),
            user_id: family.user_id.clone(),
            client_id: family.client_id.clone(),
            resource: family.resource.clone(),
            scopes: family.scopes.clone(),
            expires_at: now.saturating_add(secs_to_ms(state.config.oauth.access_token_ttl_secs)),
            created_at: now,
        },
    ))
}

/// A fresh refresh token; its lifetime slides but never passes the family's end.
pub fn refresh_token(
    state: &AppState,
    family: &FamilyRecord,
) -> Result<(SecretString, NewRefreshToken), ApiError> {
    let (token, hash) = mcpgate_crypto::token::mint(TokenKind::Refresh).map_err(crypto_error)?;
    let now = now_ms();
    let expires_at = now
        .saturating_add(secs_to_ms(state.config.oauth.refresh_token_ttl_secs))
        .min(family.expires_at);
    Ok((
        token,
        NewRefreshToken {
            token_hash: hash.as_bytes().to_vec(),
            family_id: family.id.clone(),
            user_id: family.user_id.clone(),
            expires_at,
            created_at: now,
        },
    ))
}

/// Starts a family for an authorization (code exchange): refresh and access token together.
pub async fn start_family(
    state: &AppState,
    family_id: &str,
    user_id: &str,
    client_id: &str,
    resource: &str,
    scopes: &str,
) -> Result<TokenResponse, ApiError> {
    let now = now_ms();
    let family = FamilyRecord {
        id: family_id.to_owned(),
        user_id: user_id.to_owned(),
        client_id: Some(client_id.to_owned()),
        resource: Some(resource.to_owned()),
        scopes: scopes.to_owned(),
        expires_at: now.saturating_add(secs_to_ms(
            state.config.oauth.refresh_token_max_lifetime_secs,
        )),
    };
    let (access, access_row) = access_token(state, &family)?;
    let (refresh, refresh_row) = refresh_token(state, &family)?;
    state
        .store
        .create_token_family(
            &NewTokenFamily {
                id: family.id.clone(),
                user_id: family.user_id.clone(),
                client_id: family.client_id.clone(),
                resource: family.resource.clone(),
                scopes: family.scopes.clone(),
                expires_at: family.expires_at,
                created_at: now,
            },
            &refresh_row,
            &access_row,
        )
        .await?;
    Ok(response(state, access, refresh, scopes))
}

/// The pair a rotation issued, as kept (sealed, bound to the spent token) for the grace period.
#[derive(Serialize, serde::Deserialize)]
struct SealedPair {
    access_token: String,
    access_expires_at: i64,
    refresh_token: String,
}

fn successor_place(old: &TokenHash) -> (String, &'static str, &'static str) {
    (old.to_hex(), "refresh_tokens", "successor")
}

/// Seals the pair issued for the spent refresh token `old`.
pub fn seal_successor(
    state: &AppState,
    old: &TokenHash,
    access: &SecretString,
    access_expires_at: i64,
    refresh: &SecretString,
) -> Result<Vec<u8>, ApiError> {
    let pair = zeroize::Zeroizing::new(
        serde_json::to_vec(&SealedPair {
            access_token: access.expose().to_owned(),
            access_expires_at,
            refresh_token: refresh.expose().to_owned(),
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    let (row, table, column) = successor_place(old);
    state
        .secret_box
        .seal(&pair, &Place::new(table, column, &row))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The same response as the rotation that stored `sealed` (a retry within the grace period).
pub fn open_successor(
    state: &AppState,
    old: &TokenHash,
    sealed: &[u8],
    scopes: &str,
) -> Result<TokenResponse, ApiError> {
    let (row, table, column) = successor_place(old);
    let opened = state
        .secret_box
        .open(sealed, &Place::new(table, column, &row))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let pair: SealedPair =
        serde_json::from_slice(&opened).map_err(|e| ApiError::Internal(e.to_string()))?;
    let remaining = pair.access_expires_at.saturating_sub(now_ms()).max(0) / 1000;
    Ok(TokenResponse {
        access_token: pair.access_token,
        token_type: "Bearer",
        expires_in: u64::try_from(remaining).unwrap_or(0),
        refresh_token: Some(pair.refresh_token),
        scope: scopes.to_owned(),
    })
}

pub fn response(
    state: &AppState,
    access: SecretString,
    refresh: SecretString,
    scopes: &str,
) -> TokenResponse {
    TokenResponse {
        access_token: access.expose().to_owned(),
        token_type: "Bearer",
        expires_in: state.config.oauth.access_token_ttl_secs,
        refresh_token: Some(refresh.expose().to_owned()),
        scope: scopes.to_owned(),
    }
}
