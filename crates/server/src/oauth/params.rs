//! Request parameters the OAuth way: every parameter at most once (RFC 6749 §3.1, §3.2), and
//! client authentication by HTTP Basic or the request body.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;

/// Parameters of a query string or form body. A repeated parameter is an error.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses; a repeated parameter or a control character (a NUL in `client_id`, say) is
    /// an error, whether the parameters came straight from the request or nested in another
    /// (a consent form's `request`, a sign-in's `return_to`).
    pub fn parse(encoded: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(encoded.as_bytes()) {
            if crate::control_chars::in_line(&k) || crate::control_chars::in_line(&v) {
                return Err(format!("parameter {k} contains a control character"));
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(format!("parameter {k} is repeated"));
            }
        }
        Ok(Self(map))
    }

    /// A parameter; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Who the client says it is, and the secret it proved that with (if any).
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub via_basic: bool,
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1, form-encoded parts) or
/// `client_id`/`client_secret` in the body. Both at once is an error.
pub fn client_credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<Option<ClientCredentials>, String> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
    if let Some(encoded) = basic {
        if params.get("client_secret").is_some() {
            return Err("use one client authentication method, not two".into());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "malformed Basic credentials".to_string())?;
        let decoded = String::from_utf8(decoded).map_err(|_| "malformed Basic credentials")?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or("malformed Basic credentials")?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let client_id = decode(id);
        if let Some(body_id) = params.get("client_id")
            && body_id != client_id
        {
            return Err("client_id differs from the authenticated client".into());
        }
        return Ok(Some(ClientCredentials {
            client_id,
            secret: Some(decode(secret)),
            via_basic: true,
        }));
    }
    Ok(params.get("client_id").map(|id| ClientCredentials {
        client_id: id.to_owned(),
        secret: params.get("client_secret").map(String::from),
        via_basic: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Params::parse("a=1&b=2").is_ok());
        assert!(Params::parse("a=1&a=1").is_err());
        assert!(Params::parse("client_id=a%00b").is_err());
        assert_eq!(Params::parse("a=").unwrap().get("a"), None);
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let creds = base64::engine::general_purpose::STANDARD.encode("my%20client:s%3Acret");
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {creds}").parse().unwrap(),
        );
        let c = client_credentials(&h, &Params::default()).unwrap().unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.secret.as_deref()),
            ("my client", Some("s:cret"))
        );
        let both = Params::parse("client_secret=x").unwrap();
        assert!(client_credentials(&h, &both).is_err());
    }
}
