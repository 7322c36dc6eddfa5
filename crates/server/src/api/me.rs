//! `POST /api/v1/login`, `GET /api/v1/me`, `POST /api/v1/me/password`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use mcpgate_core::SecretString;
use mcpgate_crypto::TokenKind;
use mcpgate_storage::{NewAccessToken, now_ms};
use serde::{Deserialize, Serialize};

use super::UserView;
use super::auth::{ApiJson, ApiUser};
use crate::accounts::{AccountError, crypto_error};
use crate::app::AppState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct LoginRequest {
    email: String,
    password: SecretString,
}

#[derive(Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "account",
    summary = "Sign in with email and password; returns an API token",
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let address = state.limits.client_address(peer, &headers);
    state.limits.check(address, &request.email, false)?;
    let user = match state
        .accounts
        .sign_in(&request.email, request.password)
        .await
    {
        Ok(user) => user,
        Err(e) => {
            if matches!(
                e,
                AccountError::InvalidCredentials | AccountError::Policy(_)
            ) {
                state.limits.failed(address, &request.email, &state.audit);
                state.audit.record(crate::policy::audit::sign_in_event(
                    None,
                    &request.email,
                    "api",
                    false,
                ));
            }
            return Err(e.into());
        }
    };
    state.limits.succeeded(address, &request.email);
    state.audit.record(crate::policy::audit::sign_in_event(
        Some(&user.id),
        &user.email,
        "api",
        true,
    ));
    let ttl = state.config.auth.api_token_ttl_secs;
    let (token, hash) = mcpgate_crypto::token::mint(TokenKind::Access).map_err(crypto_error)?;
    let now = now_ms();
    state
        .store
        .insert_access_token(&NewAccessToken {
            token_hash: hash.as_bytes().to_vec(),
            kind: "api".into(),
            family_id: None,
            user_id: user.id.clone(),
            client_id: None,
            resource: None,
            scopes: String::new(),
            expires_at: now.saturating_add(i64::try_from(ttl * 1000).unwrap_or(i64::MAX)),
            created_at: now,
        })
        .await?;
    tracing::info!(user.id = %user.id, "API token issued");
    Ok(Json(TokenResponse {
        access_token: token.expose().to_owned(),
        token_type: "Bearer",
        expires_in: ttl,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    summary = "The caller's account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn me(caller: ApiUser) -> Json<UserView> {
    Json(UserView::from(&caller.user))
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: SecretString,
    new_password: SecretString,
}

/// Changes the caller's password; every other session and token of theirs is revoked.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "account",
    summary = "Change the caller's password (other sessions and tokens end)",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: ApiUser,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .change_password(
            &caller.user.id,
            change.current_password,
            change.new_password,
            Some(caller.token_hash.as_bytes()),
        )
        .await?;
    // Every OAuth token of the user stops now on this replica, not at the cache's TTL.
    state.tokens.invalidate_user(&caller.user.id).await;
    Ok(StatusCode::NO_CONTENT)
}
