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

const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--accent:#0969da;--danger:#cf222e}\
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#4493f8;--danger:#f85149}}\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}\
main{max-width:26rem;margin:8vh auto;padding:0 1rem}\
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.75rem}\
h1{font-size:1.4rem;margin:0 0 .25rem}p.sub{color:var(--muted);margin:0 0 1.25rem}\
label{display:block;font-weight:600;margin:.9rem 0 .3rem}\
input[type=email],input[type=password]{width:100%;padding:.6rem .7rem;font:inherit;color:inherit;background:transparent;border:1px solid var(--line);border-radius:8px}\
input:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
button{margin-top:1.25rem;width:100%;padding:.65rem;font:inherit;font-weight:600;border:0;border-radius:8px;background:var(--accent);color:#fff;cursor:pointer}\
button.secondary{background:transparent;color:var(--accent);border:1px solid var(--line)}\
.error{border:1px solid var(--danger);color:var(--danger);border-radius:8px;padding:.6rem .8rem;margin:0 0 1rem}\
a.provider{display:block;text-align:center;padding:.6rem;margin:.5rem 0;border:1px solid var(--line);border-radius:8px;color:var(--fg);text-decoration:none;font-weight:600}a.provider:hover{border-color:var(--accent)}\
p.or{color:var(--muted);text-align:center;font-size:.9rem;margin:1rem 0 0}\
.brand{font-weight:700;letter-spacing:.02em;color:var(--muted);margin-bottom:1rem}footer{color:var(--muted);font-size:.85rem;text-align:center;margin-top:1rem}";

/// A full page with the security headers every page carries.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · mcpgate</title><style>{STYLE}</style></head>\
         <body><main><div class=\"brand\">mcpgate</div>{body}\
         <footer>mcpgate — authorization gateway for MCP servers</footer></main></body></html>",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
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
    let error = view
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let return_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", view.return_to)
        .finish();
    let federated: String = if view.providers.is_empty() {
        String::new()
    } else {
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
            "<nav aria-label=\"Sign-in methods\">{links}</nav><p class=\"or\">or with your mcpgate account</p>"
        )
    };
    let body = format!(
        "<div class=\"card\"><h1>Sign in</h1><p class=\"sub\">to continue to your tools</p>{error}{federated}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required autofocus value=\"{email}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form></div>",
        csrf = escape(view.csrf),
        return_to = escape(view.return_to),
        email = escape(view.email),
    );
    page(status, "Sign in", &body)
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

pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<div class=\"card\"><h1>{}</h1><p>{}</p><p><a href=\"/login\">Back to sign-in</a></p></div>",
        escape(title),
        escape(text)
    );
    page(status, title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_break_out() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
