//! The HTTP client every provider shares: pooled, with timeouts and a `User-Agent`, and never
//! following redirects (a token endpoint that redirects is misconfigured, and following it
//! could replay credentials to another host).

use std::sync::{Once, OnceLock};
use std::time::Duration;

use mcpgate_core::ProviderError;

/// Connect timeout: an identity provider that does not accept a connection in this time is down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout (connect, send, read the body).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// GitHub refuses API requests without a `User-Agent` (PROVIDERS.md, GitHub "User info").
pub const USER_AGENT: &str = concat!("mcpgate/", env!("CARGO_PKG_VERSION"));

/// Installs rustls' ring provider once. The server builds reqwest with `rustls-no-provider`
/// (STACK.md), which panics at `Client::build()` without a process-wide provider; installing it
/// here lets provider crates build clients whatever else has run first.
pub fn ensure_tls_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only when another provider is installed already, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Builds a client with mcpgate's provider defaults.
pub fn build_client(
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, ProviderError> {
    ensure_tls_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| ProviderError::Misconfigured(format!("cannot build the HTTP client: {e}")))
}

/// The process-wide pooled client (connections are shared by every provider).
pub fn shared_client() -> Result<reqwest::Client, ProviderError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    let client = build_client(CONNECT_TIMEOUT, REQUEST_TIMEOUT)?;
    Ok(CLIENT.get_or_init(|| client).clone())
}
