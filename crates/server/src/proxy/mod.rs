//! The MCP proxy: Streamable HTTP from clients at `/mcp/{name}` to upstream MCP servers, both
//! protocol eras (2025 sessions, 2026-07-28 stateless), streamed both ways without buffering.
//!
//! Per request: upstream lookup → `Origin` → bearer token → principal ([`crate::auth`]) →
//! body limit and the few JSON-RPC fields routing needs → header checks (protocol version,
//! 2026-07-28 `Mcp-Method`/`Mcp-Name`) → session id unsealed → forwarded on the one pooled
//! client → response head and body streamed back.

pub mod forward;
pub mod jsonrpc;
pub mod origin;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mcpgate_crypto::SecretBox;
use url::Url;

use crate::config::{Config, UpstreamConfig};
use origin::AllowedOrigins;
use session::SessionIds;

pub use forward::handle;

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
            issuer: config.issuer(),
            body_limit: config.http.body_limit_bytes,
        })
    }

    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.get(name)
    }
}
