//! Admin management of service clients (`/api/v1/admin/service-clients`): create (the secret
//! is shown once), list, get, rotate and retire the secret, disable (every token it holds
//! stops at once), enable, delete. See `oauth::service`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mcpgate_storage::{AuditEvent, NewServiceClient, ServiceClient, StorageError, now_ms};
use serde::{Deserialize, Serialize};

use super::auth::{AdminUser, ApiJson};
use crate::app::AppState;
use crate::error::ApiError;
use crate::oauth::service;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    name: String,
    /// Roles given to the client's principal (more through `/api/v1/admin/users/{user_id}/roles`).
    #[serde(default)]
    roles: Vec<String>,
    /// Upstream names it may get tokens for; `["*"]` for all.
    upstreams: Vec<String>,
    /// Scopes it may get (`mcp`, `mcp:read`); default `mcp`.
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Serialize)]
pub struct ClientView {
    client_id: String,
    name: String,
    /// The principal RBAC decides for (give it roles like any user).
    user_id: String,
    upstreams: Vec<String>,
    scope: String,
    token_endpoint_auth_methods: [&'static str; 2],
    disabled: bool,
    /// Set while a rotation is in progress: the previous secret works until then (seconds
    /// since the Unix epoch) or until retired.
    previous_secret_expires_at: Option<i64>,
    created_at: i64,
}

impl From<&ServiceClient> for ClientView {
    fn from(c: &ServiceClient) -> Self {
        let rotating =
            c.previous_secret_hash.is_some() && c.previous_expires_at.is_none_or(|t| t > now_ms());
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            user_id: c.user_id.clone(),
            upstreams: service::upstreams(c),
            scope: c.scopes.clone(),
            token_endpoint_auth_methods: ["client_secret_basic", "client_secret_post"],
            disabled: c.disabled_at.is_some(),
            previous_secret_expires_at: if rotating {
                c.previous_expires_at.map(|t| t / 1000)
            } else {
                None
            },
            created_at: c.created_at / 1000,
        }
    }
}

#[derive(Serialize)]
pub struct WithSecret {
    /// Shown this once, never again.
    client_secret: String,
    #[serde(flatten)]
    client: ClientView,
}

fn not_found(e: StorageError, id: &str) -> ApiError {
    match e {
        StorageError::NotFound => ApiError::NotFound(format!("no service client {id:?}")),
        other => other.into(),
    }
}

fn audit(state: &AppState, admin: &AdminUser, action: &str, client_id: &str) {
    let mut event = AuditEvent::new(action, "ok");
    event.user_id = Some(admin.0.user.id.clone());
    event.target = Some(client_id.to_owned());
    state.audit.record(event);
    tracing::info!(user.id = %admin.0.user.id, client.id = %client_id, action, "service client changed");
}

fn check(state: &AppState, new: &NewClient) -> Result<String, ApiError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 || crate::control_chars::in_line(name) {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    if new.upstreams.is_empty() || new.upstreams.len() > 64 {
        return Err(ApiError::BadRequest(
            "upstreams must name 1 to 64 upstreams, or [\"*\"]".into(),
        ));
    }
    for u in &new.upstreams {
        if u != "*" && !state.config.upstreams.iter().any(|c| &c.name == u) {
            return Err(ApiError::BadRequest(format!("no upstream named {u:?}")));
        }
    }
    if new.roles.len() > 64 {
        return Err(ApiError::BadRequest("at most 64 roles".into()));
    }
    let scope = new.scope.as_deref().map(str::trim).unwrap_or("");
    let scope = if scope.is_empty() {
        crate::oauth::scopes::MCP.to_owned()
    } else {
        for s in scope.split_ascii_whitespace() {
            if !crate::oauth::scopes::SUPPORTED.contains(&s) {
                return Err(ApiError::BadRequest(format!("unknown scope {s:?}")));
            }
        }
        scope.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
    };
    Ok(scope)
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/service-clients",
    tag = "service clients",
    summary = "Create a service client (client credentials); the secret is shown once",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiJson(new): ApiJson<NewClient>,
) -> Result<(StatusCode, Json<WithSecret>), ApiError> {
    let scopes = check(&state, &new)?;
    let client_id = service::new_client_id();
    let (secret, hash) = service::new_secret()?;
    let client = state
        .store
        .create_service_client(&NewServiceClient {
            email: service::user_email(&client_id),
            client_id: client_id.clone(),
            name: new.name.trim().to_owned(),
            upstreams: serde_json::to_string(&new.upstreams)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            scopes,
            secret_hash: hash.as_bytes().to_vec(),
        })
        .await?;
    for role in &new.roles {
        match state.store.grant_user_role(&client.user_id, role).await {
            Ok(version) => state.policy.note_version(version),
            Err(e) => {
                // All or nothing: a client half set up is worse than none.
                let _ = state.store.delete_service_client(&client_id).await;
                return Err(match e {
                    StorageError::NotFound => ApiError::BadRequest(format!("no role {role:?}")),
                    other => other.into(),
                });
            }
        }
    }
    audit(&state, &admin, "service_client.create", &client_id);
    Ok((
        StatusCode::CREATED,
        Json(WithSecret {
            client_secret: secret.expose().to_owned(),
            client: ClientView::from(&client),
        }),
    ))
}

