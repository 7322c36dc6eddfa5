//! The `/mcp/{name}` handler: checks, then one upstream request, then the response streamed
//! back as it arrives.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::Value;

use super::jsonrpc::{Message, code, has_name_header};
use super::{Proxy, Upstream};
use crate::app::AppState;
use crate::auth;
use crate::error::ApiError;
use crate::policy::lists::ListScope;

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Protocol revisions mcpgate can carry. An unknown `MCP-Protocol-Version` gets 400.
const KNOWN_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];
/// From this revision on there are no sessions and requests carry `Mcp-Method`/`Mcp-Name`.
const STATELESS_FROM: &str = "2026-07-28";

/// Request headers the upstream gets; everything else (above all `Authorization`, but also
/// cookies, `User-Agent`, forwarding headers) stays at the gateway.
fn forwarded_request_header(name: &HeaderName) -> bool {
    name == header::ACCEPT
        || name == header::CONTENT_TYPE
        || name == MCP_PROTOCOL_VERSION
        || name == MCP_METHOD
        || name == MCP_NAME
        || name == LAST_EVENT_ID
        || name.as_str().starts_with("mcp-param-")
}

/// Response headers the client gets (`Mcp-Session-Id` is replaced by the sealed id).
fn forwarded_response_header(name: &HeaderName) -> bool {
    name == header::CONTENT_TYPE
        || name == header::CACHE_CONTROL
        || name == header::ALLOW
        || name == header::RETRY_AFTER
        || name == MCP_PROTOCOL_VERSION
}

