//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL names a JSON document describing the client. mcpgate fetches it with
//! care — it is a request to a URL an anonymous caller chose:
//! - https only (loopback http only with an explicit development setting);
//! - every address the host resolves to must be public (no private, loopback, link-local,
//!   shared or unspecified ranges), and the connection goes to the address that was checked
//!   (no DNS rebinding between check and connect);
//! - no redirects, a time limit, a size limit;
//! - the document's `client_id` must equal the URL exactly; `redirect_uris` govern;
//! - cached per HTTP `Cache-Control: max-age`, within configured bounds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use url::{Host, Url};

use crate::config::ClientMetadataConfig;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CimdError {
    #[error("client_id is not an acceptable metadata document URL: {0}")]
    BadUrl(String),
    #[error("the metadata document host resolves to a non-public address")]
    ForbiddenAddress,
    #[error("the metadata document could not be fetched: {0}")]
    Fetch(String),
    #[error("the metadata document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the metadata document is invalid: {0}")]
    Invalid(String),
}

/// What mcpgate takes from a metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDocument {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// The document as fetched.
    pub raw: serde_json::Value,
    /// How long it may be cached.
    pub cache_for: Duration,
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
}

/// Whether a `client_id` is meant as a metadata document URL.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Addresses a server-side fetch must never reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks the URL's shape before any network traffic.
pub fn check_url(client_id: &str, config: &ClientMetadataConfig) -> Result<Url, CimdError> {
    let url = Url::parse(client_id).map_err(|e| CimdError::BadUrl(e.to_string()))?;
    let scheme_ok = url.scheme() == "https"
        || (url.scheme() == "http" && config.allow_loopback_http && is_loopback_host(&url));
    if !scheme_ok {
        return Err(CimdError::BadUrl("must be an https URL".into()));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(CimdError::BadUrl(
            "no fragment or credentials allowed".into(),
        ));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(CimdError::BadUrl("must have a path".into()));
    }
    // Checked on the string as sent: parsing would normalise the segments away.
    let raw_path = client_id
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['?', '#']).next().unwrap_or(""));
    if raw_path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(CimdError::BadUrl("no dot segments allowed".into()));
    }
    Ok(url)
}

