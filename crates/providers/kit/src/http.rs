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

/// The app's reqwest 0.13 client as an `oauth2`/`openidconnect` HTTP client
/// ([`oauth2::AsyncHttpClient`]), so the crates never bring their own reqwest 0.12.
///
/// Two things happen here rather than in each caller: a 5xx or 429 answer becomes
/// [`HttpError::Unavailable`] (transient, whatever the body says), and with
/// [`HttpClient::json_bodies`] a form-encoded request body is sent as the equivalent JSON
/// object (Atlassian documents JSON token requests), so the code exchange and the refresh go
/// through the same conversion.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    json_bodies: bool,
}

/// Why an HTTP exchange with a provider failed before it gave a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, sending or reading failed (timeouts included).
    #[error("{0}")]
    Send(#[source] reqwest::Error),
    /// The provider answered 5xx or 429.
    #[error("HTTP {0}")]
    Unavailable(http::StatusCode),
    /// The request could not be built (a bad URL or header).
    #[error("cannot build the request: {0}")]
    Build(String),
}

impl HttpError {
    /// The class the server acts on.
    pub fn classify(&self, what: &str) -> ProviderError {
        match self {
            Self::Send(e) => crate::classify::send_error(what, e),
            Self::Unavailable(status) => ProviderError::Transient(format!("{what}: HTTP {status}")),
            Self::Build(why) => ProviderError::Misconfigured(format!("{what}: {why}")),
        }
    }
}

impl HttpClient {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            json_bodies: false,
        }
    }

    /// Sends form-encoded request bodies as JSON objects instead.
    pub fn json_bodies(mut self) -> Self {
        self.json_bodies = true;
        self
    }

    /// The reqwest client underneath, for provider-specific API calls.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends one request; one debug event per call (host, path, status, latency), never a
    /// token, secret or body.
    async fn execute(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, HttpError> {
        let started = std::time::Instant::now();
        let host = request.uri().host().unwrap_or_default().to_owned();
        let path = request.uri().path().to_owned();
        let answer = self.send(request).await;
        tracing::debug!(
            provider.host = host,
            provider.path = path,
            status = answer.as_ref().ok().map(|r| r.status().as_u16()),
            error = answer.as_ref().err().map(tracing::field::display),
            latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "provider request"
        );
        answer
    }

    async fn send(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpError> {
        let (mut parts, body) = request.into_parts();
        let is_form = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = if self.json_bodies && is_form {
            let object: serde_json::Map<String, serde_json::Value> =
                url::form_urlencoded::parse(&body)
                    .map(|(k, v)| (k.into_owned(), serde_json::Value::from(v.into_owned())))
                    .collect();
            parts.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            serde_json::to_vec(&object).map_err(|e| HttpError::Build(e.to_string()))?
        } else {
            body
        };
        let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
            .map_err(|e| HttpError::Build(e.to_string()))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(HttpError::Send)?;
        let status = response.status();
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            return Err(HttpError::Unavailable(status));
        }
        let mut builder = http::Response::builder().status(status);
        if let Some(headers) = builder.headers_mut() {
            *headers = response.headers().clone();
        }
        let body = response.bytes().await.map_err(HttpError::Send)?;
        builder
            .body(body.to_vec())
            .map_err(|e| HttpError::Build(e.to_string()))
    }
}

type BoxedResponse<'c> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>,
>;

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = BoxedResponse<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}
