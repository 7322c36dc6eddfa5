//! What people see in a browser: the sign-in page, sign-out, the session cookie, and the
//! personal access tokens page.

pub mod admin;
pub mod connect;
pub mod consent;
pub mod csrf;
pub mod dashboard;
pub mod device;
pub mod home;
pub mod login;
pub mod pages;
pub mod session;
pub mod signed_in;
pub mod tokens;

/// No route: an HTML page for browsers (their `Accept` prefers `text/html`), JSON for API
/// clients.
pub async fn not_found(headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    if wants_html(&headers) {
        let mut view = mcpgate_pages::MessageView::new(
            Some(404),
            "Page not found",
            "There is no page at this address.",
        );
        view.back_href = "/".into();
        view.back_text = "Go to the start page".into();
        return pages::page(axum::http::StatusCode::NOT_FOUND, view.render());
    }
    crate::error::ApiError::NotFound("no such endpoint".into()).into_response()
}

/// Whether the client asks for HTML (a browser navigating), by `Accept`.
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let kind = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (kind.eq_ignore_ascii_case("text/html")
                || kind.eq_ignore_ascii_case("application/xhtml+xml"))
                && !refused
        })
}

/// A `return_to` that stays on this site, in canonical form: a path starting with one `/`,
/// with its dot segments resolved (`/./oauth/authorize`, `/x/../oauth/authorize` and
/// `/%2e/oauth/authorize` all become `/oauth/authorize`, as the browser would make them) and
/// no fragment, so what is checked is what the browser will load. Anything else (an absolute
/// URL, `//host`, `/\host`, control characters) becomes `/`: no open redirect.
pub fn safe_return_to(value: Option<&str>) -> String {
    const BASE: &str = "http://mcpgate.invalid/";
    let Some(v) = value.filter(|v| {
        v.starts_with('/')
            && !v.starts_with("//")
            && !v.starts_with("/\\")
            && !v.chars().any(|c| c.is_control() || c == '\\')
    }) else {
        return "/".to_owned();
    };
    let Ok(url) = url::Url::parse(BASE).and_then(|base| base.join(v)) else {
        return "/".to_owned();
    };
    if url.scheme() != "http" || url.host_str() != Some("mcpgate.invalid") || url.port().is_some() {
        return "/".to_owned();
    }
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn only_same_origin_paths() {
        assert_eq!(
            safe_return_to(Some("/oauth/authorize?x=1")),
            "/oauth/authorize?x=1"
        );
        for bad in [
            "https://evil.example/x",
            "//evil.example/x",
            "/\\evil.example",
            "evil",
            "/ok\r\nSet-Cookie: x",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }

    #[test]
    fn dot_segments_and_fragments_are_resolved_as_the_browser_would() {
        for sneaky in [
            "/./oauth/authorize?client_id=a&state=s",
            "/x/../oauth/authorize?client_id=a&state=s",
            "/%2e/oauth/authorize?client_id=a&state=s",
            "/%2E%2E/oauth/authorize?client_id=a&state=s",
            "/oauth/./authorize?client_id=a&state=s#frag",
        ] {
            assert_eq!(
                safe_return_to(Some(sneaky)),
                "/oauth/authorize?client_id=a&state=s",
                "{sneaky}"
            );
        }
        // Encoded query characters are kept as they are.
        assert_eq!(
            safe_return_to(Some(
                "/oauth/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"
            )),
            "/oauth/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"
        );
    }
}