/// `POST | GET | DELETE /mcp/{name}`.
pub async fn handle(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let proxy = &state.proxy;
    let Some(upstream) = proxy.upstream(&name).cloned() else {
        return ApiError::NotFound(format!("no upstream named {name:?}")).into_response();
    };
    let (parts, body) = request.into_parts();
    if let Some(origin) = parts.headers.get(header::ORIGIN)
        && !proxy.origins.allows(origin.as_bytes())
    {
        return ApiError::Forbidden("this Origin may not call the MCP endpoint".into())
            .into_response();
    }
    let principal = match auth::authenticate(
        &state.authenticator,
        &parts.headers,
        &parts.uri,
        &proxy.issuer,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let started = Instant::now();
    // Federated users: who they are at their identity provider (cached; one provider call per
    // grant and TTL, refreshed exactly once when due). A dead grant means signing in again.
    // The context also feeds the RBAC mapping rules (Keycloak roles, groups, domains, …).
    let identity = match state.identity.context_for_user(&principal.user_id).await {
        Ok(identity) => identity,
        Err(e) => return ApiError::from(e).into_response(),
    };

    let (body, message) = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, proxy.body_limit).await {
            Ok(b) => b,
            Err(_) => {
                return rpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Value::Null,
                    code::INVALID_REQUEST,
                    "the request body is too large",
                );
            }
        };
        match Message::parse(&bytes) {
            Ok(m) => (bytes, Some(m)),
            Err(e) => {
                let code = match e {
                    super::jsonrpc::ParseError::NotJson(_) => code::PARSE_ERROR,
                    _ => code::INVALID_REQUEST,
                };
                return rpc_error(StatusCode::BAD_REQUEST, Value::Null, code, &e.to_string());
            }
        }
    } else {
        (Bytes::new(), None)
    };
    let error_id = message
        .as_ref()
        .map(Message::error_id)
        .unwrap_or(Value::Null);

    // Scope: reading needs `mcp:read`, acting (tools/call, …) needs `mcp`. The challenge names
    // every scope still needed (MCP 2026-07-28: one challenge with all of them).
    let needed = crate::oauth::scopes::needed_for(
        message
            .as_ref()
            .and_then(|m| m.method.as_deref())
            .unwrap_or("ping"),
    );
    if !crate::oauth::scopes::satisfies(&principal.scopes.join(" "), needed) {
        let path = parts.uri.path();
        return ApiError::Challenge {
            status: StatusCode::FORBIDDEN,
            challenge: crate::error::Challenge {
                error: Some("insufficient_scope"),
                description: Some(format!("this request needs the {needed} scope")),
                scope: Some(needed.to_owned()),
                resource_metadata: Some(auth::resource_metadata_url(&proxy.issuer, path)),
            },
        }
        .into_response();
    }

    let stateless = match check_headers(&parts.headers, message.as_ref()) {
        Ok(stateless) => stateless,
        Err(detail) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                error_id,
                code::INVALID_REQUEST,
                &detail,
            );
        }
    };

    // RBAC, before anything leaves mcpgate: cached grants, a miss is one short read.
    let list_scope = match enforce(
        &state,
        &principal,
        identity.as_deref(),
        &upstream.name,
        &parts.method,
        message.as_ref(),
    )
    .await
    {
        Ok(scope) => scope,
        Err(response) => return response,
    };

    // The client's session id opens only for the principal who created it.
    let upstream_session = match parts.headers.get(&MCP_SESSION_ID) {
        Some(sid) if !stateless => {
            match proxy
                .sessions
                .open(&principal.user_id, &upstream.name, sid.as_bytes())
                .ok()
                .and_then(|id| HeaderValue::from_bytes(&id).ok())
            {
                Some(id) => Some(id),
                None => {
                    return rpc_error(
                        StatusCode::NOT_FOUND,
                        error_id,
                        code::INVALID_REQUEST,
                        "session not found",
                    );
                }
            }
        }
        _ => None,
    };

    let method = message.as_ref().and_then(|m| m.method.clone());
    let result = send(
        proxy,
        &upstream,
        parts.method.clone(),
        &parts.headers,
        upstream_session,
        body,
    )
    .await;
    let relayed = match result {
        Ok(upstream_response) => {
            relay(
                proxy,
                &upstream,
                &principal.user_id,
                upstream_response,
                list_scope,
            )
            .await
        }
        Err(failure) => Err(failure),
    };
    let response = match relayed {
        Ok(response) => response,
        Err(failure) => {
            let (status, code, text) = match failure {
                Failure::Timeout => (
                    StatusCode::GATEWAY_TIMEOUT,
                    code::UPSTREAM_TIMEOUT,
                    "the upstream MCP server did not answer in time",
                ),
                Failure::Unreachable(detail) => {
                    tracing::warn!(upstream = %upstream.name, error.detail = %detail, "upstream unreachable");
                    (
                        StatusCode::BAD_GATEWAY,
                        code::UPSTREAM_UNAVAILABLE,
                        "the upstream MCP server is unreachable",
                    )
                }
            };
            rpc_error(status, error_id, code, text)
        }
    };
    tracing::info!(
        user.id = %principal.user_id,
        upstream = %upstream.name,
        http.method = %parts.method,
        mcp.method = method.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1e3,
        "mcp request"
    );
    response
}