/// Fetches and validates the document behind `client_id`.
pub async fn fetch(
    client_id: &str,
    config: &ClientMetadataConfig,
) -> Result<ClientDocument, CimdError> {
    let url = check_url(client_id, config)?;
    let host = url
        .host_str()
        .ok_or_else(|| CimdError::BadUrl("no host".into()))?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let timeout = Duration::from_millis(config.timeout_ms);

    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| CimdError::Fetch("resolving the host timed out".into()))?
            .map_err(|e| CimdError::Fetch(format!("cannot resolve the host: {e}")))?
            .collect();
    let allowed = |ip: IpAddr| is_public(ip) || (config.allow_loopback_http && ip.is_loopback());
    let Some(addr) = addrs.first().copied() else {
        return Err(CimdError::Fetch("the host has no address".into()));
    };
    if !addrs.iter().all(|a| allowed(a.ip())) {
        return Err(CimdError::ForbiddenAddress);
    }

    crate::tls::ensure_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        // Connect to the address that was checked, not to whatever DNS says next.
        .resolve(&host, addr)
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CimdError::Fetch(e.to_string()))?;
    let response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| CimdError::Fetch(e.to_string()))?;
    if response.status().is_redirection() {
        return Err(CimdError::Fetch("redirects are not followed".into()));
    }
    if !response.status().is_success() {
        return Err(CimdError::Fetch(format!("HTTP {}", response.status())));
    }
    if response
        .content_length()
        .is_some_and(|len| len > config.max_bytes as u64)
    {
        return Err(CimdError::TooLarge(config.max_bytes));
    }
    let cache_for = cache_lifetime(response.headers(), config);
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| CimdError::Fetch(e.to_string()))?;
        if body.len() + chunk.len() > config.max_bytes {
            return Err(CimdError::TooLarge(config.max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    parse(client_id, &body, cache_for)
}

fn cache_lifetime(headers: &reqwest::header::HeaderMap, config: &ClientMetadataConfig) -> Duration {
    let directives = headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    let secs = if directives
        .iter()
        .any(|d| d == "no-store" || d == "no-cache")
    {
        config.min_cache_secs
    } else {
        directives
            .iter()
            .find_map(|d| {
                d.strip_prefix("max-age=")
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(config.min_cache_secs)
    };
    Duration::from_secs(secs.clamp(config.min_cache_secs, config.max_cache_secs))
}

/// Validates a fetched document against the URL it came from.
pub fn parse(
    client_id: &str,
    body: &[u8],
    cache_for: Duration,
) -> Result<ClientDocument, CimdError> {
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CimdError::Invalid(format!("not JSON: {e}")))?;
    let doc: Document =
        serde_json::from_value(raw.clone()).map_err(|e| CimdError::Invalid(e.to_string()))?;
    if doc.client_id != client_id {
        return Err(CimdError::Invalid(
            "its client_id does not equal the URL it was fetched from".into(),
        ));
    }
    let client_name = doc
        .client_name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| CimdError::Invalid("client_name is required".into()))?;
    let redirect_uris = doc
        .redirect_uris
        .filter(|r| !r.is_empty())
        .ok_or_else(|| CimdError::Invalid("redirect_uris is required".into()))?;
    for uri in &redirect_uris {
        super::redirect::check_registrable(uri, super::redirect::ClientType::Public)
            .map_err(|e| CimdError::Invalid(format!("redirect_uris: {uri}: {e}")))?;
    }
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(CimdError::Invalid(format!(
                "token_endpoint_auth_method {other:?} is not supported (public clients only)"
            )));
        }
    }
    Ok(ClientDocument {
        client_name,
        redirect_uris,
        raw,
        cache_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientMetadataConfig {
        ClientMetadataConfig::default()
    }

    #[test]
    fn ssrf_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn url_shape() {
        let c = config();
        assert!(check_url("https://app.example.com/client.json", &c).is_ok());
        assert!(
            check_url("https://app.example.com/", &c).is_err(),
            "needs a path"
        );
        assert!(check_url("http://app.example.com/c.json", &c).is_err());
        assert!(
            check_url("http://127.0.0.1/c.json", &c).is_err(),
            "loopback http only when allowed"
        );
        let dev = ClientMetadataConfig {
            allow_loopback_http: true,
            ..config()
        };
        assert!(check_url("http://127.0.0.1:4000/c.json", &dev).is_ok());
        assert!(check_url("https://u:p@app.example.com/c.json", &c).is_err());
        assert!(check_url("https://app.example.com/a/../c.json", &c).is_err());
    }

    #[test]
    fn as12_document_rules() {
        let id = "https://app.example.com/client.json";
        let ok = br#"{"client_id":"https://app.example.com/client.json","client_name":"App",
            "redirect_uris":["http://127.0.0.1/cb"]}"#;
        let doc = parse(id, ok, Duration::from_secs(60)).unwrap();
        assert_eq!(doc.client_name, "App");
        let other_id = br#"{"client_id":"https://evil.example/client.json","client_name":"App","redirect_uris":["http://127.0.0.1/cb"]}"#;
        assert!(matches!(
            parse(id, other_id, Duration::ZERO),
            Err(CimdError::Invalid(_))
        ));
        let no_name = br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["http://127.0.0.1/cb"]}"#;
        assert!(parse(id, no_name, Duration::ZERO).is_err());
        let bad_redirect = br#"{"client_id":"https://app.example.com/client.json","client_name":"A","redirect_uris":["http://evil.example/cb"]}"#;
        assert!(parse(id, bad_redirect, Duration::ZERO).is_err());
        assert!(parse(id, b"not json", Duration::ZERO).is_err());
    }

    #[test]
    fn cache_lifetime_follows_max_age_within_bounds() {
        let c = config();
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("cache-control", "public, max-age=600".parse().unwrap());
        assert_eq!(cache_lifetime(&h, &c), Duration::from_secs(600));
        h.insert("cache-control", "max-age=999999999".parse().unwrap());
        assert_eq!(
            cache_lifetime(&h, &c),
            Duration::from_secs(c.max_cache_secs)
        );
        h.insert("cache-control", "no-store".parse().unwrap());
        assert_eq!(
            cache_lifetime(&h, &c),
            Duration::from_secs(c.min_cache_secs)
        );
    }
}
