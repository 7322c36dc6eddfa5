//! Server-rendered pages: the templates of `mcpgate-pages` (every value escaped there), sent
//! with the headers every page carries: a strict CSP (no script, no external asset), no
//! framing, no caching.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mcpgate_pages::{MessageView, RenderError};

/// The page CSP: inline styles and nothing else; forms post only to mcpgate.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A rendered page with the security headers every page carries; a template that failed to
/// render (a bug the page tests catch) is a plain 500.
pub fn page(status: StatusCode, rendered: Result<String, RenderError>) -> Response {
    page_with_csp(status, rendered, HeaderValue::from_static(CSP))
}

/// A page whose form may end at `origins` as well as at mcpgate: browsers apply `form-action`
/// to the redirects that follow a form post, so the consent form's redirect back to the
/// client's (already verified) redirect URI, or on to the identity provider, needs those
/// origins listed. Each must be an ASCII origin (`scheme://host[:port]`); with any other, the
/// strict policy stays.
pub fn page_posting_to(
    status: StatusCode,
    rendered: Result<String, RenderError>,
    origins: &[&str],
) -> Response {
    let plain = |origin: &str| {
        origin.contains("://")
            && origin.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '[' | ']')
            })
    };
    let csp = if !origins.is_empty() && origins.iter().all(|o| plain(o)) {
        HeaderValue::from_str(&CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {}", origins.join(" ")),
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(CSP))
    } else {
        HeaderValue::from_static(CSP)
    };
    page_with_csp(status, rendered, csp)
}

fn page_with_csp(
    status: StatusCode,
    rendered: Result<String, RenderError>,
    csp: HeaderValue,
) -> Response {
    let mut response = match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page not rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "mcpgate could not show this page",
            )
                .into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// An error or notice page: what happened, in words, and a way back to sign-in.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let code = (!status.is_success()).then(|| status.as_u16());
    page(status, MessageView::new(code, title, text).render())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_may_end_at_the_named_origin_only() {
        let csp = |r: Response| {
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert!(
            csp(page_posting_to(
                StatusCode::OK,
                Ok(String::new()),
                &["http://127.0.0.1:4321", "https://sso.example.com"]
            ))
            .contains("form-action 'self' http://127.0.0.1:4321 https://sso.example.com;")
        );
        for bad in ["https://a.example; script-src *", "null", "https://a b"] {
            assert_eq!(
                csp(page_posting_to(
                    StatusCode::OK,
                    Ok(String::new()),
                    &["https://ok.example", bad]
                )),
                CSP,
                "{bad}"
            );
        }
    }
}
