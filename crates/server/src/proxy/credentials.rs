//! Step 5 of the `/mcp` pipeline: the upstream's own credentials for this request (static
//! secret, the user's provider token, a client-credentials or exchanged token, an identity
//! assertion, a SigV4 signature — `mcpgate_credentials`), resolved into an immutable snapshot
//! over the request as it will be sent, before anything is sent. A request whose credential
//! cannot be had is answered here, in JSON-RPC, with what the user can do about it.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use mcpgate_core::Principal;
use mcpgate_credentials::{Caller, CredentialError, CredentialSnapshot, OutgoingRequest};
use mcpgate_rbac::EffectiveGrants;
use serde_json::Value;

use super::Upstream;
use super::jsonrpc::code;
use crate::identity::FederatedContext;

/// Who the credential is for: the principal, their email and roles at their identity
/// provider when federated, else their mcpgate roles.
pub async fn resolve(
    upstream: &Upstream,
    principal: &Principal,
    identity: Option<&FederatedContext>,
    grants: &EffectiveGrants,
    request: (&Method, &HeaderMap, &Bytes),
    error_id: &Value,
) -> Result<CredentialSnapshot, Response> {
    let roles: Vec<String> = match identity {
        Some(context) if !context.user.roles.is_empty() => context.user.roles.clone(),
        _ => grants.roles().iter().map(|r| r.to_string()).collect(),
    };
    let caller = Caller {
        user_id: &principal.user_id,
        email: identity.and_then(|c| c.user.email.as_deref()),
        roles: &roles,
    };
    let (method, headers, body) = request;
    let outgoing = OutgoingRequest {
        method,
        url: &upstream.url,
        headers,
        body,
    };
    upstream
        .credentials
        .resolve(&caller, &outgoing)
        .await
        .map_err(|e| answer(&upstream.name, e, error_id.clone()))
}

/// The JSON-RPC answer for a credential that cannot be had. No secret is ever in `e`.
fn answer(upstream: &str, e: CredentialError, id: Value) -> Response {
    let (status, code, message) = match &e {
        CredentialError::NotConnected { provider } => (
            StatusCode::FORBIDDEN,
            code::ACCESS_DENIED,
            format!(
                "the upstream {upstream:?} acts with your own {provider} account: sign in to \
                 this gateway with {provider} to use it"
            ),
        ),
        CredentialError::Refused { error, .. } => (
            StatusCode::BAD_GATEWAY,
            code::UPSTREAM_UNAVAILABLE,
            format!(
                "the authorization server of the upstream {upstream:?} refused the gateway's \
                 credentials ({error})"
            ),
        ),
        CredentialError::Timeout { .. } => (
            StatusCode::GATEWAY_TIMEOUT,
            code::UPSTREAM_TIMEOUT,
            format!("credentials for the upstream {upstream:?} could not be had in time"),
        ),
        CredentialError::Unavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            code::UPSTREAM_UNAVAILABLE,
            format!("credentials for the upstream {upstream:?} are unavailable; retry shortly"),
        ),
    };
    tracing::warn!(upstream, error = %e, "upstream credentials");
    super::rpc_error(status, id, code, &message)
}
