//! HTTP for the upstream OAuth client: bounded reads, metadata fetches, and the app's reqwest
//! client as the `oauth2` crate's HTTP client, with a timeout on every call.

use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;

use crate::CredentialError;
use crate::oauth::send_error;

/// Longest metadata, registration or token response read.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The body, or an error once it passes `max` bytes (a hostile server cannot make mcpgate
/// buffer without bound).
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            body.extend_from_slice(&chunk[..max.saturating_sub(body.len())]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GETs a JSON document. `Ok(None)` when the server has none there (a non-2xx answer or a body
/// that is not the document), so the caller tries its next candidate.
pub(crate) async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &Url,
    upstream: &str,
    timeout: Duration,
) -> Result<Option<T>, CredentialError> {
    let response = http
        .get(url.clone())
        .timeout(timeout)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| send_error(upstream, timeout, &e))?;
    if !response.status().is_success() {
        return Ok(None);
    }
    let body = read_limited(response, MAX_BODY)
        .await
        .map_err(|e| send_error(upstream, timeout, &e))?;
    Ok(serde_json::from_slice(&body).ok())
}

/// Why an exchange with the authorization server failed before it gave an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Send(#[source] reqwest::Error),
    #[error("cannot build the request: {0}")]
    Build(String),
}

/// The app's client with a per-call timeout, as an [`oauth2::AsyncHttpClient`].
pub(crate) struct TimedClient<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) timeout: Duration,
}

impl TimedClient<'_> {
    async fn execute(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, HttpError> {
        let mut request =
            reqwest::Request::try_from(request).map_err(|e| HttpError::Build(e.to_string()))?;
        *request.timeout_mut() = Some(self.timeout);
        let response = self.http.execute(request).await.map_err(HttpError::Send)?;
        let mut builder = http::Response::builder().status(response.status());
        if let Some(headers) = builder.headers_mut() {
            *headers = response.headers().clone();
        }
        let body = read_limited(response, MAX_BODY)
            .await
            .map_err(HttpError::Send)?;
        builder
            .body(body)
            .map_err(|e| HttpError::Build(e.to_string()))
    }
}

type BoxedResponse<'c> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>,
>;

impl<'c> oauth2::AsyncHttpClient<'c> for TimedClient<'_> {
    type Error = HttpError;
    type Future = BoxedResponse<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}
