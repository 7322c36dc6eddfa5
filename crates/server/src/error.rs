//! `ApiError`: the one error type handlers return. It knows the three shapes a client of a
//! gateway expects — OAuth JSON errors (RFC 6749 §5.2), `WWW-Authenticate` challenges
//! (RFC 6750 §3) and JSON-RPC errors — plus plain JSON errors in the OAuth shape for everything
//! else. Internal detail is logged; the response body stays generic.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_storage::StorageError;
use serde_json::{Value, json};

/// A `WWW-Authenticate: Bearer …` challenge.
#[derive(Debug, Clone, Default)]
pub struct Challenge {
    /// `None` for "no credentials sent" (RFC 6750 §3.1: then no error code).
    pub error: Option<&'static str>,
    pub description: Option<String>,
    pub scope: Option<String>,
    pub resource_metadata: Option<String>,
}

impl Challenge {
    pub fn header_value(&self) -> String {
        let mut params = Vec::new();
        if let Some(error) = self.error {
            params.push(format!("error=\"{error}\""));
        }
        if let Some(d) = &self.description {
            params.push(format!("error_description=\"{}\"", quote_safe(d)));
        }
        if let Some(s) = &self.scope {
            params.push(format!("scope=\"{}\"", quote_safe(s)));
        }
        if let Some(r) = &self.resource_metadata {
            params.push(format!("resource_metadata=\"{}\"", quote_safe(r)));
        }
        if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", params.join(", "))
        }
    }
}

/// Keeps a value inside a quoted-string: no quotes, backslashes or control characters.
fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An OAuth error in RFC 6749 §5.2 JSON (`error`, `error_description`).
    #[error("{error}: {description}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
    /// 401 or 403 with a `WWW-Authenticate` challenge.
    #[error("authentication challenge ({status})")]
    Challenge {
        status: StatusCode,
        challenge: Challenge,
    },
    /// A JSON-RPC 2.0 error object, with the HTTP status that carries it.
    #[error("JSON-RPC error {code}: {message}")]
    JsonRpc {
        status: StatusCode,
        id: Value,
        code: i64,
        message: String,
    },
    /// An OAuth error that also challenges for client credentials (RFC 6749 §5.2:
    /// `invalid_client` after HTTP Basic gets 401 with `WWW-Authenticate`).
    #[error("{0}")]
    OAuthWithChallenge(Box<ApiError>, &'static str),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many attempts (sign-in limits): 429 with `Retry-After`.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A bounded resource (database pool, hashing queue) is full: 503 with `Retry-After`.
    #[error("overloaded: {what}")]
    Overloaded {
        what: &'static str,
        retry_after_secs: u64,
    },
    /// A dependency answered badly or not at all (identity provider): 502.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// A dependency did not answer in time (identity provider): 504.
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    /// A dependency cannot be reached: 503 with `Retry-After`.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else: logged in full, answered generically.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn oauth(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self::OAuth {
            status,
            error,
            description: description.into(),
        }
    }
}

fn plain(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn with_retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::OAuth {
                status,
                error,
                description,
            } => {
                let mut response = plain(status, error, &description);
                // RFC 6749 §5.1/§5.2: token responses and their errors must not be cached.
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            ApiError::Challenge { status, challenge } => {
                let error = challenge.error.unwrap_or("unauthorized");
                let description = challenge
                    .description
                    .clone()
                    .unwrap_or_else(|| "authentication required".into());
                let mut response = plain(status, error, &description);
                if let Ok(value) = HeaderValue::from_str(&challenge.header_value()) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            ApiError::JsonRpc {
                status,
                id,
                code,
                message,
            } => (
                status,
                Json(json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": { "code": code, "message": message },
                })),
            )
                .into_response(),
            ApiError::OAuthWithChallenge(inner, challenge) => {
                let mut response = inner.into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
                response
            }
            ApiError::BadRequest(d) => plain(StatusCode::BAD_REQUEST, "invalid_request", &d),
            ApiError::Forbidden(d) => plain(StatusCode::FORBIDDEN, "forbidden", &d),
            ApiError::NotFound(d) => plain(StatusCode::NOT_FOUND, "not_found", &d),
            ApiError::Conflict(d) => plain(StatusCode::CONFLICT, "conflict", &d),
            ApiError::TooManyRequests { retry_after_secs } => with_retry_after(
                plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "too many attempts; retry later",
                ),
                retry_after_secs,
            ),
            ApiError::Overloaded {
                what,
                retry_after_secs,
            } => with_retry_after(
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    &format!("{what} is at capacity; retry shortly"),
                ),
                retry_after_secs,
            ),
            ApiError::BadGateway(detail) => {
                tracing::warn!(error.detail = %detail, "bad gateway");
                plain(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    "a service the gateway depends on did not answer properly",
                )
            }
            ApiError::GatewayTimeout(detail) => {
                tracing::warn!(error.detail = %detail, "gateway timeout");
                plain(StatusCode::GATEWAY_TIMEOUT, "gateway_timeout", &detail)
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(error.detail = %detail, "dependency unavailable");
                with_retry_after(
                    plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        "a dependency of the gateway is unavailable; retry shortly",
                    ),
                    2,
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(error.detail = %detail, "internal error");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the gateway hit an internal error",
                )
            }
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => ApiError::NotFound("no such record".into()),
            StorageError::Conflict(d) => ApiError::Conflict(d),
            StorageError::Busy => ApiError::Overloaded {
                what: "the database pool",
                retry_after_secs: 1,
            },
            StorageError::Unavailable(d) => ApiError::Unavailable(format!("database: {d}")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_without_credentials_has_no_error_code() {
        let c = Challenge {
            resource_metadata: Some("https://gw/.well-known/x".into()),
            scope: Some("mcp".into()),
            ..Default::default()
        };
        assert_eq!(
            c.header_value(),
            "Bearer scope=\"mcp\", resource_metadata=\"https://gw/.well-known/x\""
        );
    }

    #[test]
    fn busy_pool_becomes_503_with_retry_after() {
        let response = ApiError::from(StorageError::Busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(1u64))
        );
    }

    #[test]
    fn quoted_values_cannot_break_out() {
        let c = Challenge {
            error: Some("invalid_token"),
            description: Some("bad \"token\"\r\n".into()),
            ..Default::default()
        };
        assert_eq!(
            c.header_value(),
            "Bearer error=\"invalid_token\", error_description=\"bad token\""
        );
    }
}
