//! Finding the upstream's authorization server, as the MCP authorization spec (2025-11-25,
//! "Authorization Server Discovery") prescribes for clients: the upstream's 401
//! `WWW-Authenticate` names the RFC 9728 protected-resource metadata (else the well-known URIs,
//! path-based first); its `authorization_servers[0]` is the issuer, whose RFC 8414 metadata is
//! tried with path insertion, then OpenID Connect discovery with insertion and appending.

use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{get_json, read_limited};
use crate::CredentialError;

/// Longest `WWW-Authenticate` value parsed.
const MAX_CHALLENGE_LEN: usize = 8 * 1024;

/// The `Bearer` challenge of a 401 or 403 (RFC 6750 §3, RFC 9728 §5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// `resource_metadata`: where the protected-resource metadata is.
    pub resource_metadata: Option<String>,
    /// `scope`: what the resource needs (the first choice for the scopes to ask for).
    pub scope: Option<String>,
    /// `error`: e.g. `insufficient_scope` on a 403 (step-up).
    pub error: Option<String>,
}

impl Challenge {
    /// The `Bearer` challenge among the `WWW-Authenticate` values of a response, if any.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Self::parse)
    }

    /// Parses a `WWW-Authenticate` value; `None` unless it holds a `Bearer` challenge.
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() > MAX_CHALLENGE_LEN {
            return None;
        }
        let start = find_scheme(value, "bearer")?;
        let mut challenge = Self::default();
        for (name, param) in auth_params(&value[start..]) {
            match name.to_ascii_lowercase().as_str() {
                "resource_metadata" => challenge.resource_metadata = Some(param),
                "scope" => challenge.scope = Some(param),
                "error" => challenge.error = Some(param),
                _ => {}
            }
        }
        Some(challenge)
    }
}

/// The byte offset just after the `scheme` token (case-insensitive) that starts a challenge.
fn find_scheme(value: &str, scheme: &str) -> Option<usize> {
    let lower = value.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(scheme) {
        let at = from + i;
        let end = at + scheme.len();
        let before_ok = at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b',');
        let after_ok = end == lower.len() || lower.as_bytes()[end] == b' ';
        if before_ok && after_ok {
            return Some(end);
        }
        from = end;
    }
    None
}

/// `name=token` and `name="quoted \" string"` pairs (RFC 9110 §11.2) until the next scheme.
fn auth_params(mut rest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some(eq) = rest.find('=') else {
            return out;
        };
        let name = rest[..eq].trim();
        if name.is_empty() || name.contains(' ') {
            // The next challenge's scheme: this one ends here.
            return out;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            value = rest[..end].to_owned();
            rest = &rest[end..];
        }
        out.push((name.to_owned(), value));
    }
}

/// RFC 9728 protected-resource metadata: only what mcpgate uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceMetadata {
    /// The resource identifier, exactly as published (sent as `resource`, RFC 8707).
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
}

/// RFC 8414 authorization server metadata: only what mcpgate uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// RFC 9207: the authorization response carries `iss`, which must then be checked.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// What discovery found for one upstream: enough to register, authorize, exchange and refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// The `resource` to send (the metadata's identifier, else the upstream URL).
    pub resource: String,
    pub server: ServerMetadata,
    /// The scopes to ask for (may be empty: then no `scope` parameter is sent).
    pub scopes: Vec<String>,
}

impl Discovery {
    /// Re-authorization keeps what was granted before (MCP scope challenge handling,
    /// SEP-2350): the scopes become the union of `granted` and the challenged ones.
    pub fn keep_granted(&mut self, granted: &str) {
        let mut all: Vec<String> = granted.split_whitespace().map(str::to_owned).collect();
        for s in self.scopes.drain(..) {
            if !all.contains(&s) {
                all.push(s);
            }
        }
        all.truncate(64);
        self.scopes = all;
    }
}