/// Decides the request for the principal and records the decision. `Ok` carries the list
/// filter for an allowed list request; `Err` the answer for a denied one: a request gets
/// exactly what the upstream answers for an item it does not have (the fixture's rmcp:
/// HTTP 200, JSON-RPC -32602 `unknown tool "x"`), so a denial does not reveal that the item
/// exists; a notification is accepted and dropped; a GET or DELETE gets 403.
async fn enforce(
    state: &AppState,
    principal: &mcpgate_core::Principal,
    identity: Option<&crate::identity::FederatedContext>,
    upstream: &str,
    http_method: &Method,
    message: Option<&Message>,
) -> Result<Option<ListScope>, Response> {
    use mcpgate_rbac::{Action, Request};
    let method = message.and_then(|m| m.method.as_deref());
    let request = match method {
        Some(m) => Request::for_method(m, upstream, message.and_then(|m| m.target.as_deref())),
        // A JSON-RPC response from the client, a GET stream or a DELETE: plumbing.
        None => Request::new(Action::Plumbing, upstream, Some(http_method.as_str())),
    };
    let (decision, grants) = match state
        .policy
        .decide(&principal.user_id, identity, &request)
        .await
    {
        Ok(d) => d,
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    state.audit.record(crate::policy::audit::decision_event(
        principal, &request, method, &decision,
    ));
    metrics::counter!(
        "mcpgate_rbac_decisions_total",
        "decision" => if decision.allowed { "allow" } else { "deny" }
    )
    .increment(1);
    if decision.allowed {
        return Ok(method.and_then(|m| ListScope::for_method(m, grants, upstream)));
    }
    tracing::debug!(user.id = %principal.user_id, upstream, mcp.method = method.unwrap_or("-"), %decision, "denied");
    Err(match message {
        Some(m) if m.is_request() => denied_as_unknown(m),
        Some(_) => StatusCode::ACCEPTED.into_response(),
        None => ApiError::Forbidden("no access to this upstream".into()).into_response(),
    })
}

/// The answer an upstream gives for an item it does not have.
fn denied_as_unknown(message: &Message) -> Response {
    let name = message.target.as_deref().unwrap_or_default();
    let (code, text) = match message.method.as_deref() {
        Some("tools/call") => (-32602, format!("unknown tool {name:?}")),
        Some("prompts/get") => (-32602, format!("unknown prompt {name:?}")),
        Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
            (-32002, format!("resource not found: {name}"))
        }
        _ => (-32601, "Method not found".to_owned()),
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": message.error_id(),
        "error": { "code": code, "message": text },
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Validates `MCP-Protocol-Version` and, for 2026-07-28, `Mcp-Method`/`Mcp-Name` against the
/// body. Returns whether the request belongs to the stateless era.
fn check_headers(headers: &HeaderMap, message: Option<&Message>) -> Result<bool, String> {
    let version = match headers.get(&MCP_PROTOCOL_VERSION) {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| "MCP-Protocol-Version is not ASCII".to_owned())?;
            if !KNOWN_VERSIONS.contains(&v) {
                return Err(format!("unsupported MCP-Protocol-Version {v:?}"));
            }
            Some(v)
        }
    };
    // Date-shaped versions compare as strings.
    let stateless = version.is_some_and(|v| v >= STATELESS_FROM);
    if !stateless {
        return Ok(false);
    }
    let Some(message) = message else {
        return Ok(true);
    };
    let header = |name: &HeaderName| -> Result<Option<&str>, String> {
        headers
            .get(name)
            .map(|v| v.to_str().map_err(|_| format!("{name} is not ASCII")))
            .transpose()
    };
    let method_header = header(&MCP_METHOD)?;
    match (message.method.as_deref(), method_header) {
        (Some(body), Some(h)) if body == h => {}
        (Some(body), Some(h)) => {
            return Err(format!(
                "Mcp-Method {h:?} does not match the body's method {body:?}"
            ));
        }
        (Some(_), None) => return Err("Mcp-Method is required by 2026-07-28".into()),
        (None, Some(_)) => return Err("Mcp-Method on a message that is not a request".into()),
        (None, None) => {}
    }
    if let Some(method) = message.method.as_deref()
        && has_name_header(method)
    {
        match (message.name.as_deref(), header(&MCP_NAME)?) {
            (Some(body), Some(h)) if body == h => {}
            (body, h) => {
                return Err(format!(
                    "Mcp-Name {h:?} does not match the body's name {body:?}"
                ));
            }
        }
    }
    Ok(true)
}

enum Failure {
    Timeout,
    Unreachable(String),
}

