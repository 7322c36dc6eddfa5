//! mcpgate's HTML pages: the templates, the stylesheet, and the view models they render.
//!
//! Templates are [minijinja] sources embedded in the binary (`include_str!`) and compiled once;
//! every `.html` template escapes every value by default, so text from users, clients and
//! identity providers cannot become markup. Only the stylesheet and the inline mark are
//! inserted as trusted HTML. This crate renders strings: it knows nothing of HTTP, the
//! database or the network (the server adds headers, CSP and status).
//!
//! Pages for a signed-in person extend `signed_in.html` (navigation, sign-out, flash and error
//! lines) and fill its `content` block; see [`Nav`].

use std::sync::OnceLock;

use minijinja::{Environment, Value};
use serde::Serialize;

mod views;

pub use views::*;

/// The one stylesheet, inline (the CSP allows inline styles and nothing else): light and dark,
/// readable at 320px, visible keyboard focus, no web fonts.
pub const STYLE: &str = include_str!("../static/style.css");

/// The mark next to the name: a gate, drawn inline (no image request), hidden from screen
/// readers because the name follows it.
pub const MARK: &str = include_str!("../static/mark.svg");

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    (
        "signed_in.html",
        include_str!("../templates/signed_in.html"),
    ),
    ("login.html", include_str!("../templates/login.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("tokens.html", include_str!("../templates/tokens.html")),
    ("connect.html", include_str!("../templates/connect.html")),
    (
        "connections.html",
        include_str!("../templates/connections.html"),
    ),
    (
        "admin/users.html",
        include_str!("../templates/admin/users.html"),
    ),
    (
        "admin/roles.html",
        include_str!("../templates/admin/roles.html"),
    ),
    (
        "admin/teams.html",
        include_str!("../templates/admin/teams.html"),
    ),
    (
        "admin/upstreams.html",
        include_str!("../templates/admin/upstreams.html"),
    ),
    (
        "admin/clients.html",
        include_str!("../templates/admin/clients.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../templates/admin/audit.html"),
    ),
    (
        "admin/explain.html",
        include_str!("../templates/admin/explain.html"),
    ),
    (
        "admin/dashboard.html",
        include_str!("../templates/admin/dashboard.html"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("page {template} could not be rendered: {message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Unknown variables are an error, not silently empty: a typo fails the page tests.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_formatter(format_value);
        env.add_global(
            "style",
            Value::from_safe_string(STYLE.trim_end().to_owned()),
        );
        env.add_global("mark", Value::from_safe_string(MARK.trim_end().to_owned()));
        for (name, source) in TEMPLATES {
            // The sources are part of the binary and compiled by the tests below: an error here
            // is a bug caught before release, reported when the page renders.
            if let Err(e) = env.add_template(name, source) {
                eprintln!("template {name}: {e}");
            }
        }
        env
    })
}

/// Escapes text for HTML element content and double-quoted attributes: `&`, `<`, `>`, `"`
/// and `'` (`/` stays: it cannot end an element or a quoted attribute, and URLs stay readable).
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

/// How a value is written: in an `.html` template every value that is not marked safe is
/// escaped with [`escape`]; `none` writes nothing.
fn format_value(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if value.is_none() {
        return Ok(());
    }
    if matches!(state.auto_escape(), minijinja::AutoEscape::Html) && !value.is_safe() {
        let text = match value.as_str() {
            Some(s) => escape(s),
            None => escape(&value.to_string()),
        };
        return out
            .write_str(&text)
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()));
    }
    minijinja::escape_formatter(out, state, value)
}

/// Renders `template` with `view` (any serializable view model) as the context.
pub fn render<T: Serialize>(template: &str, view: &T) -> Result<String, RenderError> {
    let fail = |e: minijinja::Error| RenderError {
        template: template.to_owned(),
        message: format!("{e:#}"),
    };
    let env = environment();
    let tmpl = env.get_template(template).map_err(fail)?;
    tmpl.render(view).map_err(fail)
}

#[cfg(test)]
mod tests;
