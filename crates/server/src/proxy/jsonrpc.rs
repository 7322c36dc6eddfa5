//! The little the proxy reads from a JSON-RPC message: kind, id, method and the name the
//! 2026-07-28 `Mcp-Name` header must repeat. Everything else is forwarded untouched.

use serde::Deserialize;
use serde_json::Value;

/// What one POSTed JSON-RPC message is, as far as routing needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `None` for notifications (and `Some(Value::Null)` for an explicit null id).
    pub id: Option<Value>,
    /// `None` for responses (the client answering a server request).
    pub method: Option<String>,
    /// `params.name` for `tools/call` and `prompts/get`, `params.uri` for `resources/read`.
    pub name: Option<String>,
    /// What an RBAC grant's `target` is matched against: `name` for the methods above,
    /// `params.uri` for `resources/subscribe`/`unsubscribe`, `params.ref.name` or
    /// `params.ref.uri` for `completion/complete`.
    pub target: Option<String>,
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
}

#[derive(Deserialize)]
struct RawRef {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    uri: Option<Value>,
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
        let (name, target) = match (raw.method.as_deref(), raw.params) {
            (Some("tools/call" | "prompts/get"), Some(p)) => {
                let name = string(p.name);
                (name.clone(), name)
            }
            (Some("resources/read"), Some(p)) => {
                let uri = string(p.uri);
                (uri.clone(), uri)
            }
            (Some("resources/subscribe" | "resources/unsubscribe"), Some(p)) => {
                (None, string(p.uri))
            }
            (Some("completion/complete"), Some(p)) => (
                None,
                p.reference
                    .and_then(|r| string(r.name).or_else(|| string(r.uri))),
            ),
            _ => (None, None),
        };
        Ok(Self {
            id: raw.id,
            method: raw.method,
            name,
            target,
        })
    }

    pub fn is_request(&self) -> bool {
        self.method.is_some() && self.id.is_some()
    }

    /// The id to put on an error answer (JSON-RPC: null when unknown).
    pub fn error_id(&self) -> Value {
        self.id.clone().unwrap_or(Value::Null)
    }
}

/// Methods whose 2026-07-28 requests carry `Mcp-Name`.
pub fn has_name_header(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// JSON-RPC error codes the proxy itself answers with.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    /// Implementation-defined server errors (-32000 to -32099).
    pub const UPSTREAM_UNAVAILABLE: i64 = -32001;
    pub const UPSTREAM_TIMEOUT: i64 = -32002;
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
                name: Some("echo".into()),
                target: Some("echo".into()),
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
