//! Shared checks of config values, and loading a secret from its one source.

use mcpgate_core::{FieldError, SecretString};
use url::Url;

pub(super) fn check_nonempty(value: &str, path: &str, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(path, "must not be empty"));
    }
}

pub(super) fn check_header_name(name: &str, path: &str, errors: &mut Vec<FieldError>) {
    match http::HeaderName::from_bytes(name.as_bytes()) {
        Err(_) => errors.push(FieldError::new(path, "not a valid HTTP header name")),
        Ok(h)
            if ["host", "content-length", "transfer-encoding", "connection"]
                .contains(&h.as_str()) =>
        {
            errors.push(FieldError::new(path, "mcpgate sets this header itself"))
        }
        Ok(_) => {}
    }
}

/// https, or http to a loopback host (tests, a sidecar STS).
pub(super) fn check_url(url: &Url, path: &str, errors: &mut Vec<FieldError>) {
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        errors.push(FieldError::new(
            path,
            "must be https (plain http only to a loopback address)",
        ));
    }
}

/// Reads a secret from exactly one of an inline value, a file or an environment variable.
/// Errors name the field and the file or variable, never the value.
pub(crate) fn load_secret(
    path: &str,
    inline: (&str, Option<&SecretString>),
    file: (&str, Option<&str>),
    env: (&str, Option<&str>),
) -> Result<SecretString, FieldError> {
    let set = usize::from(inline.1.is_some())
        + usize::from(file.1.is_some())
        + usize::from(env.1.is_some());
    if set != 1 {
        return Err(FieldError::new(
            path,
            format!("set exactly one of {}, {} or {}", inline.0, file.0, env.0),
        ));
    }
    let value = if let Some(v) = inline.1 {
        v.clone()
    } else if let Some(f) = file.1 {
        let text = std::fs::read_to_string(f).map_err(|e| {
            FieldError::new(
                format!("{path}.{}", file.0),
                format!("cannot read {f:?}: {e}"),
            )
        })?;
        SecretString::new(text.trim().to_owned())
    } else if let Some(var) = env.1 {
        let v = std::env::var(var).map_err(|_| {
            FieldError::new(
                format!("{path}.{}", env.0),
                format!("environment variable {var} is not set or not UTF-8"),
            )
        })?;
        SecretString::new(v.trim().to_owned())
    } else {
        SecretString::default()
    };
    if value.is_empty() {
        return Err(FieldError::new(path, "the secret is empty"));
    }
    Ok(value)
}
