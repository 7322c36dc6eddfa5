//! Step 1 of the `/mcp` pipeline: what was asked. The upstream by name, `Host` and `Origin`,
//! the body (bounded), the one JSON-RPC message in it, and the protocol headers checked
//! against it. Everything refused here is answered in JSON-RPC with the spec's codes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use mcpgate_rbac::{McpMethod, STATELESS_REVISION};
use serde_json::Value;

use super::jsonrpc::{Message, ParseError, code};
use super::{Proxy, Upstream, rpc_error};

pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// Protocol revisions mcpgate can carry.
pub const KNOWN_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];
/// What a request without `MCP-Protocol-Version` speaks (MCP transports: assume 2025-03-26).
const DEFAULT_VERSION: &str = "2025-03-26";

/// A request that passed step 1.
pub struct Incoming {
    pub upstream: Arc<Upstream>,
    pub parts: Parts,
    pub body: Bytes,
    /// The POSTed message; `None` for GET (the stream) and DELETE (end of session).
    pub message: Option<Message>,
    /// The method table's row for the message (plumbing for GET, DELETE and responses).
    pub row: McpMethod,
    /// The protocol revision the request speaks; `None` for one mcpgate does not know.
    pub version: Option<&'static str>,
}

impl Incoming {
    /// From 2026-07-28 on: no sessions, `Mcp-Method`/`Mcp-Name` on every request.
    pub fn stateless(&self) -> bool {
        self.version.is_some_and(|v| v >= STATELESS_REVISION)
    }

    /// The id to put on an error answer (JSON-RPC: null when unknown).
    pub fn error_id(&self) -> Value {
        self.message
            .as_ref()
            .map(Message::error_id)
            .unwrap_or(Value::Null)
    }

    pub fn method(&self) -> Option<&str> {
        self.message.as_ref().and_then(|m| m.method.as_deref())
    }
}

/// Reads and checks one request, or answers it.
pub async fn read(
    proxy: &Proxy,
    name: &str,
    parts: Parts,
    body: Body,
) -> Result<Incoming, Response> {
    let Some(upstream) = proxy.upstream(name).cloned() else {
        return Err(rpc_error(
            StatusCode::NOT_FOUND,
            Value::Null,
            code::INVALID_REQUEST,
            &format!("no upstream named {name:?} on this gateway"),
        ));
    };
    let host = parts
        .headers
        .get(header::HOST)
        .map(|h| h.as_bytes())
        .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()));
    if !proxy.hosts.allows(host) {
        return Err(rpc_error(
            StatusCode::MISDIRECTED_REQUEST,
            Value::Null,
            code::INVALID_REQUEST,
            "this gateway does not answer for that Host",
        ));
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN)
        && !proxy.origins.allows(origin.as_bytes())
    {
        return Err(rpc_error(
            StatusCode::FORBIDDEN,
            Value::Null,
            code::INVALID_REQUEST,
            "this Origin may not call the MCP endpoint",
        ));
    }
    let version = protocol_version(&parts.headers)?;
    let (body, message) = if parts.method == Method::POST {
        let bytes = axum::body::to_bytes(body, proxy.body_limit)
            .await
            .map_err(|_| {
                rpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Value::Null,
                    code::INVALID_REQUEST,
                    &format!(
                        "the request body is larger than this gateway accepts ({} bytes)",
                        proxy.body_limit
                    ),
                )
            })?;
        let message = Message::parse(&bytes).map_err(|e| {
            let c = match e {
                ParseError::NotJson(_) => code::PARSE_ERROR,
                _ => code::INVALID_REQUEST,
            };
            rpc_error(StatusCode::BAD_REQUEST, Value::Null, c, &e.to_string())
        })?;
        (bytes, Some(message))
    } else {
        (Bytes::new(), None)
    };
    let row = message
        .as_ref()
        .map_or_else(|| McpMethod::of("notifications/stream"), Message::row);
    let incoming = Incoming {
        upstream,
        parts,
        body,
        message,
        row,
        version,
    };
    if let Some(version) = version
        && incoming.stateless()
        && let Some(message) = &incoming.message
        && let Err(detail) = check_stateless_headers(&incoming.parts.headers, message, version)
    {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            message.error_id(),
            code::HEADER_MISMATCH,
            &detail,
        ));
    }
    Ok(incoming)
}

/// `MCP-Protocol-Version`: absent means 2025-03-26. A revision mcpgate does not know is
/// not refused here: only the upstream knows which revisions it supports (the error names
/// them, `-32022` with `data.supported`), so the request is decided on its method and item
/// and the upstream answers it. Sent twice, it is a header mismatch.
#[expect(
    clippy::result_large_err,
    reason = "the error is the answer, sent once; nothing is gained by boxing it"
)]
fn protocol_version(headers: &HeaderMap) -> Result<Option<&'static str>, Response> {
    let mut values = headers.get_all(&MCP_PROTOCOL_VERSION).iter();
    let Some(value) = values.next() else {
        return Ok(Some(DEFAULT_VERSION));
    };
    if values.next().is_some() {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            code::HEADER_MISMATCH,
            "MCP-Protocol-Version appears more than once",
        ));
    }
    Ok(KNOWN_VERSIONS
        .iter()
        .find(|v| v.as_bytes() == value.as_bytes())
        .copied())
}

