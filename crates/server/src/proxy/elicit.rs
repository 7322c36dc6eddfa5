//! Asking the user to connect their account when a call needs a connection they lack
//! (`user_oauth`, `user_secret`). The URL (`web::connect::connect_url`) carries only an
//! `elicitation` sealed for this user: no token, no personal data in clear.
//!
//! - 2026-07-28, a `tools/call`, `resources/read` or `prompts/get` whose
//!   `_meta["io.modelcontextprotocol/clientCapabilities"]` declares `elicitation.url`: an
//!   `input_required` result with one URL-mode `elicitation/create` and a `requestState`
//!   sealed (SecretBox, AAD `proxy/request_state/{user id}`) with the upstream, the method, a
//!   digest of the params and a 10-minute expiry. On the retry [`take_request_state`] checks
//!   it and strips it (with `inputResponses`) before anything else; a tampered, expired or
//!   foreign one is a JSON-RPC error. A `requestState` that is not mcpgate's (no `mcpgate1.`
//!   prefix: the upstream's own) passes through untouched. Still not connected: asked again.
//! - Every other client (no URL elicitation declared): a `tools/call` gets a tool result with
//!   `isError: true` whose text names the connect URL (MCP: tool errors the model can act on
//!   are results), any other request a JSON-RPC error naming it.
//!
//! - 2025-11-25, a client that declared `elicitation.url` in `initialize` (remembered in its
//!   sealed session id, or read from the `initialize` itself): JSON-RPC error `-32042`
//!   (URLElicitationRequiredError) with the URL elicitation in `data.elicitations`.
//!
//! Not built: `notifications/elicitation/complete` once the user has connected (2025-11-25);
//! the client retries when the person says they are done.

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_crypto::{Place, TokenHash};
use mcpgate_storage::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::jsonrpc::code;
use super::rpc_error;
use crate::app::AppState;
use crate::web::connect::connect_url;

/// Marks mcpgate's own `requestState` (an upstream's has another shape and passes through).
const STATE_PREFIX: &str = "mcpgate1.";
/// How long a `requestState` stays valid.
const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// Longest `requestState` of mcpgate's accepted (its own are far shorter).
const MAX_STATE_LEN: usize = 2048;
const CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";

/// What mcpgate's `requestState` binds, sealed for the user.
#[derive(Serialize, Deserialize)]
struct RequestState {
    up: String,
    m: String,
    /// SHA-256 (hex) of the params without `requestState`, `inputResponses` and `_meta`.
    d: String,
    exp: i64,
}

fn state_place(user_id: &str) -> Place<'_> {
    Place::new("proxy", "request_state", user_id)
}

fn params_digest(params: &Value) -> String {
    let mut p = params.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("requestState");
        o.remove("inputResponses");
        o.remove("_meta");
    }
    TokenHash::of(&p.to_string()).to_hex()
}

