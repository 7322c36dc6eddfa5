//! Step 7 of the `/mcp` pipeline: the upstream's response back to the client, head rewritten
//! (the session id sealed, only protocol headers kept), body streamed chunk by chunk as it
//! arrives (SSE events keep their `id:`/`event:`/`retry:` lines: the bytes are not
//! re-encoded), list results filtered to what the caller may use. A stream the upstream
//! abandons (silent past the idle timeout, or broken off) is ended by [`super::watch`].

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::Upstream;
use super::parse::{MCP_PROTOCOL_VERSION, MCP_SESSION_ID};
use super::send::Failure;
use super::session::SessionIds;
use super::watch::{self, Watch};
use crate::policy::lists::ListScope;

const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// A complete JSON answer up to this size is read whole and sent with its `Content-Length`
/// (one write, no chunked framing); anything larger, or of unknown length, streams.
const WHOLE_BODY_UP_TO: u64 = 1024 * 1024;

/// Response headers the client gets (`Mcp-Session-Id` is replaced by the sealed id).
fn forwarded_response_header(name: &HeaderName) -> bool {
    name == header::CONTENT_TYPE
        || name == header::CACHE_CONTROL
        || name == header::ALLOW
        || name == header::RETRY_AFTER
        || name == MCP_PROTOCOL_VERSION
}

pub async fn relay(
    sessions: &SessionIds,
    upstream: &Upstream,
    user_id: &str,
    response: reqwest::Response,
    list_scope: Option<ListScope>,
    watch: Watch,
    url_elicitation: bool,
) -> Result<Response, Failure> {
    let status = response.status();
    let mut headers = HeaderMap::with_capacity(6);
    for (name, value) in response.headers() {
        if forwarded_response_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(sid) = response.headers().get(&MCP_SESSION_ID)
        && let Some(sealed) = sessions
            .seal_with(user_id, &upstream.name, sid.as_bytes(), url_elicitation)
            .and_then(|s| HeaderValue::from_str(&s).ok())
    {
        headers.insert(MCP_SESSION_ID, sealed);
    }
    let is_sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_sse {
        // Tell any reverse proxy in front of mcpgate not to buffer the stream either.
        headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    }
    // A list result to filter is read whole when it is JSON (it must be parsed anyway).
    let whole = !is_sse
        && (list_scope.is_some()
            || response
                .content_length()
                .is_some_and(|n| n <= WHOLE_BODY_UP_TO));
    let body = if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
        Body::empty()
    } else if whole {
        match tokio::time::timeout(upstream.idle_timeout, response.bytes()).await {
            Ok(Ok(bytes)) => Body::from(match &list_scope {
                Some(scope) => scope.filter_json(bytes),
                None => bytes,
            }),
            Ok(Err(e)) => return Err(Failure::Unreachable(e.to_string())),
            Err(_) => return Err(Failure::Timeout),
        }
    } else if is_sse {
        let stream = watch::sse(response.bytes_stream(), watch);
        match list_scope {
            Some(scope) => Body::from_stream(scope.filter_sse(Box::pin(stream))),
            None => Body::from_stream(stream),
        }
    } else {
        Body::from_stream(watch::chunks(response.bytes_stream(), watch))
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
