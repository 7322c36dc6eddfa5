//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662), for OAuth access
//! and refresh tokens (users' and service clients') and personal access tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mcpgate_crypto::{TokenHash, TokenKind};
use mcpgate_storage::now_ms;
use serde_json::json;

use super::params::{Params, client_credentials};
use super::token::authenticate_client;
use crate::app::AppState;
use crate::error::ApiError;

/// Revokes an access token, or a refresh token with its whole family. A token of another
/// client, or an unknown one, is answered 200 all the same (RFC 7009 §2.2).
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let result = async {
        let params = Params::parse(&body)
            .map_err(|e| ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_request", e))?;
        let token = params.get("token").ok_or_else(|| {
            ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "token is required",
            )
        })?;
        if TokenKind::of(token) == Some(TokenKind::Personal) {
            // A personal token is issued to no client: holding it is the right to revoke it.
            // Credentials sent anyway must still be right.
            if !matches!(client_credentials(&headers, &params), Ok(None)) {
                authenticate_client(&state, &headers, &params).await?;
            }
            revoke_personal(&state, token).await?;
            return Ok::<_, ApiError>(StatusCode::OK);
        }
        let client = authenticate_client(&state, &headers, &params).await?;
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

async fn revoke_personal(state: &AppState, token: &str) -> Result<(), ApiError> {
    let hash = TokenHash::of(token);
    if let Some((found, _)) = state.store.find_personal_token(hash.as_bytes()).await?
        && state
            .store
            .revoke_personal_token(&found.id, None)
            .await?
            .is_some()
    {
        state.tokens.invalidate_token(&hash).await;
        let mut event = mcpgate_storage::AuditEvent::new("pat.revoke", "ok");
        event.user_id = Some(found.user_id);
        event.target = Some(found.id);
        event.detail = r#"{"via":"oauth/revoke"}"#.into();
        state.audit.record(event);
    }
    Ok(())
}

/// For upstreams and service clients (confidential clients) that want to check a token: an
/// OAuth access token (a user's or a service client's) or a personal access token.
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
        let hash = TokenHash::of(token);
        if TokenKind::of(token) == Some(TokenKind::Personal) {
            let found = state
                .store
                .find_personal_token(hash.as_bytes())
                .await?
                .filter(|(t, user_disabled)| !user_disabled && t.is_active(now_ms()));
            let issuer = state.config.issuer();
            return Ok(Json(match found {
                Some((t, _)) => {
                    let upstreams: Vec<String> =
                        serde_json::from_str(&t.upstreams).unwrap_or_default();
                    let aud: Vec<String> = upstreams
                        .iter()
                        .map(|u| format!("{issuer}/mcp/{u}"))
                        .collect();
                    json!({
                        "active": true,
                        "scope": t.scopes,
                        "sub": t.user_id,
                        "aud": aud,
                        "exp": t.expires_at / 1000,
                        "iat": t.created_at / 1000,
                        "token_type": "Bearer",
                        "iss": issuer,
                        "mcpgate_token_kind": "personal",
                    })
                }
                None => json!({ "active": false }),
            }));
        }
        let record = state
            .store
            .find_access_token(hash.as_bytes())
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
