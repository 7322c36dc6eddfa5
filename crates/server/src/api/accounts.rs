//! Admin API for accounts beyond creating and disabling them: delete a user, reset their
//! password, list and end their browser sessions and token families; list and revoke OAuth
//! clients. Every change is audited (who changed what), off the request path.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::SecretString;
use mcpgate_storage::{FamilyInfo, OAuthClient, SessionInfo, StorageError};
use serde::{Deserialize, Serialize};

use super::auth::{AdminUser, ApiJson};
use crate::app::AppState;
use crate::error::ApiError;
use crate::policy::audit::admin_event;

fn user_not_found(e: StorageError, id: &str) -> ApiError {
    match e {
        StorageError::NotFound => ApiError::NotFound(format!("no user with id {id:?}")),
        other => other.into(),
    }
}

fn record(state: &AppState, admin: &AdminUser, action: &str, target: &str) {
    state.audit.record(admin_event(
        &admin.0.user.id,
        action,
        target,
        serde_json::json!({}),
    ));
    tracing::info!(user.id = %admin.0.user.id, action, target, "admin change");
}

/// `DELETE /api/v1/admin/users/{id}`: the account and everything only it owns. An
/// administrator cannot delete their own account (another administrator can).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}",
    tag = "users",
    summary = "Delete a user and everything only they own",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn delete_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if admin.0.user.id == id {
        return Err(ApiError::Conflict(
            "you cannot delete your own account".into(),
        ));
    }
    let user = state
        .store
        .get_user(&id)
        .await
        .map_err(|e| user_not_found(e, &id))?;
    state
        .store
        .delete_user(&id)
        .await
        .map_err(|e| user_not_found(e, &id))?;
    state.tokens.invalidate_user(&id).await;
    record(&state, &admin, "admin.user.delete", &user.email);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: SecretString,
}

