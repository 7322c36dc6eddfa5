//! Redirect URIs: what may be registered, and when a requested one matches a registered one.
//!
//! MCP: redirect URIs MUST be https or loopback, and match exactly — except that a loopback
//! redirect matches on any port (RFC 8252 §7.3: native apps bind a random port). Public
//! clients (native apps: no secret) may also use a private-use URI scheme (RFC 8252 §7.1,
//! `cursor://…`, `com.example.app:/cb`), matched exactly.

use url::{Host, Url};

/// Loopback hosts in the RFC 8252 sense (`localhost` included, as clients use it).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Schemes that are never a native app's own: they would hand the code to a web page, a
/// file, a script or another protocol's handler.
const NOT_PRIVATE_USE: &[&str] = &[
    "http",
    "https",
    "javascript",
    "vbscript",
    "data",
    "blob",
    "file",
    "filesystem",
    "about",
    "ftp",
    "ws",
    "wss",
    "mailto",
    "tel",
    "sms",
    "urn",
    "view-source",
    "chrome",
    "resource",
];

/// Who registers the redirect: a public client (no secret: a native app, which may own a
/// private-use scheme) or a confidential one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Public,
    Confidential,
}

/// Whether a redirect URI may be registered: absolute, https or http on loopback (or, for a
/// public client, a private-use scheme), no fragment (RFC 6749 §3.1.2), no userinfo.
pub fn check_registrable(uri: &str, client: ClientType) -> Result<Url, String> {
    let url = Url::parse(uri).map_err(|e| format!("not an absolute URL: {e}"))?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err("http is allowed only for loopback addresses (use https)".into()),
        other if client == ClientType::Public && !NOT_PRIVATE_USE.contains(&other) => Ok(url),
        other if client == ClientType::Public => Err(format!(
            "scheme {other:?} is not allowed (https, loopback http, or an app's private-use scheme)"
        )),
        other => Err(format!(
            "scheme {other:?} is not allowed for a confidential client (https or loopback http)"
        )),
    }
}

/// Whether `requested` matches one of `registered`: byte for byte, or for loopback
/// redirects equal in everything but the port (RFC 8252 §7.3).
///
/// For the loopback case the requested URI must already be in the form the URL parser would
/// write it: parsing quietly normalises dot segments, percent-encoded hosts and other
/// spellings of an address (`127.1`, `0x7f.0.0.1`), and those must not reach a match.
/// Userinfo and fragments are refused outright (RFC 6749 §3.1.2). Then scheme, host, path and
/// query are compared as parsed, and the port alone may differ.
pub fn matches(requested: &str, registered: &[String]) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = Url::parse(requested) else {
        return false;
    };
    if !is_loopback(&req)
        || req.scheme() != "http"
        || req.as_str() != requested
        || req.fragment().is_some()
        || !req.username().is_empty()
        || req.password().is_some()
    {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|reg| {
            is_loopback(&reg)
                && reg.scheme() == req.scheme()
                && reg.username().is_empty()
                && reg.password().is_none()
                && reg.host() == req.host()
                && reg.path() == req.path()
                && reg.query() == req.query()
                && reg.fragment().is_none()
        })
}

/// True when every registered redirect is a loopback address: the consent page warns that
/// the client runs on the user's own machine and cannot be verified by its host name.
pub fn all_loopback(registered: &[String]) -> bool {
    !registered.is_empty()
        && registered
            .iter()
            .all(|r| Url::parse(r).is_ok_and(|u| is_loopback(&u)))
}

