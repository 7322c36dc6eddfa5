//! Turns provider HTTP failures into the four classes the server acts on (PROVIDERS.md,
//! "Error classes"): a dead grant, a rejected token, a provider that is down, a bad setup.

use mcpgate_core::ProviderError;
use reqwest::StatusCode;
use serde::Deserialize;

/// The RFC 6749 §5.2 error body (also what GitHub sends with HTTP 200).
#[derive(Debug, Default, Deserialize)]
pub struct OAuthErrorBody {
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl OAuthErrorBody {
    fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    fn describe(&self, status: StatusCode) -> String {
        match (&self.error, &self.error_description) {
            (Some(e), Some(d)) => format!("HTTP {status}: {e}: {}", clip(d)),
            (Some(e), None) => format!("HTTP {status}: {e}"),
            _ => format!("HTTP {status}"),
        }
    }
}

/// Keeps provider-supplied text short in errors and logs.
fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

/// A request that got no HTTP answer: timeouts and connection failures are transient; a
/// request that could not even be built is a configuration problem.
pub fn send_error(what: &str, error: &reqwest::Error) -> ProviderError {
    if error.is_builder() {
        ProviderError::Misconfigured(format!("{what}: cannot build the request: {error}"))
    } else if error.is_timeout() {
        ProviderError::Transient(format!("{what}: timed out"))
    } else if error.is_connect() {
        ProviderError::Transient(format!("{what}: cannot connect: {error}"))
    } else {
        ProviderError::Transient(format!("{what}: {error}"))
    }
}

/// Classifies a token-endpoint answer that carries an error (any status, since some providers
/// send errors with 200).
pub fn token_error(status: StatusCode, body: &[u8]) -> ProviderError {
    let parsed = OAuthErrorBody::parse(body);
    let detail = format!("token endpoint: {}", parsed.describe(status));
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return ProviderError::Transient(detail);
    }
    match parsed.error.as_deref() {
        // Atlassian sends invalid_grant with 403, Keycloak and Google with 400, GitHub sends
        // bad_refresh_token with 200 (PROVIDERS.md).
        Some("invalid_grant") | Some("bad_refresh_token") | Some("bad_verification_code")
            if matches!(status.as_u16(), 200 | 400 | 401 | 403) =>
        {
            ProviderError::InvalidGrant(detail)
        }
        Some("temporarily_unavailable") | Some("slow_down") => ProviderError::Transient(detail),
        _ => ProviderError::Misconfigured(detail),
    }
}

/// Classifies a failed call to a protected resource (userinfo, a profile API).
pub fn resource_error(what: &str, status: StatusCode, body: &[u8]) -> ProviderError {
    let parsed = OAuthErrorBody::parse(body);
    let detail = format!("{what}: {}", parsed.describe(status));
    if status == StatusCode::UNAUTHORIZED {
        ProviderError::Unauthorized(detail)
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        ProviderError::Transient(detail)
    } else {
        // 403 insufficient_scope (Keycloak 20+ without `openid`) and other 4xx: the request
        // we send is wrong for this provider, and retrying will not help.
        ProviderError::Misconfigured(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(e: &ProviderError) -> &'static str {
        match e {
            ProviderError::InvalidGrant(_) => "invalid_grant",
            ProviderError::Unauthorized(_) => "unauthorized",
            ProviderError::Transient(_) => "transient",
            ProviderError::Misconfigured(_) => "misconfigured",
            ProviderError::NotImplemented { .. } => "not_implemented",
        }
    }

    fn token(status: u16, body: &str) -> &'static str {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        class(&token_error(status, body.as_bytes()))
    }

    #[test]
    fn invalid_grant_with_400_401_403_and_github_200() {
        let body = r#"{"error":"invalid_grant","error_description":"Token is not active"}"#;
        assert_eq!(token(400, body), "invalid_grant");
        assert_eq!(token(401, body), "invalid_grant");
        assert_eq!(token(403, body), "invalid_grant");
        assert_eq!(
            token(200, r#"{"error":"bad_refresh_token"}"#),
            "invalid_grant"
        );
    }

    #[test]
    fn server_errors_and_rate_limits_are_transient() {
        assert_eq!(token(500, ""), "transient");
        assert_eq!(token(503, r#"{"error":"invalid_grant"}"#), "transient");
        assert_eq!(token(429, ""), "transient");
        assert_eq!(
            token(400, r#"{"error":"temporarily_unavailable"}"#),
            "transient"
        );
    }

    #[test]
    fn client_problems_are_misconfiguration() {
        assert_eq!(token(401, r#"{"error":"invalid_client"}"#), "misconfigured");
        assert_eq!(
            token(400, r#"{"error":"invalid_request"}"#),
            "misconfigured"
        );
        assert_eq!(token(400, "<html>proxy error</html>"), "misconfigured");
        assert_eq!(token(302, ""), "misconfigured");
    }

    #[test]
    fn userinfo_401_is_unauthorized_403_is_misconfigured() {
        let c = |s: StatusCode| class(&resource_error("userinfo", s, b"{}"));
        assert_eq!(c(StatusCode::UNAUTHORIZED), "unauthorized");
        assert_eq!(c(StatusCode::FORBIDDEN), "misconfigured");
        assert_eq!(c(StatusCode::BAD_GATEWAY), "transient");
    }

    #[test]
    fn descriptions_are_clipped() {
        let long = format!(
            r#"{{"error":"invalid_grant","error_description":"{}"}}"#,
            "x".repeat(5000)
        );
        let e = token_error(StatusCode::BAD_REQUEST, long.as_bytes());
        assert!(e.to_string().len() < 400, "{e}");
    }
}
