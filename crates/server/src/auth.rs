//! The resource-server check: bearer token → [`Principal`], or a 401 challenge.
//!
//! This is the seam where the OAuth issue plugs in. Until it lands, the only authenticator a
//! real run has is [`RejectAll`]: every request to `/mcp/*` gets 401. There is deliberately no
//! setting that turns authentication off; tests inject their own [`Authenticator`].

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use mcpgate_core::Principal;

use crate::error::{ApiError, Challenge};

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown, expired, revoked, malformed, or issued for another resource (RFC 8707).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The token could not be checked (database unavailable): 503, not 401, so clients retry
    /// instead of discarding a good token.
    #[error("the token could not be checked: {0}")]
    Unavailable(String),
}

/// Turns a bearer token presented at `resource` into the principal it was issued to.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// `resource` is the exact MCP endpoint URL, `{public_url}/mcp/{name}`: a token issued for
    /// another resource must be refused.
    async fn authenticate(&self, token: &str, resource: &str) -> Result<Principal, AuthError>;

    /// The scopes to name in a 401 challenge for `resource` (RFC 6750 §3 `scope`).
    fn challenge_scope(&self, resource: &str) -> Option<String> {
        let _ = resource;
        None
    }
}

/// The authenticator of a real run until OAuth lands: no token is valid.
#[derive(Debug, Default, Clone, Copy)]
pub struct RejectAll;

#[async_trait]
impl Authenticator for RejectAll {
    async fn authenticate(&self, _token: &str, _resource: &str) -> Result<Principal, AuthError> {
        Err(AuthError::InvalidToken(
            "this gateway does not issue tokens yet".into(),
        ))
    }
}

/// The resource-metadata URL (RFC 9728, path-inserted) for an MCP endpoint path.
pub fn resource_metadata_url(issuer: &str, path: &str) -> String {
    format!("{issuer}/.well-known/oauth-protected-resource{path}")
}

/// Runs the resource-server check for one request.
pub async fn authenticate(
    authenticator: &Arc<dyn Authenticator>,
    headers: &HeaderMap,
    uri: &Uri,
    issuer: &str,
) -> Result<Principal, ApiError> {
    let path = uri.path();
    let resource = format!("{issuer}{path}");
    let challenge =
        |error: Option<&'static str>, description: Option<String>| ApiError::Challenge {
            status: StatusCode::UNAUTHORIZED,
            challenge: Challenge {
                error,
                description,
                scope: authenticator.challenge_scope(&resource),
                resource_metadata: Some(resource_metadata_url(issuer, path)),
            },
        };
    // RFC 6750 §2.3 allows `access_token` in the query; MCP forbids it (tokens leak into logs).
    if query_has_access_token(uri) {
        return Err(challenge(
            Some("invalid_token"),
            Some("access tokens are accepted only in the Authorization header".into()),
        ));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(challenge(None, None));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(challenge(
            Some("invalid_token"),
            Some("expected a Bearer token".into()),
        ));
    };
    authenticator
        .authenticate(token, &resource)
        .await
        .map_err(|e| match e {
            AuthError::InvalidToken(detail) => {
                tracing::debug!(%detail, "token refused");
                challenge(
                    Some("invalid_token"),
                    Some("the access token is invalid or expired".into()),
                )
            }
            AuthError::Unavailable(detail) => ApiError::Unavailable(detail),
        })
}

fn query_has_access_token(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use axum::response::IntoResponse;

    struct One;

    #[async_trait]
    impl Authenticator for One {
        async fn authenticate(&self, token: &str, resource: &str) -> Result<Principal, AuthError> {
            if token == "good" && resource == "https://gw/mcp/a" {
                Ok(Principal {
                    user_id: "u1".into(),
                    client_id: "c1".into(),
                    scopes: vec!["mcp".into()],
                    resource: resource.into(),
                })
            } else {
                Err(AuthError::InvalidToken("no".into()))
            }
        }
        fn challenge_scope(&self, _resource: &str) -> Option<String> {
            Some("mcp".into())
        }
    }

    async fn check(auth: Option<&str>, uri: &str) -> Result<Principal, String> {
        let authenticator: Arc<dyn Authenticator> = Arc::new(One);
        let mut headers = HeaderMap::new();
        if let Some(a) = auth {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(a).map_err(|e| e.to_string())?,
            );
        }
        let uri: Uri = uri.parse().map_err(|_| "uri".to_owned())?;
        authenticate(&authenticator, &headers, &uri, "https://gw")
            .await
            .map_err(|e| {
                let r = e.into_response();
                format!(
                    "{} {}",
                    r.status().as_u16(),
                    r.headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                )
            })
    }

    #[tokio::test]
    async fn no_token_challenges_without_an_error_code() {
        assert_eq!(
            check(None, "/mcp/a").await.err().unwrap_or_default(),
            "401 Bearer scope=\"mcp\", resource_metadata=\"https://gw/.well-known/oauth-protected-resource/mcp/a\""
        );
    }

    #[tokio::test]
    async fn bad_token_and_token_for_another_resource_are_invalid_token() {
        for (auth, uri) in [("Bearer bad", "/mcp/a"), ("Bearer good", "/mcp/b")] {
            let err = check(Some(auth), uri).await.err().unwrap_or_default();
            assert!(
                err.starts_with("401 Bearer error=\"invalid_token\""),
                "{err}"
            );
        }
        let err = check(Some("Basic Zm9vOmJhcg=="), "/mcp/a")
            .await
            .err()
            .unwrap_or_default();
        assert!(err.contains("invalid_token"), "{err}");
    }

    #[tokio::test]
    async fn query_string_tokens_are_refused_even_with_a_good_header() {
        let err = check(Some("Bearer good"), "/mcp/a?access_token=good")
            .await
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("401 "), "{err}");
    }

    #[tokio::test]
    async fn good_token_gives_the_principal() {
        let p = check(Some("bearer good"), "/mcp/a").await;
        assert_eq!(p.map(|p| p.user_id), Ok("u1".to_owned()));
    }
}
