//! Step 4 of the `/mcp` pipeline: the RBAC decision for one request, recorded in the audit
//! log, and — when it is a denial — the answer the caller gets.
//!
//! Answers follow the MCP specification for the request's protocol revision, never a guess:
//! - a named item the caller may not use is answered as an item the server does not have
//!   (so a denial does not reveal that it exists): unknown tool / prompt `-32602`, resource
//!   not found (`-32002` before 2026-07-28, `-32602` with `data.uri` from it, SEP-2164);
//! - a request that names no item although its method needs one cannot be decided on the
//!   item: it goes to the upstream, which refuses it itself, when the caller holds the action
//!   on this upstream at all, and gets `-32602` invalid params otherwise;
//! - a caller with no grant at all on the upstream is told exactly that (HTTP 403, `-32003`),
//!   whatever the request (`initialize`, `server/discover`, a GET stream);
//! - a denied notification is accepted and dropped (202).
//!
//! The errors travel with HTTP 200, as servers answer them for a tool call (the Python SDK and
//! rmcp alike, in both eras), so that a denial looks like any server's "unknown".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcpgate_core::Principal;
use mcpgate_rbac::{Action, Decision, EffectiveGrants, Reason, Request, UnknownItem};
use serde_json::{Value, json};

use super::lists::ListScope;
use crate::app::AppState;
use crate::error::ApiError;
use crate::identity::FederatedContext;
use crate::proxy::jsonrpc::code;
use crate::proxy::parse::Incoming;

/// Decides the request for the principal and records the decision. `Ok` carries the list
/// filter for an allowed list request and the caller's grants; `Err` the answer for a denied
/// one.
pub async fn decide(
    state: &AppState,
    principal: &Principal,
    identity: Option<&FederatedContext>,
    incoming: &Incoming,
) -> Result<(Option<ListScope>, EffectiveGrants), Response> {
    let upstream = incoming.upstream.name.as_str();
    let message = incoming.message.as_ref();
    let method = incoming.method();
    let request = match method {
        Some(_) => Request::new(
            incoming.row.action,
            upstream,
            message.and_then(|m| m.target.as_deref()),
        ),
        // A JSON-RPC response from the client, a GET stream or a DELETE: plumbing.
        None => Request::new(
            Action::Plumbing,
            upstream,
            Some(incoming.parts.method.as_str()),
        ),
    };
    let (mut decision, grants) = match state
        .policy
        .decide(&principal.user_id, identity, &request)
        .await
    {
        Ok(d) => d,
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let no_access = !decision.allowed && !holds_anything(&grants, upstream);
    let unnamed = decision.reason == Reason::MissingTarget;
    if unnamed && !no_access && grants.holds_any(request.action, upstream) {
        // The upstream answers a request without its item; nothing can be acted on.
        decision = Decision {
            allowed: true,
            decided_by: None,
            reason: Reason::MissingTarget,
        };
    }
    state.audit.record(super::audit::decision_event(
        principal, &request, method, &decision,
    ));
    metrics::counter!(
        "mcpgate_rbac_decisions_total",
        "decision" => if decision.allowed { "allow" } else { "deny" }
    )
    .increment(1);
    if decision.allowed {
        return Ok((
            ListScope::for_method(&incoming.row, grants.clone(), upstream),
            grants,
        ));
    }
    tracing::info!(
        user.id = %principal.user_id,
        client.id = %principal.client_id,
        upstream,
        mcp.method = method.unwrap_or("-"),
        mcp.target = request.target.unwrap_or("-"),
        %decision,
        "denied"
    );
    let id = incoming.error_id();
    let stateless = incoming.stateless();
    Err(if no_access {
        crate::proxy::rpc_error(
            StatusCode::FORBIDDEN,
            id,
            code::ACCESS_DENIED,
            &format!(
                "you have no access to the upstream {upstream:?}: none of your roles grants \
                 anything on it; ask an administrator of this gateway for a role on it"
            ),
        )
    } else if message.is_some_and(|m| !m.is_request()) {
        StatusCode::ACCEPTED.into_response()
    } else if unnamed {
        answer(
            id,
            code::INVALID_PARAMS,
            format!("Invalid params: {} names no item", method.unwrap_or("-")),
            None,
        )
    } else {
        denied_as_unknown(
            incoming.row.unknown,
            stateless,
            id,
            request.target.unwrap_or_default(),
        )
    })
}

/// Whether the caller may do anything at all on the upstream (what plumbing needs).
pub fn holds_anything(grants: &EffectiveGrants, upstream: &str) -> bool {
    grants.is_allowed(&Request::new(Action::Plumbing, upstream, Some("ping")))
}

/// The answer a server gives for an item it does not have.
fn denied_as_unknown(kind: UnknownItem, stateless: bool, id: Value, name: &str) -> Response {
    let (code, text, data) = match kind {
        UnknownItem::Tool => (code::INVALID_PARAMS, format!("Unknown tool: {name}"), None),
        UnknownItem::Prompt => (
            code::INVALID_PARAMS,
            format!("Unknown prompt: {name}"),
            None,
        ),
        UnknownItem::Resource => (
            if stateless {
                code::INVALID_PARAMS
            } else {
                code::RESOURCE_NOT_FOUND
            },
            format!("Resource not found: {name}"),
            Some(json!({ "uri": name })),
        ),
        UnknownItem::Method => (code::METHOD_NOT_FOUND, "Method not found".to_owned(), None),
    };
    answer(id, code, text, data)
}

/// A JSON-RPC error, with HTTP 200.
fn answer(id: Value, code: i64, message: String, data: Option<Value>) -> Response {
    let status = StatusCode::OK;
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    (
        status,
        axum::Json(json!({ "jsonrpc": "2.0", "id": id, "error": error })),
    )
        .into_response()
}
