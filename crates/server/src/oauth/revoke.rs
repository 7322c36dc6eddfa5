//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mcpgate_crypto::TokenHash;
use mcpgate_storage::now_ms;
use serde_json::json;

use super::params::Params;
use super::token::authenticate_client;
use crate::app::AppState;
use crate::error::ApiError;

/// Revokes an access token, or a refresh token with its whole family. A token of another
/// client, or an unknown one, is answered 200 all the same (RFC 7009 §2.2).
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let result = async {
        let params = Params::parse(&body)
            .map_err(|e| ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_request", e))?;
        let client = authenticate_client(&state, &headers, &params).await?;
        let token = params.get("token").ok_or_else(|| {
            ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "token is required",
            )
        })?;
        let hash = TokenHash::of(token);
        if let Some(access) = state.store.find_access_token(hash.as_bytes()).await?
            && access.client_id.as_deref() == Some(client.client_id.as_str())
        {
            state.store.revoke_access_token(hash.as_bytes()).await?;
            state.tokens.invalidate_token(&hash).await;
            state.audit.record(crate::policy::audit::oauth_event(
                "oauth.revoke",
                "revoked",
                Some(&access.user_id),
                &client.client_id,
                json!({ "token": "access" }),
            ));
        } else if let Some(family) = state.store.find_refresh_family(hash.as_bytes()).await?
            && family.client_id.as_deref() == Some(client.client_id.as_str())
        {
            state.store.revoke_token_family(&family.id).await?;
            state.tokens.invalidate_family(&family.id).await;
            state.audit.record(crate::policy::audit::oauth_event(
                "oauth.revoke",
                "revoked",
                Some(&family.user_id),
                &client.client_id,
                json!({ "token": "refresh", "family": family.id }),
            ));
        }
        Ok::<_, ApiError>(StatusCode::OK)
    }
    .await;
    match result {
        Ok(status) => status.into_response(),
        Err(e) => e.into_response(),
    }
}

/// For upstreams (configured confidential clients) that want to check a token.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let result = async {
        let params = Params::parse(&body)
            .map_err(|e| ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_request", e))?;
        let client = authenticate_client(&state, &headers, &params).await?;
        if client.secret_hash.is_none() {
            return Err(ApiError::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "introspection needs a confidential client",
            ));
        }
        let token = params.get("token").ok_or_else(|| {
            ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "token is required",
            )
        })?;
        let record = state
            .store
            .find_access_token(TokenHash::of(token).as_bytes())
            .await?
            .filter(|r| r.kind == "oauth" && r.is_active(now_ms()));
        Ok(Json(match record {
            Some(r) => json!({
                "active": true,
                "scope": r.scopes,
                "client_id": r.client_id,
                "sub": r.user_id,
                "aud": r.resource,
                "exp": r.expires_at / 1000,
                "token_type": "Bearer",
                "iss": state.config.issuer(),
            }),
            None => json!({ "active": false }),
        }))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}
