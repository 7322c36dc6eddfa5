//! Strict parsing of a provider entry's settings, reporting every problem with its key path.

use mcpgate_core::{FieldError, ProviderSettings};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

/// Parses the kind-specific `options` table into the provider's own struct (which should be
/// `deny_unknown_fields`), so an unknown or mistyped option is a config error naming the key.
pub fn parse_options<T: DeserializeOwned>(settings: &ProviderSettings) -> Result<T, FieldError> {
    let value = serde_json::Value::Object(settings.options.clone());
    serde_json::from_value(value).map_err(|e| FieldError::new("options", e.to_string()))
}

/// The `token_auth` option: how the client secret reaches the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// HTTP Basic (the method every OAuth server must support, RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl TokenAuthMethod {
    /// The client authentication to use; a client without a secret is public.
    pub fn client_auth(self, has_secret: bool) -> crate::ClientAuth {
        match (self, has_secret) {
            (_, false) => crate::ClientAuth::None,
            (Self::ClientSecretBasic, true) => crate::ClientAuth::Basic,
            (Self::ClientSecretPost, true) => crate::ClientAuth::Post,
        }
    }
}

/// The most clock leeway an id token may be given: beyond this an expired token is simply
/// accepted.
const MAX_ID_TOKEN_LEEWAY_SECS: u64 = 300;

/// The `id_token_leeway_secs` option of the OpenID Connect providers: how long after its
/// `exp` an id token is still accepted (default [`crate::ID_TOKEN_LEEWAY`], at most 300 s).
pub fn id_token_leeway(secs: Option<u64>) -> Result<std::time::Duration, FieldError> {
    match secs {
        None => Ok(crate::ID_TOKEN_LEEWAY),
        Some(s) if s <= MAX_ID_TOKEN_LEEWAY_SECS => Ok(std::time::Duration::from_secs(s)),
        Some(_) => Err(FieldError::new(
            "options.id_token_leeway_secs",
            format!("must be at most {MAX_ID_TOKEN_LEEWAY_SECS}"),
        )),
    }
}

/// Checks every provider needs: a URL-safe id and a client id.
pub fn check_common(settings: &ProviderSettings) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let id_ok = !settings.id.is_empty()
        && settings
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !id_ok {
        errors.push(FieldError::new(
            "id",
            "must be a non-empty slug of lowercase letters, digits, '-' or '_'",
        ));
    }
    if settings.client_id.trim().is_empty() {
        errors.push(FieldError::new("client_id", "must not be empty"));
    }
    if settings.client_secret.is_some() && settings.client_secret_file.is_some() {
        errors.push(FieldError::new(
            "client_secret_file",
            "set either client_secret or client_secret_file, not both",
        ));
    }
    errors
}

/// Parses an absolute http(s) URL option. Plain http is allowed only for loopback hosts, where
/// test and development identity providers live.
pub fn parse_url(path: &str, value: &str) -> Result<Url, FieldError> {
    let url = Url::parse(value).map_err(|e| FieldError::new(path, format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(FieldError::new(
            path,
            "must use https (plain http is allowed only for loopback addresses)",
        )),
        other => Err(FieldError::new(
            path,
            format!("scheme {other:?} is not http(s)"),
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_on_loopback() {
        assert!(parse_url("u", "http://127.0.0.1:8080/realms/x").is_ok());
        assert!(parse_url("u", "http://localhost/x").is_ok());
        assert!(parse_url("u", "https://idp.example.com").is_ok());
        let err = parse_url("u", "http://idp.example.com").err();
        assert_eq!(err.map(|e| e.path), Some("u".to_owned()));
        assert!(parse_url("u", "ftp://x").is_err());
        assert!(parse_url("u", "not a url").is_err());
    }

    #[test]
    fn common_checks_report_everything() {
        let settings = ProviderSettings {
            id: "Bad Id".into(),
            client_id: " ".into(),
            ..Default::default()
        };
        let paths: Vec<_> = check_common(&settings)
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["id", "client_id"]);
    }
}