async fn send(
    proxy: &Proxy,
    upstream: &Upstream,
    method: Method,
    headers: &HeaderMap,
    session: Option<HeaderValue>,
    body: Bytes,
) -> Result<reqwest::Response, Failure> {
    let mut forwarded = HeaderMap::with_capacity(8);
    for (name, value) in headers {
        if forwarded_request_header(name) {
            forwarded.append(name.clone(), value.clone());
        }
    }
    if let Some(session) = session {
        forwarded.insert(MCP_SESSION_ID, session);
    }
    let mut request = proxy
        .client
        .request(method, upstream.url.clone())
        .headers(forwarded);
    if !body.is_empty() {
        request = request.body(body);
    }
    // Dropping this future (the client went away) drops the upstream request with it: the
    // pooled connection is closed, which a 2026-07-28 upstream takes as cancellation.
    match tokio::time::timeout(upstream.response_timeout, request.send()).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(e)) if e.is_timeout() => Err(Failure::Timeout),
        Ok(Err(e)) => Err(Failure::Unreachable(e.to_string())),
        Ok(Ok(response)) => Ok(response),
    }
}

/// A complete JSON answer up to this size is read whole and sent with its `Content-Length`
/// (one write, no chunked framing); anything larger, or of unknown length, streams.
const WHOLE_BODY_UP_TO: u64 = 1024 * 1024;

/// The upstream's response, head rewritten, body streamed chunk by chunk as it arrives (SSE
/// events keep their `id:`/`event:`/`retry:` lines: the bytes are not re-encoded).
async fn relay(
    proxy: &Proxy,
    upstream: &Upstream,
    user_id: &str,
    response: reqwest::Response,
    list_scope: Option<ListScope>,
) -> Result<Response, Failure> {
    let status = response.status();
    let mut headers = HeaderMap::with_capacity(6);
    for (name, value) in response.headers() {
        if forwarded_response_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(sid) = response.headers().get(&MCP_SESSION_ID)
        && let Some(sealed) = proxy
            .sessions
            .seal(user_id, &upstream.name, sid.as_bytes())
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
    } else {
        let stream = idle_limited(response.bytes_stream(), upstream.idle_timeout);
        match list_scope {
            Some(scope) if is_sse => Body::from_stream(scope.filter_sse(Box::pin(stream))),
            _ => Body::from_stream(stream),
        }
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// Ends a stream that stays silent longer than `idle` (a hung upstream must not pin a client
/// connection forever).
fn idle_limited<S>(stream: S, idle: Duration) -> impl Stream<Item = Result<Bytes, reqwest::Error>>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    futures::stream::unfold(stream, move |mut stream| async move {
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => Some((item, stream)),
            Ok(None) => None,
            Err(_) => {
                tracing::debug!("upstream stream idle too long; ending it");
                None
            }
        }
    })
}

fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    ApiError::JsonRpc {
        status,
        id,
        code,
        message: message.to_owned(),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn call(name: &str) -> Option<Message> {
        Message::parse(
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
            .as_bytes(),
        )
        .ok()
    }

    #[test]
    fn version_header_picks_the_era_and_unknown_versions_are_refused() {
        assert_eq!(check_headers(&headers(&[]), call("a").as_ref()), Ok(false));
        assert_eq!(
            check_headers(
                &headers(&[("mcp-protocol-version", "2025-11-25")]),
                call("a").as_ref()
            ),
            Ok(false)
        );
        assert!(
            check_headers(
                &headers(&[("mcp-protocol-version", "1999-01-01")]),
                call("a").as_ref()
            )
            .is_err()
        );
    }

    #[test]
    fn stateless_requests_must_repeat_method_and_name() {
        let v = ("mcp-protocol-version", "2026-07-28");
        let ok = headers(&[v, ("mcp-method", "tools/call"), ("mcp-name", "echo")]);
        assert_eq!(check_headers(&ok, call("echo").as_ref()), Ok(true));
        assert!(check_headers(&ok, call("other").as_ref()).is_err());
        let wrong_method = headers(&[v, ("mcp-method", "tools/list"), ("mcp-name", "echo")]);
        assert!(check_headers(&wrong_method, call("echo").as_ref()).is_err());
        let no_name = headers(&[v, ("mcp-method", "tools/call")]);
        assert!(check_headers(&no_name, call("echo").as_ref()).is_err());
        assert!(check_headers(&headers(&[v]), call("echo").as_ref()).is_err());
    }

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
    }
}
