//! The axum application: shared state, routes and the middleware stack.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::{get, post};
use mcpgate_providers::Registry;
use mcpgate_storage::Store;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Authenticator, RejectAll};
use crate::config::Config;
use crate::error::ApiError;
use crate::proxy::Proxy;
use crate::routes;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub providers: Arc<Registry>,
    /// The resource-server check for `/mcp/*`: bearer token → principal.
    pub authenticator: Arc<dyn Authenticator>,
    /// Upstreams, the pooled HTTP client and session sealing.
    pub proxy: Arc<Proxy>,
}

impl AppState {
    /// Connects the store (lazily) and builds the provider registry from a validated config.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&config.database.store_options()).await?;
        let providers = Registry::build(&config.providers).map_err(|errors| {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect();
            anyhow::anyhow!("invalid providers: {}", lines.join("; "))
        })?;
        let secret_box = Arc::new(crate::proxy::secret_box(&config)?);
        let proxy = Proxy::new(&config, secret_box)?;
        Ok(Self {
            config: Arc::new(config),
            store,
            providers: Arc::new(providers),
            // Until the OAuth authorization server lands, no token is valid in a real run.
            // There is no setting to turn this off; tests inject their own authenticator.
            authenticator: Arc::new(RejectAll),
            proxy: Arc::new(proxy),
        })
    }

    /// Replaces the resource-server check (the OAuth issue's token validator; tests).
    pub fn with_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticator = authenticator;
        self
    }
}

/// The whole application with its middleware.
pub fn router(state: AppState) -> Router {
    let http = &state.config.http;
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::from_fn(crate::telemetry::record_request))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(http.request_timeout_secs),
        ))
        .layer(RequestBodyLimitLayer::new(http.body_limit_bytes));
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route(
            "/mcp/{name}",
            post(crate::proxy::handle)
                .get(crate::proxy::handle)
                .delete(crate::proxy::handle),
        )
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(state)
        .layer(middleware)
}