#[derive(Serialize)]
pub struct ClientList {
    service_clients: Vec<ClientView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/service-clients",
    tag = "service clients",
    summary = "List service clients",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<ClientList>, ApiError> {
    let clients = state.store.list_service_clients().await?;
    Ok(Json(ClientList {
        service_clients: clients.iter().map(ClientView::from).collect(),
    }))
}

async fn find(state: &AppState, id: &str) -> Result<ServiceClient, ApiError> {
    state
        .store
        .get_service_client(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no service client {id:?}")))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/service-clients/{id}",
    tag = "service clients",
    summary = "One service client",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(ClientView::from(&find(&state, &id).await?)))
}

/// A new secret (shown once); the previous one keeps working until it is retired or
/// `oauth.service_clients.previous_secret_ttl_secs` passes. Rotating again drops the oldest.
#[utoipa::path(
    post,
    path = "/api/v1/admin/service-clients/{id}/rotate",
    tag = "service clients",
    summary = "A new secret; the previous one stays valid until retired or expired",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn rotate(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<WithSecret>, ApiError> {
    let (secret, hash) = service::new_secret()?;
    let ttl = state.config.oauth.service_clients.previous_secret_ttl_secs;
    let until =
        now_ms().saturating_add(i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX));
    state
        .store
        .rotate_service_secret(&id, hash.as_bytes(), until)
        .await
        .map_err(|e| not_found(e, &id))?;
    audit(&state, &admin, "service_client.rotate", &id);
    Ok(Json(WithSecret {
        client_secret: secret.expose().to_owned(),
        client: ClientView::from(&find(&state, &id).await?),
    }))
}

/// Ends a rotation: the previous secret stops working now.
#[utoipa::path(
    post,
    path = "/api/v1/admin/service-clients/{id}/retire",
    tag = "service clients",
    summary = "End the previous secret now",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn retire(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .retire_service_secret(&id)
        .await
        .map_err(|e| not_found(e, &id))?;
    audit(&state, &admin, "service_client.retire", &id);
    Ok(StatusCode::NO_CONTENT)
}

/// Disables the client: no new tokens, and every token it holds stops at once (here, and on
/// other replicas as soon as they hear the announcement).
#[utoipa::path(
    post,
    path = "/api/v1/admin/service-clients/{id}/disable",
    tag = "service clients",
    summary = "Disable the client and revoke its tokens at once",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn disable(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = state
        .store
        .set_service_client_disabled(&id, true)
        .await
        .map_err(|e| not_found(e, &id))?;
    state.tokens.invalidate_user(&user_id).await;
    audit(&state, &admin, "service_client.disable", &id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/service-clients/{id}/enable",
    tag = "service clients",
    summary = "Enable the client again",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn enable(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .set_service_client_disabled(&id, false)
        .await
        .map_err(|e| not_found(e, &id))?;
    audit(&state, &admin, "service_client.enable", &id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/service-clients/{id}",
    tag = "service clients",
    summary = "Delete the client and revoke its tokens",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = state
        .store
        .delete_service_client(&id)
        .await
        .map_err(|e| not_found(e, &id))?;
    state.tokens.invalidate_user(&user_id).await;
    audit(&state, &admin, "service_client.delete", &id);
    Ok(StatusCode::NO_CONTENT)
}
