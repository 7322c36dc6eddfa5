//! `POST | GET | DELETE /mcp/{name}`: one linear pipeline, each step in its own module and
//! each able to end the request with the answer the protocol prescribes.
//!
//! 1. parse: upstream, `Host`/`Origin`, body, JSON-RPC message, protocol headers
//! 2. authenticate: bearer token → principal, then the scope the method needs (before any
//!    identity-provider call)
//! 3. context: who a federated user is at their identity provider (cached, single-flight)
//! 4. decide: RBAC on cached grants, the denial answered here
//! 5. credentials: the upstream's own credentials, resolved before sending
//! 6. send: one request on the pooled client
//! 7. relay: the response streamed back, lists filtered

use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::jsonrpc::code;
use super::parse::{self, Incoming, MCP_SESSION_ID};
use super::send::{self, Failure};
use super::watch::Watch;
use super::{credentials, relay, rpc_error};
use crate::app::AppState;
use crate::auth;
use crate::error::ApiError;
use crate::policy::enforce;

pub async fn handle(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let proxy = &state.proxy;
    let (parts, body) = request.into_parts();

    // 1. What was asked.
    let incoming = match parse::read(proxy, &name, parts, body).await {
        Ok(incoming) => incoming,
        Err(response) => return response,
    };

    // 2. Who asks, and whether their token covers this method.
    let principal = match auth::authenticate(
        &state.authenticator,
        &incoming.parts.headers,
        &incoming.parts.uri,
        &proxy.issuer,
    )
    .await
    .and_then(|p| auth::require_scope(p, incoming.row.scope, &proxy.issuer, &incoming.parts.uri))
    {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };

    // 3. Federated users: who they are at their identity provider (cached; one provider call
    // per grant and TTL, refreshed exactly once when due). A dead grant means signing in again.
    let identity = match state.identity.context_for_user(&principal.user_id).await {
        Ok(identity) => identity,
        Err(e) => {
            // A dead grant's 401 tells the client where to start again, as every 401 of an
            // MCP endpoint must (MCP authorization: the resource metadata URL).
            let mut error = ApiError::from(e);
            if let ApiError::Challenge { challenge, .. } = &mut error
                && challenge.resource_metadata.is_none()
            {
                challenge.resource_metadata = Some(auth::resource_metadata_url(
                    &proxy.issuer,
                    incoming.parts.uri.path(),
                ));
            }
            return error.into_response();
        }
    };

    // 4. RBAC, before anything leaves mcpgate.
    let (list_scope, grants) =
        match enforce::decide(&state, &principal, identity.as_deref(), &incoming).await {
            Ok(decided) => decided,
            Err(response) => return response,
        };

    // The client's session id opens only for the principal who created it.
    // Whether the client declared URL elicitation at initialize (2025-11-25): kept in the
    // sealed session id.
    let mut url_elicitation = false;
    let session = match incoming.parts.headers.get(&MCP_SESSION_ID) {
        Some(sid) if !incoming.stateless() => match proxy
            .sessions
            .open_with(&principal.user_id, &incoming.upstream.name, sid.as_bytes())
            .ok()
            .and_then(|(id, flag)| {
                url_elicitation = flag;
                HeaderValue::from_bytes(&id).ok()
            }) {
            Some(id) => Some(id),
            None => {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    incoming.error_id(),
                    code::INVALID_REQUEST,
                    "session not found",
                );
            }
        },
        _ => None,
    };

    // 5. The upstream's own credentials, over the request as it will be sent.
    let Incoming {
        upstream,
        parts,
        body,
        message,
        ..
    } = incoming;
    let error_id = message
        .as_ref()
        .map(|m| m.error_id())
        .unwrap_or(serde_json::Value::Null);
    if message.as_ref().and_then(|m| m.method.as_deref()) == Some("initialize") {
        url_elicitation = super::elicit::declares_url_elicitation(&body);
    }
    // A 2026-07-28 retry of a request mcpgate answered with `input_required`: its own
    // requestState checked and stripped before anything else sees the body.
    let body = match super::elicit::take_request_state(
        &state,
        &principal.user_id,
        &upstream.name,
        message.as_ref().and_then(|m| m.method.as_deref()),
        body,
        &error_id,
    ) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let mut forwarded = send::forwarded_headers(&parts.headers, session);
    match credentials::resolve(
        &upstream,
        &principal,
        identity.as_deref(),
        &state.local_emails,
        &grants,
        (&parts.method, &forwarded, &body),
        &error_id,
    )
    .await
    {
        Ok(snapshot) => snapshot.apply(&mut forwarded),
        Err(credentials::Unresolved::Answer(response)) => return response,
        Err(credentials::Unresolved::AccountNotConnected) => {
            return super::elicit::not_connected(
                &state,
                &principal.user_id,
                &upstream.name,
                message.as_ref().and_then(|m| m.method.as_deref()),
                &body,
                url_elicitation,
                error_id,
            );
        }
    }

    // 6 and 7. Send, and stream the answer back.
    let result = match send::send(
        &proxy.client,
        &upstream,
        parts.method.clone(),
        forwarded,
        body,
    )
    .await
    {
        Ok(upstream_response) => {
            // Who waits on a streamed answer, should the upstream abandon it.
            let watch = Watch {
                audit: state.audit.clone(),
                user_id: principal.user_id.clone(),
                client_id: principal.client_id.clone(),
                upstream: upstream.name.clone(),
                method: message.as_ref().and_then(|m| m.method.clone()),
                target: message.as_ref().and_then(|m| m.target.clone()),
                pending: message
                    .as_ref()
                    .filter(|m| m.is_request())
                    .and_then(|m| m.id.clone()),
                idle: upstream.idle_timeout,
            };
            relay::relay(
                &proxy.sessions,
                &upstream,
                &principal.user_id,
                upstream_response,
                list_scope,
                watch,
                url_elicitation,
            )
            .await
        }
        Err(failure) => Err(failure),
    };
    let response = match result {
        Ok(response) => response,
        Err(Failure::Timeout) => rpc_error(
            StatusCode::GATEWAY_TIMEOUT,
            error_id,
            code::UPSTREAM_TIMEOUT,
            "the upstream MCP server did not answer in time",
        ),
        Err(Failure::Unreachable(detail)) => {
            tracing::warn!(upstream = %upstream.name, error.detail = %detail, "upstream unreachable");
            rpc_error(
                StatusCode::BAD_GATEWAY,
                error_id,
                code::UPSTREAM_UNAVAILABLE,
                "the upstream MCP server is unreachable",
            )
        }
    };
    tracing::info!(
        user.id = %principal.user_id,
        upstream = %upstream.name,
        http.method = %parts.method,
        mcp.method = message.as_ref().and_then(|m| m.method.as_deref()).unwrap_or("-"),
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1e3,
        "mcp request"
    );
    response
}