/// The host to show a person on the consent page.
pub fn host_of(uri: &str) -> String {
    Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| uri.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as05_exact_match_and_loopback_any_port() {
        let reg = vec![
            "http://127.0.0.1/callback".to_owned(),
            "https://app.example.com/cb".to_owned(),
        ];
        assert!(matches("https://app.example.com/cb", &reg));
        assert!(matches("http://127.0.0.1:53117/callback", &reg));
        assert!(matches("http://127.0.0.1/callback", &reg));
        assert!(
            !matches("https://app.example.com/cb/", &reg),
            "exact, no prefix"
        );
        assert!(
            !matches("https://app.example.com:8443/cb", &reg),
            "port counts off loopback"
        );
        assert!(!matches("http://127.0.0.1:5000/other", &reg));
        assert!(
            !matches("http://localhost:5000/callback", &reg),
            "host must match too"
        );
        assert!(!matches("https://evil.example/cb", &reg));
    }

    /// RFC 8252 §7.3: on loopback only the port may vary. Everything else a URL parser would
    /// quietly normalise (userinfo, dot segments, other spellings of the address, fragments)
    /// is refused, so the code cannot be steered to another listener or path.
    #[test]
    fn loopback_only_the_port_varies() {
        let reg = vec![
            "http://127.0.0.1/callback".to_owned(),
            "http://localhost/cb?x=1".to_owned(),
            "http://[::1]/cb".to_owned(),
        ];
        for ok in [
            "http://127.0.0.1:53117/callback",
            "http://localhost:8080/cb?x=1",
            "http://[::1]:9/cb",
        ] {
            assert!(matches(ok, &reg), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:5000/callback#frag",
            "http://127.0.0.1:5000/callback#",
            "http://user@127.0.0.1:5000/callback",
            "http://user:pw@127.0.0.1:5000/callback",
            "http://127.0.0.1:5000/x/../callback",
            "http://127.0.0.1:5000/./callback",
            "http://127.0.0.1:5000/%2e%2e/callback",
            "http://127.0.0.1:5000/%63allback",
            "http://%31%32%37.0.0.1:5000/callback",
            "http://127.1:5000/callback",
            "http://0x7f.0.0.1:5000/callback",
            "http://0177.0.0.1:5000/callback",
            "http://2130706433:5000/callback",
            "http://127.0.0.1.:5000/callback",
            "HTTP://127.0.0.1:5000/callback",
            "http://LOCALHOST:5000/cb?x=1",
            "http://localhost:5000/cb?x=2",
            "http://localhost:5000/cb?x=1&y=2",
            "http://[0:0:0:0:0:0:0:1]:5000/cb",
            "http://127.0.0.1:5000/callback/",
            "http://127.0.0.1:5000/Callback",
            "https://127.0.0.1:5000/callback",
        ] {
            assert!(!matches(bad, &reg), "{bad}");
        }
    }

    #[test]
    fn registrable_redirects() {
        use ClientType::{Confidential, Public};
        for client in [Public, Confidential] {
            assert!(check_registrable("https://app.example.com/cb", client).is_ok());
            assert!(check_registrable("http://localhost:3000/cb", client).is_ok());
            assert!(check_registrable("http://[::1]/cb", client).is_ok());
            assert!(check_registrable("http://app.example.com/cb", client).is_err());
            assert!(check_registrable("https://app.example.com/cb#x", client).is_err());
            assert!(check_registrable("javascript:alert(1)", client).is_err());
            assert!(check_registrable("/relative", client).is_err());
            assert!(check_registrable("https://user:pw@app.example.com/", client).is_err());
        }
        // RFC 8252 §7.1: native apps' own schemes, for public clients only.
        for native in [
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "com.example.app:/oauth2redirect",
            "vscode://vscode.github-authentication/did-authenticate",
        ] {
            assert!(check_registrable(native, Public).is_ok(), "{native}");
            assert!(check_registrable(native, Confidential).is_err(), "{native}");
        }
        for bad in [
            "data:text/html,x",
            "file:///etc/passwd",
            "cursor://x/cb#frag",
            "cursor://u:p@x/cb",
            "ftp://x/cb",
        ] {
            assert!(check_registrable(bad, Public).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_only_warning() {
        assert!(all_loopback(&[
            "http://127.0.0.1/cb".into(),
            "http://localhost/cb".into()
        ]));
        assert!(!all_loopback(&[
            "http://127.0.0.1/cb".into(),
            "https://a.example/cb".into()
        ]));
        assert!(!all_loopback(&[]));
    }
}
