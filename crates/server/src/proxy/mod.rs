//! The MCP proxy: Streamable HTTP from clients at `/mcp/{name}` to upstream MCP servers, both
//! protocol eras (2025 sessions, 2026-07-28 stateless), streamed both ways without buffering.
//!
//! A request runs through [`pipeline`], one module per step: [`parse`] → authenticate
//! ([`crate::auth`]) → user context ([`crate::identity`]) → decide
//! ([`crate::policy::enforce`]) → [`credentials`] → [`send`] → [`relay`].

pub mod credentials;
pub mod elicit;
pub mod health;
pub mod jsonrpc;
pub mod origin;
pub mod parse;
pub mod pipeline;
pub mod relay;
pub mod sealed;
pub mod send;
pub mod session;
pub mod user_connections;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcpgate_credentials::{CredentialSource, Dependencies, UpstreamTarget};
use mcpgate_crypto::SecretBox;
use serde_json::Value;
use url::Url;

use crate::config::{Config, UpstreamConfig};
use origin::{AllowedHosts, AllowedOrigins};
use session::SessionIds;

pub use pipeline::handle;

/// One configured upstream, ready to use.
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub url: Url,
    pub response_timeout: Duration,
    pub idle_timeout: Duration,
    /// Resolves the upstream's own credentials for each request (step 5).
    pub credentials: Arc<dyn CredentialSource>,
}

impl Upstream {
    /// The upstream with its credential source built (every problem reported, with its path).
    fn from_config(
        config: &UpstreamConfig,
        index: usize,
        deps: &Dependencies,
        idle_timeout_secs: u64,
    ) -> Result<Self, Vec<String>> {
        let url =
            Url::parse(&config.url).map_err(|e| vec![format!("upstreams[{index}].url: {e}")])?;
        let response_timeout = Duration::from_millis(config.response_timeout_ms);
        let target = UpstreamTarget {
            name: config.name.clone(),
            url: url.clone(),
            // A credential's network calls (token endpoints) get most of the response
            // timeout, so a hung authorization server fails the request in time.
            timeout: response_timeout.mul_f64(0.8),
        };
        let credentials = mcpgate_credentials::build(
            &target,
            &config.credentials,
            &format!("upstreams[{index}].credentials"),
            deps,
        )
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect::<Vec<_>>()
        })?;
        Ok(Self {
            name: config.name.clone(),
            url,
            response_timeout,
            idle_timeout: Duration::from_secs(
                config.idle_timeout_secs.unwrap_or(idle_timeout_secs),
            ),
            credentials,
        })
    }
}

/// Everything the proxy needs, built once from the configuration.
pub struct Proxy {
    upstreams: HashMap<String, Arc<Upstream>>,
    /// The one HTTP client: pooled keep-alive connections shared by every upstream.
    client: reqwest::Client,
    sessions: SessionIds,
    origins: AllowedOrigins,
    hosts: AllowedHosts,
    issuer: String,
    body_limit: usize,
}

impl Proxy {
    /// The browser origins allowed to call `/mcp/*`.
    pub fn origins(&self) -> &AllowedOrigins {
        &self.origins
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstreams", &self.upstreams.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Builds every upstream (with its credential source: call it inside the runtime) and
    /// the pooled client. A credential problem anywhere fails the start with all of them.
    pub fn new(
        config: &Config,
        secret_box: Arc<SecretBox>,
        deps: &Dependencies,
    ) -> anyhow::Result<Self> {
        let mut upstreams = HashMap::new();
        let mut problems = Vec::new();
        for (i, upstream) in config.upstreams.iter().enumerate() {
            match Upstream::from_config(upstream, i, deps, config.proxy.idle_timeout_secs) {
                Ok(u) => {
                    upstreams.insert(upstream.name.clone(), Arc::new(u));
                }
                Err(e) => problems.extend(e),
            }
        }
        if !problems.is_empty() {
            anyhow::bail!("invalid upstream credentials: {}", problems.join("; "));
        }
        let proxy = &config.proxy;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(proxy.connect_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(proxy.pool_idle_timeout_secs))
            .pool_max_idle_per_host(proxy.pool_max_idle_per_host)
            .tcp_nodelay(true)
            // An upstream redirect would carry the request somewhere the operator never
            // configured.
            .redirect(reqwest::redirect::Policy::none())
            // Only the headers the protocol uses are forwarded (see `forward`); no proxy
            // settings from the environment either.
            .no_proxy()
            .build()?;
        Ok(Self {
            upstreams,
            client,
            sessions: SessionIds::new(secret_box),
            origins: AllowedOrigins::new(&config.public_url, &proxy.allowed_origins),
            hosts: AllowedHosts::new(&config.public_url, &proxy.allowed_hosts),
            issuer: config.issuer(),
            body_limit: config.http.body_limit_bytes,
        })
    }

    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.get(name)
    }
}

/// A JSON-RPC error answer: every error on `/mcp` has this shape.
pub fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    crate::error::ApiError::JsonRpc {
        status,
        id,
        code,
        message: message.to_owned(),
    }
    .into_response()
}