fn has(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A retry carrying mcpgate's own `requestState`: checked against this user, upstream,
/// method and params, then stripped (with `inputResponses`, which answered mcpgate's own
/// elicitation) from the body that goes on. Any other body is returned as it is.
pub fn take_request_state(
    state: &AppState,
    user_id: &str,
    upstream: &str,
    method: Option<&str>,
    body: Bytes,
    id: &Value,
) -> Result<Bytes, Box<Response>> {
    if !has(&body, b"requestState") {
        return Ok(body);
    }
    let Ok(mut message) = serde_json::from_slice::<Value>(&body) else {
        return Ok(body);
    };
    let Some(sealed) = message["params"]["requestState"]
        .as_str()
        .and_then(|s| s.strip_prefix(STATE_PREFIX))
        .map(str::to_owned)
    else {
        return Ok(body);
    };
    let refuse = |why: &str| {
        tracing::warn!(user.id = %user_id, upstream, why, "requestState refused");
        Box::new(rpc_error(
            StatusCode::BAD_REQUEST,
            id.clone(),
            code::INVALID_PARAMS,
            &format!(
                "the requestState is not valid for this request ({why}): send the request                  again without it"
            ),
        ))
    };
    if sealed.len() > MAX_STATE_LEN {
        return Err(refuse("malformed"));
    }
    let Some(opened) = URL_SAFE_NO_PAD
        .decode(&sealed)
        .ok()
        .and_then(|b| state.secret_box.open(&b, &state_place(user_id)).ok())
    else {
        return Err(refuse("tampered, or made for another user"));
    };
    let Ok(rs) = serde_json::from_slice::<RequestState>(&opened) else {
        return Err(refuse("malformed"));
    };
    if rs.exp < now_ms() {
        return Err(refuse("expired"));
    }
    if rs.up != upstream || Some(rs.m.as_str()) != method {
        return Err(refuse("made for another upstream or method"));
    }
    if rs.d != params_digest(&message["params"]) {
        return Err(refuse("made for other params"));
    }
    if let Some(params) = message["params"].as_object_mut() {
        params.remove("requestState");
        params.remove("inputResponses");
    }
    Ok(Bytes::from(message.to_string()))
}

/// The 2026-07-28 `input_required` result, if this request may get one.
fn input_required(
    state: &AppState,
    user_id: &str,
    upstream: &str,
    method: Option<&str>,
    body: &Bytes,
    id: &Value,
    url: &str,
) -> Option<Response> {
    let method =
        method.filter(|m| matches!(*m, "tools/call" | "resources/read" | "prompts/get"))?;
    let message: Value = serde_json::from_slice(body).ok()?;
    let params = &message["params"];
    params["_meta"][CAPABILITIES_META]["elicitation"]
        .get("url")
        .filter(|v| v.is_object())?;
    let rs = RequestState {
        up: upstream.to_owned(),
        m: method.to_owned(),
        d: params_digest(params),
        exp: now_ms().saturating_add(STATE_TTL_MS),
    };
    let sealed = state
        .secret_box
        .seal(&serde_json::to_vec(&rs).ok()?, &state_place(user_id))
        .ok()?;
    let elicitation_id = url.rsplit('=').next().unwrap_or_default();
    let name = state
        .connectors
        .get(upstream)
        .map_or(upstream, |c| c.display_name.as_str());
    let message_text = format!("Connect your {name} account to continue.");
    let key = format!("mcpgate-connect-{upstream}");
    Some(
        (
            StatusCode::OK,
            Json(json!({
                "jsonrpc": "2.0",
                "id": id,
                "result": {
                    "resultType": "input_required",
                    "inputRequests": {
                        key: {
                            "method": "elicitation/create",
                            "params": {
                                "mode": "url",
                                "url": url,
                                "elicitationId": elicitation_id.chars().take(64).collect::<String>(),
                                "message": message_text,
                            },
                        },
                    },
                    "requestState": format!("{STATE_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)),
                },
            })),
        )
            .into_response(),
    )
}

/// Whether an `initialize` declares URL-mode elicitation (`capabilities.elicitation.url`).
pub fn declares_url_elicitation(body: &Bytes) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|m| {
        m["params"]["capabilities"]["elicitation"]
            .get("url")
            .is_some_and(Value::is_object)
    })
}

/// The error code of URLElicitationRequiredError (MCP 2025-11-25).
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// The answer to a request whose upstream needs the user's own account there, not connected.
/// `url_elicitation`: the client declared URL elicitation at `initialize` (2025-11-25).
pub fn not_connected(
    state: &AppState,
    user_id: &str,
    upstream: &str,
    method: Option<&str>,
    body: &Bytes,
    url_elicitation: bool,
    id: Value,
) -> Response {
    let name = state
        .connectors
        .get(upstream)
        .map_or(upstream, |c| c.display_name.as_str());
    tracing::info!(user.id = %user_id, upstream, "account not connected: asking to connect");
    let Some(url) = connect_url(state, user_id, upstream) else {
        return rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            id,
            code::UPSTREAM_UNAVAILABLE,
            "a connect link could not be made; retry shortly",
        );
    };
    if let Some(answer) = input_required(state, user_id, upstream, method, body, &id, &url) {
        return answer;
    }
    if url_elicitation {
        let elicitation_id: String = url
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect();
        return (
            StatusCode::OK,
            Json(json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {
                    "code": URL_ELICITATION_REQUIRED,
                    "message": format!("This request requires connecting your {name} account."),
                    "data": {
                        "elicitations": [{
                            "mode": "url",
                            "elicitationId": elicitation_id,
                            "url": url,
                            "message": format!("Connect your {name} account to continue."),
                        }],
                    },
                },
            })),
        )
            .into_response();
    }
    let text = format!(
        "This tool acts with your own {name} account, which is not connected yet. Open {url} \
         in your browser to connect it, then run the tool again."
    );
    match method {
        Some("tools/call") => (
            StatusCode::OK,
            Json(json!({
                "jsonrpc": "2.0",
                "id": id,
                "result": {
                    "content": [{ "type": "text", "text": text }],
                    "isError": true,
                },
            })),
        )
            .into_response(),
        _ => rpc_error(
            StatusCode::FORBIDDEN,
            id,
            code::ACCESS_DENIED,
            &format!(
                "the upstream {upstream:?} acts with your own {name} account, which is not \
                 connected: open {url} in your browser to connect it, then retry"
            ),
        ),
    }
}
