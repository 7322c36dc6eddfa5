//! The axum application: shared state, routes and the middleware stack.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::{get, post, put};
use mcpgate_crypto::{PasswordHasher, SecretBox};
use mcpgate_providers::Registry;
use mcpgate_storage::Store;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use zeroize::Zeroizing;

use crate::accounts::Accounts;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::limits::SignInLimits;
use crate::oauth::validate::TokenValidator;
use crate::policy::{AuditLog, Enforcer};
use crate::proxy::Proxy;
use crate::{api, oauth, routes, web};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub providers: Arc<Registry>,
    /// The sealing key ring: secrets at rest, CSRF tokens, session ids handed to clients.
    pub secret_box: Arc<SecretBox>,
    /// Local accounts, with the bounded password-hashing pool.
    pub accounts: Accounts,
    pub limits: Arc<SignInLimits>,
    /// Dynamic client registrations per client address.
    pub registrations: Arc<oauth::register::RegistrationLimit>,
    /// CSRF tokens already used (each is accepted once), until they would expire anyway.
    pub csrf_used: moka::sync::Cache<[u8; 32], ()>,
    /// The resource-server check for `/mcp/*`: bearer token → principal. In a real run this
    /// is `tokens`; tests may inject their own.
    pub authenticator: Arc<dyn Authenticator>,
    /// Federated users: cached user context and provider tokens refreshed exactly once.
    pub identity: Arc<crate::identity::IdentityService>,
    /// mcpgate's own access tokens: the cached check, and invalidation on revocation.
    pub tokens: Arc<TokenValidator>,
    /// Upstreams, the pooled HTTP client and session sealing.
    pub proxy: Arc<Proxy>,
    /// Static upstream secrets set through the admin API, sealed in the database.
    pub upstream_secrets: Arc<crate::proxy::sealed::StoredSecrets>,
    /// Each user's own connections (`user_oauth` grants, `user_secret` values), sealed.
    pub user_connections: Arc<crate::proxy::user_connections::UserConnections>,
    /// The upstreams users connect their own account to (the connect pages).
    pub connectors: Arc<web::connect::Connectors>,
    /// Local accounts' emails for identity assertions (cached per user).
    pub local_emails: Arc<crate::proxy::credentials::LocalEmails>,
    /// RBAC: the merged policy and each user's cached grants.
    pub policy: Arc<Enforcer>,
    /// Decisions, written off the request path.
    pub audit: Arc<AuditLog>,
    /// Signs identity assertions for upstreams; its public keys are the JWKS.
    pub assertion_signer: Option<Arc<mcpgate_credentials::AssertionSigner>>,
}

/// Builds the key ring from the (validated) configuration.
pub fn secret_box(config: &Config) -> anyhow::Result<SecretBox> {
    let enc = &config.encryption;
    let active = enc
        .active_key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("encryption.active_key is not set"))?;
    let mut keys = Vec::with_capacity(enc.keys.len());
    for (id, key) in &enc.keys {
        let bytes = mcpgate_crypto::keys::decode_key_b64(key.expose())
            .map_err(|e| anyhow::anyhow!("encryption.keys.{id}: {e}"))?;
        keys.push((id.clone(), Zeroizing::new(bytes)));
    }
    Ok(SecretBox::new(active, keys)?)
}

