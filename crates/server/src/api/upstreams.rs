//! The upstreams as an administrator sees them (from the config file), and the static secrets
//! an upstream with `kind = "static", sealed = true` takes through the API: set or replaced,
//! deleted, shown only as set/unset with when and by whom — never returned.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mcpgate_core::SecretString;
use mcpgate_credentials::CredentialsConfig;
use mcpgate_storage::AuditEvent;
use serde::{Deserialize, Serialize};

use super::auth::{AdminUser, ApiJson};
use crate::app::AppState;
use crate::config::UpstreamConfig;
use crate::error::ApiError;
use crate::proxy::sealed::SetError;

/// What a redacted secret shows instead of its value.
const REDACTED: &str = "[redacted]";

#[derive(Serialize)]
pub struct UpstreamView {
    pub name: String,
    pub url: String,
    /// Where the upstream is defined: `config` (read-only here).
    source: &'static str,
    /// The credential kinds, in the order they apply.
    pub credential_kinds: Vec<&'static str>,
    /// What this replica last saw of it: reachable, the last error, request counts.
    pub status: crate::proxy::health::Health,
    /// Whether it takes a secret through `PUT …/secret`, and whether one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    sealed_secret: Option<SecretView>,
}

#[derive(Serialize)]
pub struct SecretView {
    upstream: String,
    set: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_by: Option<String>,
}

fn takes_sealed_secret(upstream: &UpstreamConfig) -> bool {
    upstream
        .credentials
        .entries()
        .any(|c| matches!(c, CredentialsConfig::Static(s) if s.sealed))
}

/// The configured upstream that takes a sealed secret, or the API error saying why not.
fn sealed_upstream<'a>(state: &'a AppState, name: &str) -> Result<&'a UpstreamConfig, ApiError> {
    let upstream = state
        .config
        .upstreams
        .iter()
        .find(|u| u.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no upstream named {name:?}")))?;
    if !takes_sealed_secret(upstream) {
        return Err(ApiError::Conflict(format!(
            "the upstream {name:?} takes no secret through the API: its credentials are not \
             `kind = \"static\"` with `sealed = true`"
        )));
    }
    Ok(upstream)
}

async fn secret_view(state: &AppState, name: &str) -> Result<SecretView, ApiError> {
    let status = state.upstream_secrets.status(name).await?;
    Ok(SecretView {
        upstream: name.to_owned(),
        set: status.is_some(),
        value: status.as_ref().map(|_| REDACTED),
        updated_at: status.as_ref().map(|(at, _)| *at),
        updated_by: status.map(|(_, by)| by),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/upstreams",
    tag = "upstreams",
    summary = "Upstreams with credential kinds and status",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<UpstreamView>>, ApiError> {
    Ok(Json(views(&state).await?))
}

/// Every configured upstream with its credential kinds and status.
pub async fn views(state: &AppState) -> Result<Vec<UpstreamView>, ApiError> {
    let mut views = Vec::with_capacity(state.config.upstreams.len());
    for upstream in &state.config.upstreams {
        let sealed_secret = if takes_sealed_secret(upstream) {
            Some(secret_view(state, &upstream.name).await?)
        } else {
            None
        };
        views.push(UpstreamView {
            name: upstream.name.clone(),
            url: upstream.url.clone(),
            source: "config",
            credential_kinds: upstream.credentials.entries().map(|c| c.kind()).collect(),
            status: crate::proxy::health::of(&upstream.name),
            sealed_secret,
        });
    }
    Ok(views)
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/upstreams/{name}/secret",
    tag = "upstreams",
    summary = "Whether an upstream's sealed secret is set (never its value)",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn secret_status(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(name): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    sealed_upstream(&state, &name)?;
    Ok(Json(secret_view(&state, &name).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    value: SecretString,
}

#[utoipa::path(
    put,
    path = "/api/v1/admin/upstreams/{name}/secret",
    tag = "upstreams",
    summary = "Set or replace an upstream's sealed secret",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn set_secret(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewSecret>,
) -> Result<StatusCode, ApiError> {
    sealed_upstream(&state, &name)?;
    state
        .upstream_secrets
        .set(&name, &body.value, &admin.0.user.id)
        .await
        .map_err(|e| match e {
            SetError::Invalid => ApiError::BadRequest(e.to_string()),
            SetError::Storage(e) => e.into(),
            SetError::Seal => ApiError::Internal(e.to_string()),
        })?;
    audit(&state, &admin, "upstream.secret.set", &name);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/upstreams/{name}/secret",
    tag = "upstreams",
    summary = "Delete an upstream's sealed secret",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn delete_secret(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    sealed_upstream(&state, &name)?;
    if !state.upstream_secrets.delete(&name).await? {
        return Err(ApiError::NotFound(format!(
            "no secret is set for the upstream {name:?}"
        )));
    }
    audit(&state, &admin, "upstream.secret.delete", &name);
    Ok(StatusCode::NO_CONTENT)
}

/// Who changed which upstream's secret (never the value), off the request path.
fn audit(state: &AppState, admin: &AdminUser, action: &str, upstream: &str) {
    let mut event = AuditEvent::new(action, "changed");
    event.user_id = Some(admin.0.user.id.clone());
    event.upstream = Some(upstream.to_owned());
    state.audit.record(event);
    tracing::info!(user.id = %admin.0.user.id, upstream, action, "upstream secret changed");
}
