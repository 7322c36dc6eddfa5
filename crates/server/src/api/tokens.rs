//! The caller's personal access tokens: `GET`/`POST /api/v1/me/tokens`,
//! `DELETE /api/v1/me/tokens/{id}` (see `oauth::personal`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::auth::{ApiJson, ApiUser};
use crate::app::AppState;
use crate::error::ApiError;
use crate::oauth::personal::{self, NewToken, TokenView};

#[derive(Serialize)]
pub struct Created {
    /// The token itself: shown this once, never again.
    token: String,
    #[serde(flatten)]
    view: TokenView,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/tokens",
    tag = "account",
    summary = "Create a personal access token; shown once",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: ApiUser,
    ApiJson(new): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let (token, record) = personal::create(&state, &caller.user.id, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            token: token.expose().to_owned(),
            view: TokenView::from(&record),
        }),
    ))
}

#[derive(Serialize)]
pub struct TokenList {
    tokens: Vec<TokenView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/me/tokens",
    tag = "account",
    summary = "The caller's personal access tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiUser,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.store.list_personal_tokens(&caller.user.id).await?;
    Ok(Json(TokenList {
        tokens: tokens.iter().map(TokenView::from).collect(),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/me/tokens/{id}",
    tag = "account",
    summary = "Revoke one of the caller's tokens",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: ApiUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if personal::revoke(&state, &caller.user.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such active token".into()))
    }
}
