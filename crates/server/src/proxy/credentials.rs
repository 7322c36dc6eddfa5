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

use std::sync::Arc;
use std::time::Duration;

use mcpgate_storage::{StorageError, Store};

use super::Upstream;
use super::jsonrpc::code;
use crate::identity::FederatedContext;

/// Local accounts' emails by user id, for identity assertions: read once a minute per user,
/// not on every call (a federated user's email comes from their provider's context).
pub struct LocalEmails {
    store: Store,
    cache: moka::future::Cache<String, Option<Arc<str>>>,
}

impl LocalEmails {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }

    /// `None` for a user not stored here, or when the database cannot say right now (the
    /// assertion then goes without an email rather than failing the call).
    pub async fn of(&self, user_id: &str) -> Option<Arc<str>> {
        let store = self.store.clone();
        let id = user_id.to_owned();
        self.cache
            .try_get_with(user_id.to_owned(), async move {
                match store.get_user(&id).await {
                    Ok(user) => Ok(Some(Arc::from(user.email.as_str()))),
                    Err(StorageError::NotFound) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await
            .ok()
            .flatten()
    }
}

/// Who the credential is for: the principal, their email and roles at their identity
/// provider when federated, else their mcpgate account's email and roles.
pub async fn resolve(
    upstream: &Upstream,
    principal: &Principal,
    identity: Option<&FederatedContext>,
    local_emails: &LocalEmails,
    grants: &EffectiveGrants,
    request: (&Method, &HeaderMap, &Bytes),
    error_id: &Value,
) -> Result<CredentialSnapshot, Unresolved> {
    let roles: Vec<String> = match identity {
        Some(context) if !context.user.roles.is_empty() => context.user.roles.clone(),
        _ => grants.roles().iter().map(|r| r.to_string()).collect(),
    };
    let local_email = match identity {
        Some(_) => None,
        None => local_emails.of(&principal.user_id).await,
    };
    let caller = Caller {
        user_id: &principal.user_id,
        email: match identity {
            Some(context) => context.user.email.as_deref(),
            None => local_email.as_deref(),
        },
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
        .map_err(|e| match e {
            CredentialError::AccountNotConnected { .. } => Unresolved::AccountNotConnected,
            e => Unresolved::Answer(answer(&upstream.name, e, error_id.clone())),
        })
}

/// Why no credential came out of [`resolve`].
pub enum Unresolved {
    /// The answer to send as it is.
    Answer(Response),
    /// The user has not connected their account at this upstream (`user_oauth`,
    /// `user_secret`): the pipeline asks them to ([`super::elicit`]).
    AccountNotConnected,
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
        CredentialError::AccountNotConnected { .. } => (
            StatusCode::FORBIDDEN,
            code::ACCESS_DENIED,
            format!(
                "the upstream {upstream:?} acts with your own account there: connect it on \
                 this gateway to use it"
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
