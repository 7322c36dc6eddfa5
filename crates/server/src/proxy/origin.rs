//! `Origin` and `Host` validation (MCP transport security: servers MUST validate `Origin` and
//! answer 403 when it is present and not allowed, against DNS rebinding; the `Host` check
//! covers the requests of a rebinding page that carry no `Origin`).

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

/// The `Host` values `/mcp/*` answers for, normalised (`host[:port]`, lowercase, the
/// scheme's default port dropped).
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(HashSet<String>);

impl AllowedHosts {
    /// `public_url`'s authority (with every loopback name on its port when it is loopback)
    /// plus the configured extras.
    pub fn new<'a>(public_url: &'a str, extra: impl IntoIterator<Item = &'a String>) -> Self {
        let mut set: HashSet<String> = extra
            .into_iter()
            .filter_map(|h| normalize_host(h))
            .collect();
        if let Ok(url) = Url::parse(public_url)
            && let Some(host) = url.host()
        {
            let loopback = match host {
                url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(a) => a.is_loopback(),
                url::Host::Ipv6(a) => a.is_loopback(),
            };
            let names = if loopback {
                vec![
                    "localhost".to_owned(),
                    "127.0.0.1".to_owned(),
                    "[::1]".to_owned(),
                ]
            } else {
                vec![host.to_string().to_ascii_lowercase()]
            };
            for name in names {
                // A default port may be written out or left off.
                if let Some(port) = url.port_or_known_default() {
                    set.insert(format!("{name}:{port}"));
                }
                if url.port().is_none() {
                    set.insert(name);
                }
            }
        }
        Self(set)
    }

    /// Whether a request with this `Host` header may proceed. HTTP/2 requests carry the
    /// authority in the URI instead; a request with neither is not from a browser.
    pub fn allows(&self, host: Option<&[u8]>) -> bool {
        match host {
            None => true,
            Some(h) => match std::str::from_utf8(h) {
                // The common case, a Host exactly as configured, needs no parsing: every entry
                // is already normalised, and a value that parses differently cannot equal one.
                Ok(text) if self.0.contains(text) => true,
                Ok(text) => normalize_host(text).is_some_and(|h| self.0.contains(&h)),
                Err(_) => false,
            },
        }
    }
}

/// `host[:port]` lowercase, for a `Host` header value or a configured name; `None` when it is
/// not one (a path, user info, spaces).
pub fn normalize_host(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let url = Url::parse(&format!("http://{value}")).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
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

    #[test]
    fn hosts_are_the_public_authority_and_the_configured_names() {
        let hosts = AllowedHosts::new(
            "https://gw.example.com/",
            &["Internal.Example:8443".to_owned()],
        );
        assert!(hosts.allows(Some(b"gw.example.com")));
        assert!(hosts.allows(Some(b"GW.example.com:443")));
        assert!(hosts.allows(Some(b"internal.example:8443")));
        assert!(hosts.allows(None));
        for bad in [
            &b"evil.example"[..],
            b"gw.example.com:8443",
            b"internal.example",
            b"gw.example.com/x",
            b"a@gw.example.com",
            b"\xff",
        ] {
            assert!(!hosts.allows(Some(bad)), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_loopback_public_url_answers_for_every_loopback_name_on_its_port() {
        let hosts = AllowedHosts::new("http://127.0.0.1:8080", &[]);
        for ok in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
            assert!(hosts.allows(Some(ok.as_bytes())), "{ok}");
        }
        assert!(!hosts.allows(Some(b"localhost:9090")));
        assert!(!hosts.allows(Some(b"evil.example:8080")));
    }
}