impl AppState {
    /// Connects the store (lazily) and builds the provider registry from a validated config.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        crate::tls::ensure_provider();
        let store = Store::connect(&config.database.store_options()).await?;
        let tokens = Arc::new(TokenValidator::new(
            store.clone(),
            std::time::Duration::from_secs(config.oauth.token_cache_ttl_secs),
            &config.issuer(),
            std::time::Duration::from_secs(config.oauth.personal_tokens.last_used_interval_secs),
        ));
        let hasher = Arc::new(PasswordHasher::new(&config.auth.hashing)?);
        let providers = Registry::build(&config.providers).map_err(|errors| {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect();
            anyhow::anyhow!("invalid providers: {}", lines.join("; "))
        })?;
        let secret_box = Arc::new(secret_box(&config)?);
        let providers = Arc::new(providers);
        let identity = Arc::new(crate::identity::IdentityService::new(
            store.clone(),
            providers.clone(),
            secret_box.clone(),
            std::time::Duration::from_secs(config.auth.user_context_ttl_secs),
            std::time::Duration::from_secs(config.auth.provider_token_skew_secs),
            std::time::Duration::from_secs(config.auth.provider_timeout_secs),
            tokens.clone(),
        ));
        let assertion_signer = match &config.assertion_keys {
            Some(keys) => Some(Arc::new(
                mcpgate_credentials::AssertionSigner::from_config(
                    config.issuer(),
                    keys,
                    "assertion_keys",
                )
                .map_err(|errors| {
                    let lines: Vec<String> = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.path, e.message))
                        .collect();
                    anyhow::anyhow!("invalid assertion keys: {}", lines.join("; "))
                })?,
            )),
            None => None,
        };
        let upstream_secrets = Arc::new(crate::proxy::sealed::StoredSecrets::new(
            store.clone(),
            secret_box.clone(),
        ));
        let user_connections = Arc::new(crate::proxy::user_connections::UserConnections::new(
            store.clone(),
            secret_box.clone(),
        ));
        let proxy = Proxy::new(
            &config,
            secret_box.clone(),
            &mcpgate_credentials::Dependencies {
                provider_tokens: Some(Arc::new(crate::identity::ProviderTokens(identity.clone()))),
                sealed_secrets: Some(upstream_secrets.clone()),
                assertion_signer: assertion_signer.clone(),
                user_tokens: Some(user_connections.clone()),
                user_secrets: Some(user_connections.clone()),
                http: None,
            },
        )?;
        let policy = Enforcer::new(&config.policy, store.clone());
        let audit = Arc::new(AuditLog::start(
            store.clone(),
            config.policy.audit_queue,
            config.policy.audit_batch,
        ));
        let local_emails = Arc::new(crate::proxy::credentials::LocalEmails::new(store.clone()));
        Ok(Self {
            local_emails,
            identity,
            policy,
            audit,
            secret_box,
            accounts: Accounts::new(store.clone(), hasher),
            limits: Arc::new(SignInLimits::new(&config.auth.rate_limit)),
            registrations: Arc::new(oauth::register::RegistrationLimit::new(
                &config.oauth.registration,
            )),
            csrf_used: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(web::csrf::LIFETIME)
                .build(),
            connectors: Arc::new(web::connect::Connectors::from_config(&config)?),
            config: Arc::new(config),
            store,
            providers,
            authenticator: tokens.clone(),
            tokens,
            proxy: Arc::new(proxy),
            upstream_secrets,
            user_connections,
            assertion_signer,
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
            TraceLayer::new_for_http()
                // 5xx here is mostly load shedding (503 + Retry-After), which is the design
                // working, not an error to page someone about.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN))
                .make_span_with(|request: &Request<_>| {
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
        ));
    // Bodies over the limit are refused before a handler reads them; `/mcp/*` reads its body
    // with the same limit itself, to answer in JSON-RPC as every other error there.
    let body_limit = RequestBodyLimitLayer::new(http.body_limit_bytes);
    // What browser-based MCP clients fetch from other origins (see `cors`).
    let cors_public = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata::authorization_server_metadata),
        )
        .route("/.well-known/jwks.json", get(oauth::metadata::jwks))
        .route(
            "/.well-known/oauth-protected-resource",
            get(oauth::metadata::root_protected_resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp/{name}",
            get(oauth::metadata::protected_resource_metadata),
        )
        .route("/oauth/register", post(oauth::register::register))
        .route("/oauth/token", post(oauth::token::token))
        .route("/oauth/revoke", post(oauth::revoke::revoke))
        .layer(crate::cors::public());
    let mcp = Router::new()
        .route(
            "/mcp/{name}",
            post(crate::proxy::handle)
                .get(crate::proxy::handle)
                .delete(crate::proxy::handle),
        )
        .layer(crate::cors::mcp(state.proxy.origins().clone()));
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route(
            "/oauth/authorize",
            get(oauth::authorize::start).post(oauth::authorize::decide),
        )
        .route("/oauth/introspect", post(oauth::revoke::introspect))
        .route("/", get(web::home::home))
        .route("/me/consents/revoke", post(web::home::revoke_consent))
        .route("/me/sessions/revoke", post(web::home::end_session))
        .route("/me/password", post(web::home::change_password))
        .route("/admin", get(web::admin::index))
        .route(
            "/admin/users",
            get(web::admin::users).post(web::admin::create_user),
        )
        .route("/admin/users/{id}/{action}", post(web::admin::user_action))
        .route(
            "/admin/users/{id}/sessions/revoke",
            post(web::admin::revoke_user_sessions),
        )
        .route(
            "/admin/roles",
            get(web::admin::roles).post(web::admin::save_role),
        )
        .route("/admin/roles/assign", post(web::admin::give_role))
        .route("/admin/roles/{name}/delete", post(web::admin::delete_role))
        .route(
            "/admin/teams",
            get(web::admin::teams).post(web::admin::create_team),
        )
        .route("/admin/teams/members", post(web::admin::add_member))
        .route("/admin/teams/roles", post(web::admin::add_team_role))
        .route("/admin/teams/{name}/delete", post(web::admin::delete_team))
        .route("/admin/mappings", post(web::admin::add_mapping))
        .route(
            "/admin/mappings/{id}/delete",
            post(web::admin::delete_mapping),
        )
        .route("/admin/upstreams", get(web::admin::upstreams))
        .route("/admin/clients", get(web::admin::clients))
        .route("/admin/clients/revoke", post(web::admin::revoke_client))
        .route("/admin/audit", get(web::admin::audit))
        .route("/admin/explain", get(web::admin::explain))
        .route("/admin/dashboard", get(web::dashboard::page))
        .route("/login", get(web::login::show).post(web::login::submit))
        .route("/logout", post(web::login::logout))
        .route(
            "/me/tokens",
            get(web::tokens::show).post(web::tokens::create),
        )
        .route("/me/tokens/{id}/revoke", post(web::tokens::revoke))
        .route(
            "/connect/{upstream}",
            get(web::connect::show).post(web::connect::submit),
        )
        .route("/connect/{upstream}/callback", get(web::connect::callback))
        .route("/me/connections", get(web::connect::list))
        .route(
            "/me/connections/{upstream}/disconnect",
            post(web::connect::disconnect),
        )
        .route(
            "/login/{provider}",
            get(crate::identity::web::start).post(crate::identity::web::approve),
        )
        .route("/callback/{provider}", get(crate::identity::web::callback))
        .route("/api/v1/openapi.json", get(api::openapi::openapi_json))
        .route("/api/v1/login", post(api::me::login))
        .route("/api/v1/me", get(api::me::me))
        .route("/api/v1/me/password", post(api::me::change_password))
        .route(
            "/api/v1/me/tokens",
            get(api::tokens::list).post(api::tokens::create),
        )
        .route(
            "/api/v1/me/tokens/{id}",
            axum::routing::delete(api::tokens::revoke),
        )
        .route(
            "/api/v1/admin/service-clients",
            get(api::service_clients::list).post(api::service_clients::create),
        )
        .route(
            "/api/v1/admin/service-clients/{id}",
            get(api::service_clients::get).delete(api::service_clients::delete),
        )
        .route(
            "/api/v1/admin/service-clients/{id}/rotate",
            post(api::service_clients::rotate),
        )
        .route(
            "/api/v1/admin/service-clients/{id}/retire",
            post(api::service_clients::retire),
        )
        .route(
            "/api/v1/admin/service-clients/{id}/disable",
            post(api::service_clients::disable),
        )
        .route(
            "/api/v1/admin/service-clients/{id}/enable",
            post(api::service_clients::enable),
        )
        .route(
            "/api/v1/admin/users",
            get(api::admin::list).post(api::admin::create),
        )
        .route("/api/v1/admin/users/batch", post(api::admin::create_batch))
        .route(
            "/api/v1/admin/users/{id}/disable",
            post(api::admin::disable),
        )
        .route("/api/v1/admin/users/{id}/enable", post(api::admin::enable))
        .route(
            "/api/v1/admin/users/{id}",
            axum::routing::delete(api::accounts::delete_user),
        )
        .route(
            "/api/v1/admin/users/{id}/password",
            put(api::accounts::reset_password),
        )
        .route(
            "/api/v1/admin/users/{id}/sessions",
            get(api::accounts::list_sessions).delete(api::accounts::delete_sessions),
        )
        .route(
            "/api/v1/admin/users/{id}/sessions/{session}",
            axum::routing::delete(api::accounts::delete_session),
        )
        .route(
            "/api/v1/admin/users/{id}/tokens",
            get(api::accounts::list_families),
        )
        .route(
            "/api/v1/admin/users/{id}/tokens/{family}",
            axum::routing::delete(api::accounts::revoke_family),
        )
        .route("/api/v1/admin/clients", get(api::accounts::list_clients))
        .route(
            "/api/v1/admin/clients/{client_id}",
            axum::routing::delete(api::accounts::revoke_client),
        )
        .route("/api/v1/admin/audit", get(api::audit::list))
        .route("/api/v1/admin/upstreams", get(api::upstreams::list))
        .route(
            "/api/v1/admin/upstreams/{name}/secret",
            get(api::upstreams::secret_status)
                .put(api::upstreams::set_secret)
                .delete(api::upstreams::delete_secret),
        )
        .route("/api/v1/admin/policy", get(api::policy::show))
        .route("/api/v1/admin/roles", get(api::policy::list_roles))
        .route(
            "/api/v1/admin/roles/{name}",
            put(api::policy::put_role).delete(api::policy::delete_role),
        )
        .route(
            "/api/v1/admin/users/{id}/roles/{role}",
            put(api::policy::grant_user_role).delete(api::policy::revoke_user_role),
        )
        .route(
            "/api/v1/admin/users/{id}/access",
            get(api::policy::explain_access),
        )
        .route("/api/v1/admin/teams", get(api::policy::list_teams))
        .route(
            "/api/v1/admin/teams/{name}",
            put(api::policy::create_team).delete(api::policy::delete_team),
        )
        .route(
            "/api/v1/admin/teams/{name}/members/{user}",
            put(api::policy::add_member).delete(api::policy::remove_member),
        )
        .route(
            "/api/v1/admin/teams/{name}/roles/{role}",
            put(api::policy::add_team_role).delete(api::policy::remove_team_role),
        )
        .route("/api/v1/admin/mappings", post(api::policy::add_mapping))
        .route(
            "/api/v1/admin/mappings/{id}",
            axum::routing::delete(api::policy::delete_mapping),
        )
        .merge(cors_public)
        // Inside the body limit: the bodies it reads are already bounded.
        .layer(axum::middleware::from_fn(crate::control_chars::reject))
        .layer(body_limit)
        .merge(mcp)
        .fallback(web::not_found)
        .with_state(state)
        .layer(middleware)
}
