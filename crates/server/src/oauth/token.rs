//! `POST /oauth/token`: the authorization-code grant (PKCE checked, code single use — a reused
//! code revokes what it issued) and the refresh-token grant (rotation on every use; reuse of a
//! spent token revokes the whole family), and the client-credentials grant of service clients
//! (see `service`). Errors are RFC 6749 §5.2 JSON; nothing is cached.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_crypto::TokenHash;
use std::time::Duration;

use mcpgate_storage::{CodeOutcome, FamilyRecord, RotateOutcome, Successors};

use super::clients::{self, Client, ClientError};
use super::issue;
use super::params::{Params, client_credentials};
use crate::app::AppState;
use crate::error::ApiError;

fn err(error: &'static str, description: &str) -> ApiError {
    ApiError::oauth(StatusCode::BAD_REQUEST, error, description)
}

/// Authenticates the client of a token, revocation or introspection request.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, ApiError> {
    let credentials = client_credentials(headers, params)
        .map_err(|e| err("invalid_request", &e))?
        .ok_or_else(|| err("invalid_request", "client_id is required"))?;
    let invalid_client = || {
        let mut e = ApiError::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        if credentials.via_basic {
            e = ApiError::OAuthWithChallenge(Box::new(e), "Basic realm=\"mcpgate\"");
        }
        e
    };
    if super::service::is_service_client_id(&credentials.client_id) {
        let service = super::service::authenticate(
            state,
            &credentials.client_id,
            credentials.secret.as_deref(),
        )
        .await?
        .ok_or_else(invalid_client)?;
        return Ok(Client {
            client_id: service.client_id.clone(),
            name: service.name.clone(),
            redirect_uris: Vec::new(),
            secret_hash: <[u8; 32]>::try_from(service.secret_hash.as_slice())
                .ok()
                .map(TokenHash::from_bytes),
            registration: "service".into(),
            service: Some(Box::new(service)),
        });
    }
    let client = match clients::find(state, &credentials.client_id).await {
        Ok(c) => c,
        Err(ClientError::Api(e)) => return Err(e),
        Err(_) => return Err(invalid_client()),
    };
    if !client.authenticate(credentials.secret.as_deref()) {
        return Err(invalid_client());
    }
    Ok(client)
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    match grant(&state, &headers, &body).await {
        Ok(response) => {
            let mut r = Json(response).into_response();
            // RFC 6749 §5.1.
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn grant(
    state: &AppState,
    headers: &HeaderMap,
    body: &str,
) -> Result<issue::TokenResponse, ApiError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(err(
            "invalid_request",
            "the token request must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body).map_err(|e| err("invalid_request", &e))?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| err("invalid_request", "grant_type is required"))?;
    let client = authenticate_client(state, headers, &params).await?;
    let unauthorized = |grant: &str| {
        Err(err(
            "unauthorized_client",
            &format!("this client may not use the {grant} grant"),
        ))
    };
    match (grant_type, client.service.as_deref()) {
        ("client_credentials", Some(service)) => {
            super::service::client_credentials(state, service, &params).await
        }
        ("client_credentials", None) => unauthorized(grant_type),
        ("authorization_code" | "refresh_token", Some(_)) => unauthorized(grant_type),
        ("authorization_code", None) => authorization_code(state, &client, &params).await,
        ("refresh_token", None) => refresh(state, &client, &params).await,
        _ => Err(err(
            "unsupported_grant_type",
            "grant_type must be authorization_code, refresh_token or client_credentials",
        )),
    }
}

async fn authorization_code(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<issue::TokenResponse, ApiError> {
    let code = params
        .get("code")
        .ok_or_else(|| err("invalid_request", "code is required"))?;
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| err("invalid_request", "code_verifier is required (PKCE)"))?;
    let redirect_uri = params.get("redirect_uri");
    let invalid_grant = || {
        err(
            "invalid_grant",
            "the code is invalid, expired or already used",
        )
    };
    let code = match state
        .store
        .consume_code(TokenHash::of(code).as_bytes())
        .await?
    {
        CodeOutcome::Fresh(code) => code,
        CodeOutcome::Reused { family_id } => {
            // A code used twice was intercepted or replayed: revoke what it issued.
            tracing::warn!(client.id = %client.client_id, "authorization code reused; revoking its tokens");
            state.store.revoke_token_family(&family_id).await?;
            state.tokens.invalidate_family(&family_id).await;
            return Err(invalid_grant());
        }
        CodeOutcome::Invalid => return Err(invalid_grant()),
    };
    if code.client_id != client.client_id {
        return Err(invalid_grant());
    }
    // RFC 6749 §4.1.3: required, and identical, only if the authorization request sent it.
    // Left out there, the code went to the client's only registered URI: one sent here
    // anyway must be that one.
    match (code.redirect_uri.as_str(), redirect_uri) {
        ("", None) => {}
        ("", Some(sent)) if matches!(client.redirect_uris.as_slice(), [only] if only == sent) => {}
        (_, None) => {
            return Err(err(
                "invalid_request",
                "redirect_uri is required: the authorization request had one",
            ));
        }
        (expected, Some(sent)) if expected == sent => {}
        _ => return Err(invalid_grant()),
    }
    if mcpgate_crypto::pkce::verify_s256(verifier, &code.code_challenge).is_err() {
        return Err(err(
            "invalid_grant",
            "the code_verifier does not match the code_challenge",
        ));
    }
    if let Some(resource) = params.get("resource")
        && resource != code.resource
    {
        return Err(err(
            "invalid_target",
            "resource differs from the one authorized",
        ));
    }
    issue::start_family(
        state,
        &code.family_id,
        &code.user_id,
        &client.client_id,
        &code.resource,
        &code.scopes,
    )
    .await
}

async fn refresh(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<issue::TokenResponse, ApiError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| err("invalid_request", "refresh_token is required"))?;
    let resource = params.get("resource");
    let old_hash = TokenHash::of(presented);
    let grace = Duration::from_secs(state.config.oauth.refresh_reuse_grace_secs);
    let declines = |family: &FamilyRecord| {
        family.client_id.as_deref() != Some(client.client_id.as_str())
            || resource.is_some_and(|r| Some(r) != family.resource.as_deref())
    };
    let mut minted = None;
    let outcome = state
        .store
        .rotate_refresh_token(old_hash.as_bytes(), grace, |family| {
            if declines(family) {
                return None;
            }
            let (access, access_row) = issue::access_token(state, family).ok()?;
            let (refresh, refresh_row) = issue::refresh_token(state, family).ok()?;
            // Sealed for the grace period, bound to the spent token: a retry gets this pair.
            let sealed = if grace.is_zero() {
                None
            } else {
                Some(
                    issue::seal_successor(
                        state,
                        &old_hash,
                        &access,
                        access_row.expires_at,
                        &refresh,
                    )
                    .ok()?,
                )
            };
            minted = Some((access, refresh, family.scopes.clone()));
            Some(Successors {
                refresh: refresh_row,
                access: access_row,
                sealed,
            })
        })
        .await?;
    match outcome {
        RotateOutcome::Rotated(_) => {
            let (access, refresh, scopes) = minted
                .ok_or_else(|| ApiError::Internal("rotation succeeded without tokens".into()))?;
            Ok(issue::response(state, access, refresh, &scopes))
        }
        RotateOutcome::Retried { family, sealed } if !declines(&family) => {
            tracing::info!(client.id = %client.client_id, "refresh retried within the grace period; same pair");
            issue::open_successor(state, &old_hash, &sealed, &family.scopes)
        }
        RotateOutcome::Reused => {
            tracing::warn!(client.id = %client.client_id, "refresh token reused; family revoked");
            if let Ok(Some(family)) = state.store.find_refresh_family(old_hash.as_bytes()).await {
                state.tokens.invalidate_family(&family.id).await;
            }
            Err(err(
                "invalid_grant",
                "the refresh token was already used; sign in again",
            ))
        }
        RotateOutcome::Refused(family) | RotateOutcome::Retried { family, .. }
            if family.client_id.as_deref() == Some(client.client_id.as_str()) =>
        {
            Err(err(
                "invalid_target",
                "resource differs from the one authorized",
            ))
        }
        RotateOutcome::Refused(_) | RotateOutcome::Retried { .. } | RotateOutcome::Invalid => {
            Err(err(
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
            ))
        }
    }
}
