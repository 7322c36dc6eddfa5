//! The per-user kinds: `user_oauth` (the user's token at the upstream's own authorization
//! server) and `user_secret` (an API key the user enters on mcpgate's page).

use mcpgate_core::{FieldError, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::checks::{check_nonempty, check_url};
use super::{ClientAuth, ClientConfig, default_header, default_scheme, default_skew};

/// Longest `user_secret` value accepted from the connect page.
pub const MAX_USER_SECRET_LEN: usize = 8192;

/// How mcpgate gets a client id at the upstream's authorization server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// `client_id` when set; else a Client ID Metadata Document when the authorization server
    /// supports them and mcpgate serves one; else Dynamic Client Registration (RFC 7591).
    #[default]
    Auto,
    /// The configured `client_id` (and secret), registered by hand at the upstream.
    PreRegistered,
    /// RFC 7591 at the authorization server's `registration_endpoint`.
    Dynamic,
    /// The URL of the Client ID Metadata Document mcpgate serves is the client id.
    MetadataDocument,
}

/// `kind = "user_oauth"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserOAuthConfig {
    /// The name users see on the connect page and in the elicitation message (default: the
    /// upstream's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub registration: Registration,
    /// The authorization server's issuer; unset: discovered from the upstream's 401
    /// (RFC 9728 protected-resource metadata, then RFC 8414 / OpenID Connect metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<Url>,
    /// A pre-registered client (with `registration = "auto"` or `"pre_registered"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    /// An environment variable holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// The scopes to ask for; unset: the `scope` of the upstream's `WWW-Authenticate`
    /// challenge, else the protected-resource metadata's `scopes_supported`, else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The header the token goes in (default `authorization`).
    #[serde(default = "default_header")]
    pub header: String,
    /// Written before the token (default `Bearer`); empty: the bare token.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Longest wait for each call to the upstream's authorization server. Unset: the
    /// upstream's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// A token is refreshed this long before it expires.
    #[serde(default = "default_skew")]
    pub expiry_skew_secs: u64,
}

impl UserOAuthConfig {
    pub fn client(&self) -> ClientConfig {
        ClientConfig {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_secret_file: self.client_secret_file.clone(),
            client_secret_env: self.client_secret_env.clone(),
            client_auth: self.client_auth,
        }
    }

    /// The configured client: id and, when one of the secret fields is set, the secret.
    pub(crate) fn preregistered(
        &self,
        path: &str,
    ) -> Result<Option<(String, Option<SecretString>)>, FieldError> {
        let Some(id) = &self.client_id else {
            return Ok(None);
        };
        let any_secret = self.client_secret.is_some()
            || self.client_secret_file.is_some()
            || self.client_secret_env.is_some();
        let secret = if any_secret {
            Some(self.client().secret(path)?)
        } else {
            None
        };
        Ok(Some((id.clone(), secret)))
    }

    pub(crate) fn validate(&self, path: &str, errors: &mut Vec<FieldError>) {
        let at = |field: &str| format!("{path}.{field}");
        if let Some(name) = &self.display_name {
            check_nonempty(name, &at("display_name"), errors);
        }
        if let Some(url) = &self.authorization_server {
            check_url(url, &at("authorization_server"), errors);
        }
        match (&self.client_id, self.registration) {
            (None, Registration::PreRegistered) => errors.push(FieldError::new(
                at("client_id"),
                "registration = \"pre_registered\" needs the client_id",
            )),
            (Some(_), Registration::Dynamic | Registration::MetadataDocument) => {
                errors.push(FieldError::new(
                    at("client_id"),
                    "a client_id is only used with registration = \"auto\" or \"pre_registered\"",
                ))
            }
            (Some(id), _) => check_nonempty(id, &at("client_id"), errors),
            (None, _) => {}
        }
        match self.preregistered(path) {
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        if self.client_id.is_none()
            && (self.client_secret.is_some()
                || self.client_secret_file.is_some()
                || self.client_secret_env.is_some())
        {
            errors.push(FieldError::new(
                at("client_id"),
                "a client secret is set without the client_id it belongs to",
            ));
        }
        if let Some(scopes) = &self.scopes {
            for (i, s) in scopes.iter().enumerate() {
                if s.is_empty() || s.contains(char::is_whitespace) {
                    errors.push(FieldError::new(
                        format!("{path}.scopes[{i}]"),
                        "a scope is one non-empty word",
                    ));
                }
            }
        }
        if self.timeout_ms == Some(0) {
            errors.push(FieldError::new(at("timeout_ms"), "must be > 0"));
        }
        self.token_header().validate(path, errors);
    }
}

/// `kind = "user_secret"`: a per-user API key or personal access token, entered by the user
/// on mcpgate's connect page (never through the MCP client), stored sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSecretConfig {
    /// The name users see on the connect page (default: the upstream's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// One sentence on the connect page: where the user gets the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The header the secret goes in (default `authorization`).
    #[serde(default = "default_header")]
    pub header: String,
    /// Written before the secret (default `Bearer`); empty: the bare value.
    #[serde(default = "default_scheme")]
    pub scheme: String,
}

impl UserSecretConfig {
    pub(crate) fn validate(&self, path: &str, errors: &mut Vec<FieldError>) {
        if let Some(name) = &self.display_name {
            check_nonempty(name, &format!("{path}.display_name"), errors);
        }
        self.token_header().validate(path, errors);
    }
}
