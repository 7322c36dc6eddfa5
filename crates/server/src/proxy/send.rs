//! Step 6 of the `/mcp` pipeline: one request to the upstream on the pooled client, with the
//! protocol headers the client sent (nothing else of the client's) and the upstream's own
//! credentials.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use super::Upstream;
use super::parse::{MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION, MCP_SESSION_ID};

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// W3C Trace Context: the caller's trace continues at the upstream.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Request headers the upstream gets; everything else (above all `Authorization`, but also
/// cookies, `User-Agent`, forwarding headers) stays at the gateway.
fn forwarded_request_header(name: &HeaderName) -> bool {
    name == header::ACCEPT
        || name == header::CONTENT_TYPE
        || name == MCP_PROTOCOL_VERSION
        || name == MCP_METHOD
        || name == MCP_NAME
        || name == LAST_EVENT_ID
        || name == TRACEPARENT
        || name == TRACESTATE
        || name.as_str().starts_with("mcp-param-")
}

pub enum Failure {
    Timeout,
    Unreachable(String),
}

/// The headers the upstream gets from the client's request: the protocol's, and the
/// upstream's own session id.
pub fn forwarded_headers(headers: &HeaderMap, session: Option<HeaderValue>) -> HeaderMap {
    let mut forwarded = HeaderMap::with_capacity(8);
    for (name, value) in headers {
        if forwarded_request_header(name) {
            forwarded.append(name.clone(), value.clone());
        }
    }
    if let Some(session) = session {
        forwarded.insert(MCP_SESSION_ID, session);
    }
    forwarded
}

/// Sends the request with `headers` exactly as given (credentials applied: a SigV4
/// signature covers them).
pub async fn send(
    client: &reqwest::Client,
    upstream: &Upstream,
    method: Method,
    forwarded: HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, Failure> {
    let mut request = client
        .request(method, upstream.url.clone())
        .headers(forwarded);
    if !body.is_empty() {
        request = request.body(body);
    }
    // Dropping this future (the client went away) drops the upstream request with it: the
    // pooled connection is closed, which a 2026-07-28 upstream takes as cancellation.
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(upstream.response_timeout, request.send()).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(e)) if e.is_timeout() => Err(Failure::Timeout),
        Ok(Err(e)) => Err(Failure::Unreachable(e.to_string())),
        Ok(Ok(response)) => Ok(response),
    };
    let error = match &result {
        Ok(r) if r.status().is_server_error() => Some(format!("answered {}", r.status())),
        Ok(_) => None,
        Err(Failure::Timeout) => Some("no answer before the response timeout".to_owned()),
        Err(Failure::Unreachable(e)) => Some(e.clone()),
    };
    super::health::record(&upstream.name, error.as_deref());
    let (outcome, elapsed) = match &result {
        Ok(response) => (status_class(response.status()), Some(started.elapsed())),
        Err(Failure::Timeout) => ("timeout", None),
        Err(Failure::Unreachable(_)) => ("unreachable", None),
    };
    crate::telemetry::record_upstream(&upstream.name, outcome, elapsed);
    result
}

fn status_class(status: axum::http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_authorization_is_never_forwarded() {
        for name in [
            header::AUTHORIZATION,
            header::COOKIE,
            header::USER_AGENT,
            header::HOST,
            HeaderName::from_static("x-forwarded-for"),
            MCP_SESSION_ID,
        ] {
            assert!(!forwarded_request_header(&name), "{name}");
        }
        assert!(forwarded_request_header(&HeaderName::from_static(
            "mcp-param-region"
        )));
        assert!(forwarded_request_header(&TRACEPARENT) && forwarded_request_header(&TRACESTATE));
    }
}
