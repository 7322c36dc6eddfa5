//! The one home of bearer authentication: the `Authorization: Bearer` parser every route
//! uses, and the resource-server check for `/mcp/*` — bearer token → [`Principal`] through
//! the [`Authenticator`] (in a real run the cached [`TokenValidator`]), or a 401 challenge —
//! followed by the scope check (403 `insufficient_scope`), both before any identity-provider
//! call. There is deliberately no setting that turns authentication off; tests and benchmarks
//! inject their own [`Authenticator`].
//!
//! [`TokenValidator`]: crate::oauth::validate::TokenValidator

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use mcpgate_core::Principal;
use mcpgate_rbac::ScopeNeed;

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
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(challenge(None, None));
    }
    let Some(token) = bearer(headers) else {
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

/// The token of an `Authorization: Bearer …` header (RFC 6750 §2.1; the scheme is
/// case-insensitive), if the request sent one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The principal, if its token's scopes cover what the method needs; else 403 with an
/// `insufficient_scope` challenge naming every scope still needed (MCP 2026-07-28: one
/// challenge with all of them, so a client that replaces its scope still gets enough).
pub fn require_scope(
    principal: Principal,
    need: ScopeNeed,
    issuer: &str,
    uri: &Uri,
) -> Result<Principal, ApiError> {
    let needed = crate::oauth::scopes::for_need(need);
    if crate::oauth::scopes::satisfies_any(&principal.scopes, needed) {
        return Ok(principal);
    }
    Err(ApiError::Challenge {
        status: StatusCode::FORBIDDEN,
        challenge: Challenge {
            error: Some("insufficient_scope"),
            description: Some(format!("this request needs the {needed} scope")),
            scope: Some(needed.to_owned()),
            resource_metadata: Some(resource_metadata_url(issuer, uri.path())),
        },
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

    #[test]
    fn scope_hierarchy_and_the_step_up_challenge() {
        let p = |scopes: &[&str]| Principal {
            user_id: "u1".into(),
            client_id: "c1".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            resource: "https://gw/mcp/a".into(),
        };
        let uri: Uri = "/mcp/a".parse().unwrap();
        assert!(require_scope(p(&["mcp"]), ScopeNeed::Read, "https://gw", &uri).is_ok());
        assert!(require_scope(p(&["mcp:read"]), ScopeNeed::Read, "https://gw", &uri).is_ok());
        let denied = require_scope(p(&["mcp:read"]), ScopeNeed::Use, "https://gw", &uri)
            .err()
            .unwrap()
            .into_response();
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            denied.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\", error_description=\"this request needs the mcp scope\", scope=\"mcp\", resource_metadata=\"https://gw/.well-known/oauth-protected-resource/mcp/a\""
        );
    }

    #[test]
    fn bearer_parsing() {
        let h = |v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            m
        };
        assert_eq!(bearer(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("bEaReR  abc ")), Some("abc"));
        assert_eq!(bearer(&h("Bearer ")), None);
        assert_eq!(bearer(&h("Basic abc")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn good_token_gives_the_principal() {
        let p = check(Some("bearer good"), "/mcp/a").await;
        assert_eq!(p.map(|p| p.user_id), Ok("u1".to_owned()));
    }
}
