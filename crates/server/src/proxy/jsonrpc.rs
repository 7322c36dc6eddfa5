//! The little the proxy reads from a JSON-RPC message: kind, id, method, the item it names
//! (per the method table, [`McpMethod`]) and the protocol version its `_meta` declares.
//! Everything else is forwarded untouched, and parsed no further than this.

use mcpgate_rbac::{McpMethod, TargetField};
use serde::Deserialize;
use serde_json::Value;

/// What one POSTed JSON-RPC message is, as far as routing needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `None` for notifications (and `Some(Value::Null)` for an explicit null id).
    pub id: Option<Value>,
    /// `None` for responses (the client answering a server request).
    pub method: Option<String>,
    /// What an RBAC grant's `target` is matched against, read where the method table says
    /// (`params.name`, `params.uri`, `params.ref.name|uri`, or the method itself); `None`
    /// when the method names an item and the request does not (or not as a string).
    pub target: Option<String>,
    /// The name a 2026-07-28 request repeats in `Mcp-Name` (the target of the methods that
    /// carry that header).
    pub name: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28).
    pub meta_version: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<RawParams>,
}

#[derive(Deserialize)]
struct RawParams {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    uri: Option<Value>,
    #[serde(default, rename = "ref")]
    reference: Option<RawRef>,
    #[serde(default, rename = "_meta")]
    meta: Option<RawMeta>,
}

#[derive(Deserialize)]
struct RawRef {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    uri: Option<Value>,
}

#[derive(Deserialize)]
struct RawMeta {
    #[serde(default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<Value>,
}

fn string(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Why a body is not one JSON-RPC message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("JSON-RPC batches are not supported (MCP 2025-06-18 removed them)")]
    Batch,
    #[error("the body is not a JSON-RPC message object")]
    NotAMessage,
}

impl Message {
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'[') => return Err(ParseError::Batch),
            Some(b'{') => {}
            _ => return Err(ParseError::NotAMessage),
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                ParseError::NotAMessage
            } else {
                ParseError::NotJson(e.to_string())
            }
        })?;
        let row = raw.method.as_deref().map(McpMethod::of);
        let (params, meta_version) = match raw.params {
            Some(mut p) => {
                let meta = p.meta.take().and_then(|m| string(m.protocol_version));
                (Some(p), meta)
            }
            None => (None, None),
        };
        let target = match (row.map(|r| r.target), params) {
            (Some(TargetField::Name), Some(p)) => string(p.name),
            (Some(TargetField::Uri), Some(p)) => string(p.uri),
            (Some(TargetField::CompletionRef), Some(p)) => p
                .reference
                .and_then(|r| string(r.name).or_else(|| string(r.uri))),
            (Some(TargetField::Method), _) => raw.method.clone(),
            _ => None,
        };
        let name = row.filter(|r| r.name_header).and(target.clone());
        Ok(Self {
            id: raw.id,
            method: raw.method,
            target,
            name,
            meta_version,
        })
    }

    /// The method table's row; responses (no method) are plumbing.
    pub fn row(&self) -> McpMethod {
        McpMethod::of(self.method.as_deref().unwrap_or("notifications/response"))
    }

    pub fn is_request(&self) -> bool {
        self.method.is_some() && self.id.is_some()
    }

    /// The id to put on an error answer (JSON-RPC: null when unknown).
    pub fn error_id(&self) -> Value {
        self.id.clone().unwrap_or(Value::Null)
    }
}

/// JSON-RPC error codes the proxy itself answers with.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    /// Implementation-defined server errors (-32000 to -32099).
    pub const UPSTREAM_UNAVAILABLE: i64 = -32001;
    pub const UPSTREAM_TIMEOUT: i64 = -32002;
    /// mcpgate refuses the caller on this upstream (no grant at all).
    pub const ACCESS_DENIED: i64 = -32003;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    /// 2025 revisions' "resource not found".
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// 2026-07-28: `Mcp-Method`/`Mcp-Name`/`MCP-Protocol-Version` disagree with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_kind_id_method_and_name() {
        let m = Message::parse(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"x":[1,2]}}}"#,
        );
        assert_eq!(
            m,
            Ok(Message {
                id: Some(json!(7)),
                method: Some("tools/call".into()),
                target: Some("echo".into()),
                name: Some("echo".into()),
                meta_version: None,
            })
        );
        let c = Message::parse(
            br#"{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"greet"}}}"#,
        );
        assert_eq!(c.ok().and_then(|m| m.target), Some("greet".into()));
        let r = Message::parse(
            br#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}"#,
        );
        assert_eq!(r.ok().and_then(|m| m.name), Some("file:///x".into()));
        let n = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(n.as_ref().map(Message::is_request), Ok(false));
        let resp = Message::parse(br#" {"jsonrpc":"2.0","id":1,"result":{}}"#);
        assert_eq!(resp.map(|m| m.method), Ok(None));
        let nameless = Message::parse(
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":5,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        );
        assert_eq!(
            nameless.map(|m| (m.target, m.meta_version)),
            Ok((None, Some("2026-07-28".into())))
        );
        let sub = Message::parse(
            br#"{"jsonrpc":"2.0","id":4,"method":"resources/subscribe","params":{"uri":"u"}}"#,
        );
        assert_eq!(
            sub.map(|m| (m.target, m.name)),
            Ok((Some("u".into()), None))
        );
    }

    #[test]
    fn rejects_batches_and_garbage() {
        assert_eq!(Message::parse(b"[{}]"), Err(ParseError::Batch));
        assert_eq!(Message::parse(b"42"), Err(ParseError::NotAMessage));
        assert_eq!(
            Message::parse(br#"{"method": 3}"#),
            Err(ParseError::NotAMessage)
        );
        assert!(matches!(
            Message::parse(b"{\"id\":"),
            Err(ParseError::NotJson(_))
        ));
    }
}