/// https, or plain http to a loopback host (tests, a sidecar). Every URL discovery follows is
/// checked, since metadata documents are input from the network.
pub(crate) fn allowed_url(url: &Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// `a` and `b` name the same identifier (a trailing `/` on an empty path is not a difference).
fn same_identifier(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The protected resource `resource` covers `upstream`: same origin, and its path is a
/// segment-wise prefix of the upstream's.
pub(crate) fn covers(resource: &str, upstream: &Url) -> bool {
    let Ok(r) = Url::parse(resource) else {
        return false;
    };
    if r.origin() != upstream.origin() || r.fragment().is_some() {
        return false;
    }
    let rp = r.path().trim_end_matches('/');
    let up = upstream.path().trim_end_matches('/');
    rp.is_empty() || up == rp || up.starts_with(&format!("{rp}/"))
}

/// The well-known URI for `suffix` with the URL's path inserted after it (RFC 8414 §3.1,
/// RFC 9728 §3.1), and (for OpenID Connect) appended after the path.
fn inserted(base: &Url, well_known: &str) -> Url {
    let mut url = base.clone();
    let path = base.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/{well_known}{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

fn appended(base: &Url, well_known: &str) -> Url {
    let mut url = base.clone();
    let path = base.path().trim_end_matches('/');
    url.set_path(&format!("{path}/.well-known/{well_known}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

pub(crate) struct Discoverer<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) upstream: &'a str,
    pub(crate) timeout: std::time::Duration,
}

impl Discoverer<'_> {
    fn unavailable(&self, why: impl Into<String>) -> CredentialError {
        CredentialError::unavailable(self.upstream, why)
    }

    /// Calls the upstream with no token (an MCP `initialize`, which every era answers with the
    /// challenge first) and reads its `Bearer` challenge, if it sends one.
    pub(crate) async fn probe(&self, url: &Url) -> Result<Option<Challenge>, CredentialError> {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")}}
        });
        let response = self
            .http
            .post(url.clone())
            .timeout(self.timeout)
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .map_err(|e| crate::oauth::send_error(self.upstream, self.timeout, &e))?;
        let challenge = Challenge::from_headers(response.headers());
        // Drain a little of the body so the connection can be reused; the content is not used.
        let _ = read_limited(response, 4096).await;
        Ok(challenge)
    }

    /// RFC 9728 metadata from the challenge's `resource_metadata`, else the path-based then
    /// the root well-known URI. `Ok(None)`: the upstream publishes none (a 2025-03-26 server).
    pub(crate) async fn resource_metadata(
        &self,
        url: &Url,
        challenge: Option<&Challenge>,
    ) -> Result<Option<ResourceMetadata>, CredentialError> {
        let mut candidates = Vec::new();
        if let Some(named) = challenge.and_then(|c| c.resource_metadata.as_deref()) {
            match Url::parse(named) {
                Ok(u) if allowed_url(&u) => candidates.push(u),
                _ => {
                    return Err(
                        self.unavailable("the upstream named an unusable resource_metadata URL")
                    );
                }
            }
        } else {
            let path = url.path().trim_end_matches('/');
            if !path.is_empty() {
                candidates.push(inserted(url, "oauth-protected-resource"));
            }
            let mut root = url.clone();
            root.set_path("/.well-known/oauth-protected-resource");
            root.set_query(None);
            candidates.push(root);
        }
        for candidate in candidates {
            let Some(meta) =
                get_json::<ResourceMetadata>(self.http, &candidate, self.upstream, self.timeout)
                    .await?
            else {
                continue;
            };
            if !covers(&meta.resource, url) {
                return Err(self.unavailable(
                    "the upstream's protected-resource metadata names another resource",
                ));
            }
            return Ok(Some(meta));
        }
        Ok(None)
    }

    /// The issuer's metadata, trying in order what MCP 2025-11-25 lists; the document's
    /// `issuer` must be the one asked for (RFC 8414 §3.3).
    pub(crate) async fn server_metadata(
        &self,
        issuer: &str,
    ) -> Result<Option<ServerMetadata>, CredentialError> {
        let base = Url::parse(issuer)
            .ok()
            .filter(allowed_url)
            .ok_or_else(|| self.unavailable("the authorization server is not an https URL"))?;
        let has_path = !base.path().trim_end_matches('/').is_empty();
        let candidates = if has_path {
            vec![
                inserted(&base, "oauth-authorization-server"),
                inserted(&base, "openid-configuration"),
                appended(&base, "openid-configuration"),
            ]
        } else {
            vec![
                inserted(&base, "oauth-authorization-server"),
                inserted(&base, "openid-configuration"),
            ]
        };
        for candidate in candidates {
            let Some(meta) =
                get_json::<ServerMetadata>(self.http, &candidate, self.upstream, self.timeout)
                    .await?
            else {
                continue;
            };
            if !same_identifier(&meta.issuer, issuer) {
                return Err(
                    self.unavailable("the authorization server metadata names another issuer")
                );
            }
            for endpoint in [
                Some(&meta.authorization_endpoint),
                Some(&meta.token_endpoint),
                meta.registration_endpoint.as_ref(),
                meta.revocation_endpoint.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                if !allowed_url(endpoint) {
                    return Err(self.unavailable(
                        "the authorization server metadata has a non-https endpoint",
                    ));
                }
            }
            return Ok(Some(meta));
        }
        Ok(None)
    }
}

/// MCP 2025-03-26 servers without metadata: the authorization base URL is the upstream's
/// origin, with the default endpoint paths.
pub(crate) fn legacy_default_metadata(url: &Url) -> ServerMetadata {
    let at = |path: &str| {
        let mut u = url.clone();
        u.set_path(path);
        u.set_query(None);
        u
    };
    ServerMetadata {
        issuer: url.origin().ascii_serialization(),
        authorization_endpoint: at("/authorize"),
        token_endpoint: at("/token"),
        registration_endpoint: Some(at("/register")),
        revocation_endpoint: None,
        scopes_supported: None,
        code_challenge_methods_supported: Some(vec!["S256".into()]),
        token_endpoint_auth_methods_supported: None,
        grant_types_supported: None,
        client_id_metadata_document_supported: false,
        authorization_response_iss_parameter_supported: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let c = Challenge::parse(
            r#"Bearer error="insufficient_scope", scope="a b", resource_metadata="https://x/.well-known/oauth-protected-resource/mcp""#,
        )
        .unwrap_or_default();
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(c.scope.as_deref(), Some("a b"));
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://x/.well-known/oauth-protected-resource/mcp")
        );
        let other = Challenge::parse(r#"Basic realm="x", Bearer scope=read"#).unwrap_or_default();
        assert_eq!(other.scope.as_deref(), Some("read"));
        assert!(Challenge::parse(r#"Basic realm="bearer""#).is_none());
        let escaped = Challenge::parse(r#"Bearer scope="a\"b""#).unwrap_or_default();
        assert_eq!(escaped.scope.as_deref(), Some("a\"b"));
    }

    #[test]
    fn resource_coverage_is_by_origin_and_path_segments() {
        let up = Url::parse("https://api.example/mcp").unwrap_or_else(|e| panic!("{e}"));
        assert!(covers("https://api.example", &up));
        assert!(covers("https://api.example/mcp", &up));
        assert!(!covers("https://api.example/mc", &up));
        assert!(!covers("https://other.example/mcp", &up));
        assert!(!covers("https://api.example/other", &up));
    }

    #[test]
    fn well_known_uris_insert_and_append_the_path() {
        let issuer = Url::parse("https://as.example/tenant1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            inserted(&issuer, "oauth-authorization-server").as_str(),
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            appended(&issuer, "openid-configuration").as_str(),
            "https://as.example/tenant1/.well-known/openid-configuration"
        );
    }
}
