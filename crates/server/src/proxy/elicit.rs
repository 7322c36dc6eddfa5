//! Asking the user to connect their account when a call needs a connection they lack
//! (`user_oauth`, `user_secret`). Built so far: the answer for clients without URL-mode
//! elicitation, in both protocol eras — a `tools/call` gets a tool result with
//! `isError: true` whose text names the connect URL (the model and the person see it; MCP:
//! tool errors the model can act on are results, not protocol errors), any other request a
//! JSON-RPC error naming it. The URL (`web::connect::connect_url`) carries only an
//! `elicitation` sealed for this user: no token, no personal data in clear.
//!
//! Not built: `-32042` (URLElicitationRequiredError) for 2025-11-25 clients that declared
//! `elicitation.url`, and `InputRequiredResult` with a sealed `requestState` for 2026-07-28.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::jsonrpc::code;
use super::rpc_error;
use crate::app::AppState;
use crate::web::connect::connect_url;

/// The answer to a request whose upstream needs the user's own account there, not connected.
pub fn not_connected(
    state: &AppState,
    user_id: &str,
    upstream: &str,
    method: Option<&str>,
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
