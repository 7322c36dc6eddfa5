//! `Origin` validation (MCP transport security: servers MUST validate `Origin` and answer 403
//! when it is present and not allowed, against DNS rebinding).

use std::collections::HashSet;

use url::Url;

/// The origins allowed to call `/mcp/*`, normalised (`scheme://host[:port]`, default port
/// dropped, lowercase).
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(HashSet<String>);

impl AllowedOrigins {
    /// `public_url`'s origin plus the configured extras (already validated by the config).
    pub fn new<'a>(public_url: &'a str, extra: impl IntoIterator<Item = &'a String>) -> Self {
        let set = std::iter::once(public_url)
            .chain(extra.into_iter().map(String::as_str))
            .filter_map(normalize)
            .collect();
        Self(set)
    }

    /// Whether a request carrying this `Origin` header value may proceed.
    pub fn allows(&self, origin: &[u8]) -> bool {
        std::str::from_utf8(origin)
            .ok()
            .and_then(normalize)
            .is_some_and(|o| self.0.contains(&o))
    }
}

/// `scheme://host[:port]` for an origin or origin-only URL; `None` for anything else,
/// including the opaque origin `null`.
pub fn normalize(value: &str) -> Option<String> {
    let url = Url::parse(value.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return None;
    }
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_origin_and_extras_are_allowed_and_nothing_else() {
        let allowed = AllowedOrigins::new(
            "http://127.0.0.1:8080",
            &["https://App.Example.com:443".to_owned()],
        );
        assert!(allowed.allows(b"http://127.0.0.1:8080"));
        assert!(allowed.allows(b"https://app.example.com"));
        assert!(!allowed.allows(b"http://evil.example"));
        assert!(!allowed.allows(b"http://127.0.0.1:8081"));
        assert!(!allowed.allows(b"null"));
        assert!(!allowed.allows(b"\xff"));
    }

    #[test]
    fn only_bare_origins_normalize() {
        assert_eq!(
            normalize("HTTPS://x.example:443").as_deref(),
            Some("https://x.example")
        );
        assert_eq!(normalize("https://x.example/path"), None);
        assert_eq!(normalize("ftp://x.example"), None);
    }
}
