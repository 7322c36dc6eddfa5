//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{ApiError, Challenge};

/// Alive: the process answers. Touches nothing else.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database answers within the pool's wait timeout; 503 with `Retry-After` if not.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ready" })))
}

/// Prometheus text exposition; with `metrics.bearer_token` set, only for a scraper that
/// sends it (401 with a challenge otherwise); with `metrics.listen` set, only there (404 on
/// the main address).
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    admin_listener: Option<axum::Extension<AdminListener>>,
) -> Response {
    if state.config.metrics.listen.is_some() && admin_listener.is_none() {
        return ApiError::NotFound("no such endpoint".into()).into_response();
    }
    if let Some(expected) = &state.config.metrics.bearer_token {
        let sent = crate::auth::bearer(&headers).unwrap_or_default();
        if !mcpgate_crypto::compare::constant_time_eq(sent.as_bytes(), expected.expose().as_bytes())
        {
            return ApiError::Challenge {
                status: StatusCode::UNAUTHORIZED,
                challenge: Challenge {
                    error: (!sent.is_empty()).then_some("invalid_token"),
                    ..Default::default()
                },
            }
            .into_response();
        }
    }
    render_metrics(&state).into_response()
}

/// Marks requests that came in on the `metrics.listen` address.
#[derive(Clone, Copy)]
pub struct AdminListener;

/// The router for `metrics.listen`: `/metrics` only.
pub fn admin_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .layer(axum::Extension(AdminListener))
        .with_state(state)
}

fn render_metrics(state: &AppState) -> impl IntoResponse {
    state.store.record_pool_metrics();
    let handle = crate::telemetry::prometheus();
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}
