//! Outgoing OAuth calls: the HTTP client, token requests (RFC 6749 §4.4, RFC 8693) and the
//! classification of their answers into [`CredentialError`].

use std::sync::Once;
use std::time::Duration;

use mcpgate_core::SecretString;
use serde::Deserialize;
use url::Url;

use crate::CredentialError;
use crate::config::{ClientAuth, ClientConfig};

/// Connect timeout of the default client; each call also has the kind's own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const USER_AGENT: &str = concat!("mcpgate/", env!("CARGO_PKG_VERSION"));

/// Installs rustls' ring provider once: the server builds reqwest with `rustls-no-provider`
/// (STACK.md), whose `Client::build()` panics without a process-wide provider.
fn ensure_tls_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only when another provider is installed already, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client for token endpoints: pooled, never following redirects (a token endpoint that
/// redirects is misconfigured, and following it could replay the client secret elsewhere).
pub fn default_client() -> Result<reqwest::Client, String> {
    ensure_tls_provider();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// mcpgate's client at an authorization server, secret loaded.
#[derive(Debug, Clone)]
pub(crate) struct OAuthClient {
    pub(crate) id: String,
    pub(crate) secret: SecretString,
    pub(crate) auth: ClientAuth,
}

impl OAuthClient {
    pub(crate) fn load(
        config: &ClientConfig,
        path: &str,
    ) -> Result<Option<Self>, mcpgate_core::FieldError> {
        let Some(id) = &config.client_id else {
            return Ok(None);
        };
        Ok(Some(Self {
            id: id.clone(),
            secret: config.secret(path)?,
            auth: config.client_auth,
        }))
    }
}

/// A successful token response: only what mcpgate uses.
pub(crate) struct IssuedToken {
    pub(crate) access_token: SecretString,
    pub(crate) expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<SecretString>,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: Option<u64>,
    error: Option<String>,
}

/// `expires_in` as a number or a numeric string (both occur in the wild).
fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// An OAuth `error` code as it may be shown: RFC 6749 §5.2 limits it to printable ASCII;
/// anything longer or odd is not echoed (it could carry input back).
pub(crate) fn error_code(code: &str) -> String {
    if !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        code.to_owned()
    } else {
        "unrecognised_error".into()
    }
}

/// Maps a reqwest failure; never includes the request body (which holds secrets).
pub(crate) fn send_error(upstream: &str, timeout: Duration, e: &reqwest::Error) -> CredentialError {
    if e.is_timeout() {
        CredentialError::timeout(upstream, timeout)
    } else if e.is_connect() {
        CredentialError::unavailable(upstream, "cannot connect to the authorization server")
    } else {
        CredentialError::unavailable(upstream, "the authorization server request failed")
    }
}

/// POSTs a token request form and reads the answer. `timeout` bounds the whole call.
pub(crate) async fn token_request(
    http: &reqwest::Client,
    endpoint: &Url,
    client: Option<&OAuthClient>,
    mut form: Vec<(&'static str, String)>,
    upstream: &str,
    timeout: Duration,
) -> Result<IssuedToken, CredentialError> {
    let mut request = http
        .post(endpoint.clone())
        .timeout(timeout)
        .header(http::header::ACCEPT, "application/json");
    if let Some(c) = client {
        match c.auth {
            ClientAuth::ClientSecretBasic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(enc(&c.id), Some(enc(c.secret.expose())));
            }
            ClientAuth::ClientSecretPost => {
                form.push(("client_id", c.id.clone()));
                form.push(("client_secret", c.secret.expose().to_owned()));
            }
        }
    }
    let response = request
        .form(&form)
        .send()
        .await
        .map_err(|e| send_error(upstream, timeout, &e))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| send_error(upstream, timeout, &e))?;
    let body: Option<TokenBody> = serde_json::from_slice(&bytes).ok();
    if let Some(TokenBody {
        error: Some(code), ..
    }) = &body
    {
        return Err(CredentialError::Refused {
            upstream: upstream.to_owned(),
            error: error_code(code),
        });
    }
    if !status.is_success() {
        return Err(CredentialError::unavailable(
            upstream,
            format!("the authorization server answered HTTP {}", status.as_u16()),
        ));
    }
    match body {
        Some(TokenBody {
            access_token: Some(token),
            expires_in,
            ..
        }) if !token.is_empty() => Ok(IssuedToken {
            access_token: token,
            expires_in,
        }),
        _ => Err(CredentialError::unavailable(
            upstream,
            "the token response has no access_token",
        )),
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: Option<String>,
    token_endpoint: Option<Url>,
}

/// RFC 8414 §3 (the well-known segment goes between host and path), then OpenID Connect
/// Discovery; the document's `issuer` must equal the configured one.
pub(crate) async fn discover_token_endpoint(
    http: &reqwest::Client,
    issuer: &Url,
    upstream: &str,
    timeout: Duration,
) -> Result<Url, CredentialError> {
    let path = issuer.path().trim_end_matches('/');
    let mut rfc8414 = issuer.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    let wanted = issuer.as_str().trim_end_matches('/');
    for url in [rfc8414, oidc] {
        let response = http
            .get(url)
            .timeout(timeout)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| send_error(upstream, timeout, &e))?;
        if !response.status().is_success() {
            continue;
        }
        let Ok(meta) = response.json::<Metadata>().await else {
            continue;
        };
        if meta.issuer.as_deref().map(|i| i.trim_end_matches('/')) != Some(wanted) {
            return Err(CredentialError::unavailable(
                upstream,
                "the authorization server metadata names another issuer",
            ));
        }
        if let Some(endpoint) = meta.token_endpoint {
            return Ok(endpoint);
        }
    }
    Err(CredentialError::unavailable(
        upstream,
        "no authorization server metadata with a token_endpoint at the issuer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_error_codes_are_not_echoed() {
        assert_eq!(error_code("invalid_grant"), "invalid_grant");
        assert_eq!(error_code("<script>"), "unrecognised_error");
        assert_eq!(error_code(&"a".repeat(65)), "unrecognised_error");
    }
}
