//! Server-rendered pages: plain HTML, no JavaScript, no external assets, every value escaped.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One stylesheet, inline (the CSP allows inline styles and nothing else): light and dark,
/// readable at 320px, visible keyboard focus, no web fonts.
const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f3f5f8;--card:#fff;--line:#d0d7de;--accent:#0a5cc2;--accent-fg:#fff;--danger:#b42318;--danger-bg:#fef3f2;--note:#8a5300;--note-bg:#fff8e6;--soft:#f6f8fa}\
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#4493f8;--accent-fg:#0d1117;--danger:#ff7b72;--danger-bg:#2d1214;--note:#e3b341;--note-bg:#2b2111;--soft:#1c2128}}\
*{box-sizing:border-box}html{-webkit-text-size-adjust:100%}\
body{margin:0;min-height:100vh;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",sans-serif;color:var(--fg);background:var(--bg)}\
main{width:100%;max-width:27rem;margin:0 auto;padding:clamp(1rem,7vh,4.5rem) 1rem 2rem}\
.brand{display:flex;align-items:center;gap:.55rem;margin:0 0 1rem .25rem;font-weight:700;font-size:1.05rem;letter-spacing:.01em}\
.brand svg{flex:none}.mark-bg{fill:var(--accent)}.mark-fg{stroke:var(--card)}\
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:clamp(1.25rem,5vw,2rem);box-shadow:0 1px 2px rgb(0 0 0/.04),0 8px 24px rgb(0 0 0/.06)}\
h1{font-size:1.45rem;line-height:1.25;margin:0 0 .35rem}p{margin:0 0 1rem}p.sub{color:var(--muted)}\
label{display:block;font-weight:600;margin:1rem 0 .35rem}\
input[type=email],input[type=password]{display:block;width:100%;min-height:2.75rem;padding:.6rem .75rem;font:inherit;color:inherit;background:var(--card);border:1px solid var(--line);border-radius:8px}\
input:hover{border-color:var(--muted)}\
input:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
button{display:block;width:100%;min-height:2.75rem;margin-top:1.5rem;padding:.65rem 1rem;font:inherit;font-weight:600;border:1px solid var(--accent);border-radius:8px;background:var(--accent);color:var(--accent-fg);cursor:pointer}\
button:hover{filter:brightness(1.08)}\
button.secondary{background:transparent;color:var(--fg);border-color:var(--line)}\
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.5rem}.actions button{flex:1 1 9rem;margin:0}\
.error{border:1px solid var(--danger);background:var(--danger-bg);color:var(--danger);border-radius:8px;padding:.65rem .85rem;margin:0 0 1rem}\
.note{border-left:4px solid var(--note);background:var(--note-bg);border-radius:6px;padding:.65rem .85rem;margin:1rem 0 0;font-size:.95rem}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.45rem 1rem;margin:1.25rem 0;padding:1rem;background:var(--soft);border-radius:10px;font-size:.95rem}\
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;font-weight:600;overflow-wrap:anywhere}\
ul.scopes{margin:.25rem 0 0;padding-left:1.25rem}ul.scopes li{margin:.25rem 0}\
code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);border-radius:4px;padding:.05rem .3rem}\
a{color:var(--accent)}.status{color:var(--muted);font-size:.9rem;margin:0 0 .35rem}\
footer{color:var(--muted);font-size:.85rem;text-align:center;margin-top:1.25rem}\
a.provider{display:block;text-align:center;min-height:2.75rem;padding:.65rem 1rem;margin:.5rem 0;border:1px solid var(--line);border-radius:8px;color:var(--fg);text-decoration:none;font-weight:600}\
a.provider:hover{border-color:var(--accent)}p.or{color:var(--muted);text-align:center;font-size:.9rem;margin:1rem 0 0}\
@media (max-width:22rem){dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.4rem}}";

/// The mark next to the name: a gate, drawn inline (no image request), hidden from screen
/// readers because the name follows it.
const MARK: &str = "<svg width=\"26\" height=\"26\" viewBox=\"0 0 26 26\" aria-hidden=\"true\" focusable=\"false\">\
<rect class=\"mark-bg\" x=\"1\" y=\"1\" width=\"24\" height=\"24\" rx=\"7\"/>\
<path class=\"mark-fg\" d=\"M7 19V10.5a6 6 0 0 1 12 0V19M13 8v11M7 13.5h12\" fill=\"none\" stroke-width=\"2\" stroke-linecap=\"round\"/></svg>";

