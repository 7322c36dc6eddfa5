//! The MCP proxy: Streamable HTTP from clients at `/mcp/{name}` to upstream MCP servers, both
//! protocol eras (2025 sessions, 2026-07-28 stateless), streamed both ways without buffering.
//!
//! A request runs through [`pipeline`], one module per step: [`parse`] → authenticate
//! ([`crate::auth`]) → user context ([`crate::identity`]) → decide
//! ([`crate::policy::enforce`]) → [`credentials`] → [`send`] → [`relay`].

pub mod credentials;
pub mod jsonrpc;
pub mod origin;
pub mod parse;
pub mod pipeline;
pub mod relay;
pub mod send;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
}

impl Upstream {
    fn from_config(config: &UpstreamConfig) -> Result<Self, url::ParseError> {
        Ok(Self {
            name: config.name.clone(),
            url: Url::parse(&config.url)?,
            response_timeout: Duration::from_millis(config.response_timeout_ms),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
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
    pub fn new(config: &Config, secret_box: Arc<SecretBox>) -> anyhow::Result<Self> {
        let mut upstreams = HashMap::new();
        for upstream in &config.upstreams {
            upstreams.insert(
                upstream.name.clone(),
                Arc::new(Upstream::from_config(upstream)?),
            );
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