/// `PUT /api/v1/admin/users/{id}/password`: sets a new password; every session and token of
/// the user ends.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/password",
    tag = "users",
    summary = "Set a user's password (their sessions and tokens end)",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn reset_password(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    let user = state
        .store
        .get_user(&id)
        .await
        .map_err(|e| user_not_found(e, &id))?;
    state.accounts.reset_password(&id, body.password).await?;
    state.tokens.invalidate_user(&id).await;
    record(&state, &admin, "admin.user.password_reset", &user.email);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct SessionView {
    /// Names the session for `DELETE …/sessions/{id}`; not the cookie value.
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
}

impl From<SessionInfo> for SessionView {
    fn from(s: SessionInfo) -> Self {
        Self {
            id: URL_SAFE_NO_PAD.encode(&s.id_hash),
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_seen_at: s.last_seen_at,
        }
    }
}

/// A session id from the API back to the stored hash (32 bytes), or 404.
pub fn session_hash(id: &str) -> Result<Vec<u8>, ApiError> {
    URL_SAFE_NO_PAD
        .decode(id)
        .ok()
        .filter(|h| h.len() == 32)
        .ok_or_else(|| ApiError::NotFound("no such session".into()))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/sessions",
    tag = "users",
    summary = "A user's live browser sessions",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    state
        .store
        .get_user(&id)
        .await
        .map_err(|e| user_not_found(e, &id))?;
    let sessions = state.store.list_user_sessions(&id).await?;
    Ok(Json(sessions.into_iter().map(SessionView::from).collect()))
}

/// Ends every browser session of the user.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}/sessions",
    tag = "users",
    summary = "End every browser session of a user",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn delete_sessions(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = state
        .store
        .get_user(&id)
        .await
        .map_err(|e| user_not_found(e, &id))?;
    state.store.delete_user_sessions(&id).await?;
    record(&state, &admin, "admin.user.sessions_revoke", &user.email);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}/sessions/{session}",
    tag = "users",
    summary = "End one browser session of a user",
    params(("id" = String, Path), ("session" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn delete_session(
    State(state): State<AppState>,
    admin: AdminUser,
    Path((id, session)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let hash = session_hash(&session)?;
    state
        .store
        .delete_user_session(&id, &hash)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::NotFound("no such session".into()),
            other => other.into(),
        })?;
    record(&state, &admin, "admin.user.session_revoke", &id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct FamilyView {
    pub id: String,
    pub client_id: Option<String>,
    pub resource: Option<String>,
    pub scopes: String,
    pub revoked_at: Option<i64>,
    pub expires_at: i64,
    pub created_at: i64,
}

impl From<FamilyInfo> for FamilyView {
    fn from(f: FamilyInfo) -> Self {
        Self {
            id: f.id,
            client_id: f.client_id,
            resource: f.resource,
            scopes: f.scopes,
            revoked_at: f.revoked_at,
            expires_at: f.expires_at,
            created_at: f.created_at,
        }
    }
}

/// `GET …/users/{id}/tokens`: the user's token families (one per client sign-in).
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/tokens",
    tag = "users",
    summary = "A user's token families (one per client sign-in)",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list_families(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<FamilyView>>, ApiError> {
    state
        .store
        .get_user(&id)
        .await
        .map_err(|e| user_not_found(e, &id))?;
    let families = state.store.list_user_families(&id).await?;
    Ok(Json(families.into_iter().map(FamilyView::from).collect()))
}

/// `DELETE …/users/{id}/tokens/{family}`: revokes the family and every token it issued.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}/tokens/{family}",
    tag = "users",
    summary = "Revoke a token family and every token it issued",
    params(("id" = String, Path), ("family" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn revoke_family(
    State(state): State<AppState>,
    admin: AdminUser,
    Path((id, family)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if state.store.family_owner(&family).await?.as_deref() != Some(id.as_str()) {
        return Err(ApiError::NotFound(
            "no such token family for this user".into(),
        ));
    }
    state.store.revoke_token_family(&family).await?;
    state.tokens.invalidate_family(&family).await;
    record(&state, &admin, "admin.user.tokens_revoke", &family);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Page {
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub client_name: String,
    /// `dcr`, `cimd` or `configured`.
    pub registration: String,
    pub redirect_uris: Vec<String>,
    pub confidential: bool,
    pub created_at: i64,
}

impl From<OAuthClient> for ClientView {
    fn from(c: OAuthClient) -> Self {
        Self {
            redirect_uris: serde_json::from_str(&c.redirect_uris).unwrap_or_default(),
            confidential: c.token_endpoint_auth_method != "none",
            client_id: c.client_id,
            client_name: c.client_name,
            registration: c.registration,
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct ClientPage {
    pub clients: Vec<ClientView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
}

pub async fn client_page(
    state: &AppState,
    after: Option<&str>,
    limit: Option<i64>,
) -> Result<ClientPage, ApiError> {
    let limit = limit.unwrap_or(50).clamp(1, 500);
    let clients = state.store.list_clients(after, limit).await?;
    let next_after = (clients.len() as i64 == limit)
        .then(|| clients.last().map(|c| c.client_id.clone()))
        .flatten();
    Ok(ClientPage {
        clients: clients.into_iter().map(ClientView::from).collect(),
        next_after,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/clients",
    tag = "clients",
    summary = "OAuth clients by id, a page at a time",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list_clients(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(page): Query<Page>,
) -> Result<Json<ClientPage>, ApiError> {
    Ok(Json(
        client_page(&state, page.after.as_deref(), page.limit).await?,
    ))
}

/// Revokes a client: its tokens, the consents given to it, its registration.
pub async fn revoke_client_by(
    state: &AppState,
    admin_id: &str,
    client_id: &str,
) -> Result<(), ApiError> {
    let families = state
        .store
        .revoke_client(client_id)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::NotFound(format!("no client {client_id:?}")),
            other => other.into(),
        })?;
    for family in &families {
        state.tokens.invalidate_family(family).await;
    }
    state.audit.record(crate::policy::audit::oauth_event(
        "oauth.client.revoke",
        "revoked",
        Some(admin_id),
        client_id,
        serde_json::json!({ "families": families.len() }),
    ));
    Ok(())
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/clients/{client_id}",
    tag = "clients",
    summary = "Revoke a client: its tokens, consents and registration",
    params(("client_id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn revoke_client(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    revoke_client_by(&state, &admin.0.user.id, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