/// The page CSP: inline styles and nothing else; forms post only to mcpgate.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A full page with the security headers every page carries.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_with_csp(status, title, body, HeaderValue::from_static(CSP))
}

/// A page whose form may end at `origins` as well as at mcpgate: browsers apply `form-action`
/// to the redirects that follow a form post, so the consent form's redirect back to the
/// client's (already verified) redirect URI, or on to the identity provider, needs those
/// origins listed. Each must be an ASCII origin (`scheme://host[:port]`); with any other, the
/// strict policy stays.
pub fn page_posting_to(status: StatusCode, title: &str, body: &str, origins: &[&str]) -> Response {
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
    page_with_csp(status, title, body, csp)
}

fn page_with_csp(status: StatusCode, title: &str, body: &str, csp: HeaderValue) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{title} · mcpgate</title><style>{STYLE}</style></head>\
         <body><main><div class=\"brand\">{MARK}<span>mcpgate</span></div>{body}\
         <footer>mcpgate · authorization gateway for MCP servers</footer></main></body></html>",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
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

pub struct LoginView<'a> {
    /// Configured identity providers: (id, display name).
    pub providers: &'a [(String, String)],
    pub error: Option<&'a str>,
    pub email: &'a str,
    pub csrf: &'a str,
    pub return_to: &'a str,
}

pub fn login(status: StatusCode, view: &LoginView<'_>) -> Response {
    let (error, invalid) = match view.error {
        Some(e) => (
            format!(
                "<p class=\"error\" id=\"form-error\" role=\"alert\">{}</p>",
                escape(e)
            ),
            " aria-invalid=\"true\" aria-describedby=\"form-error\"",
        ),
        None => (String::new(), ""),
    };
    let federated = providers_block(view);
    let body = format!(
        "<div class=\"card\"><h1>Sign in</h1><p class=\"sub\">to continue to your tools</p>{error}{federated}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" spellcheck=\"false\" required autofocus value=\"{email}\"{invalid}>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{invalid}>\
         <button type=\"submit\">Sign in</button></form></div>",
        csrf = escape(view.csrf),
        return_to = escape(view.return_to),
        email = escape(view.email),
    );
    page(status, "Sign in", &body)
}

/// "Sign in with …" links for the configured identity providers, keeping `return_to`.
fn providers_block(view: &LoginView<'_>) -> String {
    if view.providers.is_empty() {
        return String::new();
    }
    let return_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", view.return_to)
        .finish();
    let links: String = view
        .providers
        .iter()
        .map(|(id, name)| {
            format!(
                "<a class=\"provider\" href=\"/login/{}?{}\">Sign in with {}</a>",
                escape(id),
                escape(&return_query),
                escape(name)
            )
        })
        .collect();
    format!(
        "<nav aria-label=\"Sign-in methods\">{links}</nav>\
         <p class=\"or\">or with your mcpgate account</p>"
    )
}

pub fn home(name: &str, email: &str, csrf: &str) -> Response {
    let body = format!(
        "<div class=\"card\"><h1>Signed in</h1><p class=\"sub\">as {name} ({email})</p>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"secondary\">Sign out</button></form></div>",
        name = escape(name),
        email = escape(email),
        csrf = escape(csrf),
    );
    page(StatusCode::OK, "Signed in", &body)
}

/// An error or notice page: what happened, in words, and a way back.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let code = if status.is_success() {
        String::new()
    } else {
        format!("<p class=\"status\">Error {}</p>", status.as_u16())
    };
    let body = format!(
        "<div class=\"card\">{code}<h1>{}</h1><p>{}</p><p><a href=\"/login\">Back to sign-in</a></p></div>",
        escape(title),
        escape(text)
    );
    page(status, title, &body)
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
                "t",
                "",
                &["http://127.0.0.1:4321", "https://sso.example.com"]
            ))
            .contains("form-action 'self' http://127.0.0.1:4321 https://sso.example.com;")
        );
        for bad in ["https://a.example; script-src *", "null", "https://a b"] {
            assert_eq!(
                csp(page_posting_to(
                    StatusCode::OK,
                    "t",
                    "",
                    &["https://ok.example", bad]
                )),
                CSP,
                "{bad}"
            );
        }
    }

    #[test]
    fn escapes_everything_that_could_break_out() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
