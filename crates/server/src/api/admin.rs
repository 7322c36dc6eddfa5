//! Admin user management: create one, create many, disable, enable, list.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures::StreamExt;
use mcpgate_core::SecretString;
use serde::{Deserialize, Serialize};

use super::UserView;
use super::auth::{AdminUser, ApiJson};
use crate::accounts::AccountRequest;
use crate::app::AppState;
use crate::error::ApiError;
use crate::policy::audit::admin_event;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    email: String,
    password: SecretString,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    is_admin: bool,
}

impl From<NewAccount> for AccountRequest {
    fn from(n: NewAccount) -> Self {
        AccountRequest {
            email: n.email,
            password: n.password,
            display_name: n.display_name,
            is_admin: n.is_admin,
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users",
    tag = "users",
    summary = "Create a local account",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiJson(account): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = state.accounts.create(account.into()).await?;
    state.audit.record(admin_event(
        &admin.0.user.id,
        "admin.user.create",
        &user.email,
        serde_json::json!({ "is_admin": user.is_admin }),
    ));
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

#[derive(Deserialize)]
pub struct Batch {
    users: Vec<NewAccount>,
}

/// One row's outcome: `created` with the user, or an error in the API's shape.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BatchItem {
    Created {
        email: String,
        user: UserView,
    },
    Error {
        email: String,
        error: &'static str,
        error_description: String,
    },
}

const MAX_BATCH: usize = 1000;

/// Creates many accounts. Rows are hashed concurrently, never more at once than the hashing
/// pool has permits (the rest wait here, not in the pool's queue, so none times out); one bad
/// row does not sink the others. Results come back in request order.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/batch",
    tag = "users",
    summary = "Create up to 1000 accounts; one result per row",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn create_batch(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(batch): ApiJson<Batch>,
) -> Result<Json<Vec<BatchItem>>, ApiError> {
    if batch.users.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_BATCH} users per batch"
        )));
    }
    let permits = state.accounts.hasher().pool().permits().max(1);
    let results: Vec<BatchItem> = futures::stream::iter(batch.users)
        .map(|account| {
            let accounts = state.accounts.clone();
            async move {
                let email = account.email.clone();
                match accounts.create(account.into()).await {
                    Ok(user) => BatchItem::Created {
                        email,
                        user: UserView::from(&user),
                    },
                    Err(e) => {
                        let (error, error_description) = describe(e.into());
                        BatchItem::Error {
                            email,
                            error,
                            error_description,
                        }
                    }
                }
            }
        })
        .buffered(permits)
        .collect()
        .await;
    Ok(Json(results))
}

fn describe(e: ApiError) -> (&'static str, String) {
    match e {
        ApiError::BadRequest(d) => ("invalid_request", d),
        ApiError::Conflict(d) => ("conflict", d),
        ApiError::Overloaded { what, .. } => {
            ("temporarily_unavailable", format!("{what} is at capacity"))
        }
        other => {
            tracing::error!(error = %other, "batch row failed");
            ("server_error", "the row could not be created".into())
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/disable",
    tag = "users",
    summary = "Disable a user (their tokens stop at once)",
    params(("id" = String, Path)),
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
    state.store.set_user_disabled(&id, true).await?;
    state.audit.record(admin_event(
        &admin.0.user.id,
        "admin.user.disable",
        &id,
        serde_json::json!({}),
    ));
    state.tokens.invalidate_user(&id).await;
    tracing::info!(user.id = %id, "user disabled");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/enable",
    tag = "users",
    summary = "Enable a user",
    params(("id" = String, Path)),
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
    state.store.set_user_disabled(&id, false).await?;
    state.audit.record(admin_event(
        &admin.0.user.id,
        "admin.user.enable",
        &id,
        serde_json::json!({}),
    ));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Page {
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct UserPage {
    users: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last one.
    next_after: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "users",
    summary = "Users by email, a page at a time (`after`, `limit`)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(page): Query<Page>,
) -> Result<Json<UserPage>, ApiError> {
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let users = state.store.list_users(page.after.as_deref(), limit).await?;
    let next_after = (users.len() as i64 == limit)
        .then(|| users.last().map(|u| u.email.clone()))
        .flatten();
    Ok(Json(UserPage {
        users: users.iter().map(UserView::from).collect(),
        next_after,
    }))
}
