//! Control characters stop at the edge. Text from query strings, form bodies and JSON bodies
//! reaches the database as ids, emails and names; PostgreSQL refuses a NUL in text (the
//! query fails) while SQLite stores it, so without this the same input is a 400 on one
//! backend and a 500 on the other. One middleware in front of every route except `/mcp/*`
//! (whose JSON-RPC bodies go to upstreams, not to the database) answers 400 in the shape the
//! route speaks; OAuth parameters nested in other requests are checked where they are
//! parsed ([`crate::oauth::params::Params`]).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::ApiError;
use crate::web::pages;

/// Whether one-line text (a parameter, a form field) holds a control character (Unicode
/// `Cc`: C0 with NUL, DEL, C1).
pub fn in_line(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Whether JSON text holds a control character other than tab, line feed and carriage
/// return (JSON documents carry multi-line text, such as a role's description).
fn in_json_text(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

fn in_form(encoded: &[u8]) -> bool {
    url::form_urlencoded::parse(encoded).any(|(k, v)| in_line(&k) || in_line(&v))
}

fn in_json(value: &Value) -> bool {
    match value {
        Value::String(s) => in_json_text(s),
        Value::Array(items) => items.iter().any(in_json),
        Value::Object(map) => map.iter().any(|(k, v)| in_json_text(k) || in_json(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The 400 for `path`, in the shape its clients read: RFC 7591 for registration, OAuth JSON
/// for the other OAuth endpoints and the API, a page for what a browser shows.
fn refusal(path: &str) -> Response {
    const WHAT: &str = "the request contains a control character";
    if path == "/oauth/register" {
        ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_client_metadata", WHAT).into_response()
    } else if path.starts_with("/api/")
        || matches!(path, "/oauth/token" | "/oauth/revoke" | "/oauth/introspect")
    {
        ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_request", WHAT).into_response()
    } else {
        pages::message(
            StatusCode::BAD_REQUEST,
            "Request refused",
            "The request contains a control character, which no field accepts.",
        )
    }
}

enum Kind {
    Form,
    Json,
}

/// The middleware. Bodies are read whole: the body limit (an outer layer) bounds them.
pub async fn reject(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if request.uri().query().is_some_and(|q| in_form(q.as_bytes())) {
        return refusal(&path);
    }
    let kind = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                Some(Kind::Form)
            } else if essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
            {
                Some(Kind::Json)
            } else {
                None
            }
        });
    let Some(kind) = kind else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::oauth(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        )
        .into_response();
    };
    let refused = match kind {
        Kind::Form => in_form(&bytes),
        // Malformed JSON goes on: the handler answers it in its own words.
        Kind::Json => serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| in_json(&v)),
    };
    if refused {
        return refusal(&path);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_counts_as_a_control_character() {
        assert!(in_line("a\u{0}b") && in_line("\u{7f}") && in_line("\u{85}") && in_line("\t"));
        assert!(!in_line("zoë@example.com ✓"));
        assert!(in_form(b"client_id=a%00b") && in_form(b"a%01=x"));
        assert!(!in_form(b"client_id=a%20b&redirect_uri=http%3A%2F%2Fx"));
        let json = |s: &str| in_json(&serde_json::from_str(s).unwrap());
        assert!(json(r#"{"email":"a\u0000@x"}"#));
        assert!(json(r#"{"a":[{"b":"\u001b[31m"}]}"#));
        assert!(json(r#"{"\u0000":1}"#));
        assert!(!json(r#"{"description":"line one\nline two\ttabbed"}"#));
    }
}
