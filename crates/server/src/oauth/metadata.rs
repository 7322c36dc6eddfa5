//! Discovery: RFC 8414 authorization-server metadata, RFC 9728 protected-resource metadata for
//! each upstream, and the JWKS of the keys that sign identity assertions. One issuer string
//! everywhere. There is no OIDC discovery document: mcpgate issues no ID tokens, and MCP
//! clients read RFC 8414 first.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::scopes::SUPPORTED;
use crate::app::AppState;
use crate::error::ApiError;

fn authorization_server(state: &AppState) -> Value {
    let issuer = state.config.issuer();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "registration_endpoint": format!("{issuer}/oauth/register"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": SUPPORTED,
        "client_id_metadata_document_supported": state.config.oauth.client_metadata.enabled,
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
    })
}

fn cacheable(body: Value) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(body))
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn authorization_server_metadata(State(state): State<AppState>) -> impl IntoResponse {
    cacheable(authorization_server(&state))
}

fn protected_resource(state: &AppState, name: &str) -> Value {
    let issuer = state.config.issuer();
    json!({
        "resource": format!("{issuer}/mcp/{name}"),
        "authorization_servers": [issuer],
        "scopes_supported": SUPPORTED,
        "bearer_methods_supported": ["header"],
        "resource_name": format!("{name} (through mcpgate)"),
    })
}

/// `GET /.well-known/oauth-protected-resource/mcp/{name}` (path-inserted, RFC 9728 §3.1).
pub async fn protected_resource_metadata(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if !state.config.upstreams.iter().any(|u| u.name == name) {
        return Err(ApiError::NotFound(format!("no upstream named {name:?}")));
    }
    Ok(cacheable(protected_resource(&state, &name)))
}

/// `GET /.well-known/oauth-protected-resource`: only where it is unambiguous (one upstream);
/// every upstream is its own resource, so tokens for one never work at another.
pub async fn root_protected_resource_metadata(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    match state.config.upstreams.as_slice() {
        [only] => Ok(cacheable(protected_resource(&state, &only.name))),
        _ => Err(ApiError::NotFound(
            "each upstream has its own metadata at /.well-known/oauth-protected-resource/mcp/{name}"
                .into(),
        )),
    }
}

/// `GET /.well-known/jwks.json`: the public keys of identity assertions (every configured key,
/// so assertions signed before a rotation still verify); empty when none are configured.
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let keys = state
        .assertion_signer
        .as_ref()
        .and_then(|s| serde_json::to_value(s.jwks()).ok())
        .unwrap_or_else(|| json!({ "keys": [] }));
    ([(header::CACHE_CONTROL, "public, max-age=60")], Json(keys))
}
