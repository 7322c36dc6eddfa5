//! The one error type of the crate. Every variant is safe to log and to show a client: none
//! carries a token, a secret or a response body.

use std::time::Duration;

/// Why an upstream credential could not be produced. The server maps each variant to a
/// JSON-RPC error (and, for [`CredentialError::NotConnected`], to a URL elicitation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The user has no live grant at the identity provider whose token this upstream needs.
    #[error("sign in with {provider} to use this upstream")]
    NotConnected { provider: String },
    /// The user has not connected their own account at this upstream (`user_oauth`,
    /// `user_secret`), or the connection ended (`invalid_grant` at refresh): the server asks
    /// them to connect on its `/connect/{upstream}` page.
    #[error("connect your account for upstream {upstream:?} to use it")]
    AccountNotConnected { upstream: String },
    /// The upstream's authorization server (or STS) answered with an OAuth error (RFC 6749
    /// §5.2 shape): `invalid_grant`, `unauthorized_client`, `invalid_client`, ….
    #[error("the authorization server for upstream {upstream:?} refused: {error}")]
    Refused {
        upstream: String,
        /// The OAuth `error` code (never the description, which may echo input).
        error: String,
    },
    /// A network call for the credential took longer than its configured timeout.
    #[error("getting credentials for upstream {upstream:?} timed out after {} ms", after.as_millis())]
    Timeout { upstream: String, after: Duration },
    /// The credential cannot be had right now: the authorization server is unreachable or
    /// answered something unusable, the AWS credentials are not resolved yet, a stored secret
    /// is missing. Retrying later may work.
    #[error("credentials for upstream {upstream:?} are unavailable: {reason}")]
    Unavailable { upstream: String, reason: String },
}

impl CredentialError {
    pub(crate) fn unavailable(upstream: &str, reason: impl Into<String>) -> Self {
        Self::Unavailable {
            upstream: upstream.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn timeout(upstream: &str, after: Duration) -> Self {
        Self::Timeout {
            upstream: upstream.to_owned(),
            after,
        }
    }
}