/// 2026-07-28: the routing headers must repeat the body (an intermediary that routes on them
/// MUST answer 400 when they do not): `MCP-Protocol-Version` = `_meta`'s version,
/// `Mcp-Method` = `method`, and `Mcp-Name` = the item for the methods that carry it (a value
/// may use the `=?base64?…?=` form for names that are not visible ASCII).
fn check_stateless_headers(
    headers: &HeaderMap,
    message: &Message,
    version: &str,
) -> Result<(), String> {
    let one = |name: &HeaderName| -> Result<Option<&str>, String> {
        let mut all = headers.get_all(name).iter();
        let first = all.next();
        if all.next().is_some() {
            return Err(format!("{name} appears more than once"));
        }
        first
            .map(|v| {
                v.to_str()
                    .map_err(|_| format!("{name} is not visible ASCII"))
            })
            .transpose()
    };
    if let Some(meta) = message.meta_version.as_deref()
        && meta != version
    {
        return Err(format!(
            "MCP-Protocol-Version {version:?} does not match the body's _meta protocol version {meta:?}"
        ));
    }
    let method_header = one(&MCP_METHOD)?;
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
    if message.row().name_header {
        let header = one(&MCP_NAME)?;
        let decoded = header.map(decode_header_value);
        match (message.name.as_deref(), decoded) {
            // A request without the item is for the upstream to refuse (invalid params).
            (None, _) => {}
            (Some(body), Some(Some(h))) if body == h => {}
            (Some(body), _) => {
                return Err(format!(
                    "Mcp-Name {:?} does not match the body's name {body:?}",
                    header.unwrap_or_default()
                ));
            }
        }
    }
    Ok(())
}

/// A header value as MCP 2026-07-28 encodes it: verbatim, or `=?base64?{standard base64 of
/// UTF-8}?=`. `None` for a malformed encoded value (it then matches nothing).
fn decode_header_value(value: &str) -> Option<String> {
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(payload).ok()?;
    // Only the canonical encoding (what encoders emit) is accepted.
    if engine.encode(&bytes) != payload {
        return None;
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn call(name: &str) -> Message {
        Message::parse(
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn version_header_picks_the_era_and_unknown_versions_are_left_to_the_upstream() {
        assert_eq!(
            protocol_version(&headers(&[])).ok(),
            Some(Some("2025-03-26"))
        );
        assert_eq!(
            protocol_version(&headers(&[("mcp-protocol-version", "2026-07-28")])).ok(),
            Some(Some("2026-07-28"))
        );
        assert_eq!(
            protocol_version(&headers(&[("mcp-protocol-version", "1999-01-01")])).ok(),
            Some(None)
        );
        let twice = protocol_version(&headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-protocol-version", "2026-07-28"),
        ]));
        assert_eq!(
            twice.err().map(|r| r.status()),
            Some(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn stateless_requests_must_repeat_version_method_and_name() {
        let v = ("mcp-protocol-version", "2026-07-28");
        let ok = headers(&[v, ("mcp-method", "tools/call"), ("mcp-name", "echo")]);
        assert_eq!(
            check_stateless_headers(&ok, &call("echo"), "2026-07-28"),
            Ok(())
        );
        assert!(check_stateless_headers(&ok, &call("other"), "2026-07-28").is_err());
        let wrong_method = headers(&[v, ("mcp-method", "tools/list"), ("mcp-name", "echo")]);
        assert!(check_stateless_headers(&wrong_method, &call("echo"), "2026-07-28").is_err());
        let no_name = headers(&[v, ("mcp-method", "tools/call")]);
        assert!(check_stateless_headers(&no_name, &call("echo"), "2026-07-28").is_err());
        assert!(check_stateless_headers(&headers(&[v]), &call("echo"), "2026-07-28").is_err());
        let twice = headers(&[
            v,
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
            ("mcp-name", "echo"),
        ]);
        assert!(check_stateless_headers(&twice, &call("echo"), "2026-07-28").is_err());
        // The body says another version than the header.
        let mut meta = call("echo");
        meta.meta_version = Some("2025-11-25".into());
        assert!(check_stateless_headers(&ok, &meta, "2026-07-28").is_err());
    }

    #[test]
    fn names_may_be_base64_encoded() {
        let v = ("mcp-protocol-version", "2026-07-28");
        // "héllo" in the sentinel form.
        let encoded = headers(&[
            v,
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?aMOpbGxv?="),
        ]);
        assert_eq!(
            check_stateless_headers(&encoded, &call("héllo"), "2026-07-28"),
            Ok(())
        );
        assert_eq!(
            decode_header_value("=?base64?aMOpbGxv?=").as_deref(),
            Some("héllo")
        );
        assert_eq!(decode_header_value("=?base64?!!?="), None);
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
    }
}
