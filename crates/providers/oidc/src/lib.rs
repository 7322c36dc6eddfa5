#![doc = include_str!("../README.md")]

use std::sync::Arc;

use mcpgate_core::{
    Capabilities, FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings,
    RefreshBehaviour, TokenBodyFormat,
};
use mcpgate_provider_kit::{TokenAuthMethod, parse_url};
use serde::Deserialize;

mod provider;

pub use provider::OidcProvider;

/// The descriptor the `mcpgate-providers` facade lists under `feature = "oidc"`.
pub const DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    kind: "oidc",
    feature: "oidc",
    display_name: "OpenID Connect",
    build,
};

/// The `options` table of a `kind = "oidc"` provider entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The issuer URL; discovery is read from `{issuer}/.well-known/openid-configuration`,
    /// whose `issuer` must equal this value exactly.
    pub issuer: String,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub token_auth: TokenAuthMethod,
    /// Sent as `audience` in the authorization request (Auth0, Okta custom servers).
    #[serde(default)]
    pub audience: Option<String>,
    /// Extra authorization-request parameters (e.g. `prompt = "consent"`).
    #[serde(default)]
    pub authorize_params: std::collections::BTreeMap<String, String>,
    /// Clock leeway for id tokens: accepted up to this many seconds after their `exp`
    /// (default 60, at most 300).
    #[serde(default)]
    pub id_token_leeway_secs: Option<u64>,
}

fn capabilities() -> Capabilities {
    Capabilities {
        token_body: TokenBodyFormat::Form,
        pkce: true,
        refresh: RefreshBehaviour::Rotating,
        expiry_known: true,
        errors_in_200: false,
        userinfo_needs_openid: true,
    }
}

fn validate(options: &Options) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(parse_url("options.issuer", &options.issuer).err());
    errors
}

fn build(settings: &ProviderSettings) -> Result<Arc<dyn IdentityProvider>, Vec<FieldError>> {
    Ok(Arc::new(OidcProvider::from_settings(settings)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: serde_json::Value) -> ProviderSettings {
        ProviderSettings {
            id: "oidc".into(),
            kind: "oidc".into(),
            client_id: "client".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn builds_from_valid_options() {
        let provider = (DESCRIPTOR.build)(&settings(
            serde_json::json!({ "issuer": "https://idp.example.com" }),
        ));
        assert_eq!(provider.map(|p| p.kind()).ok(), Some("oidc"));
    }

    #[test]
    fn rejects_unknown_options_and_bad_urls() {
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "nope": 1 }))).err();
        assert_eq!(err.map(|e| e[0].path.clone()), Some("options".to_owned()));
        let mut options = serde_json::json!({ "issuer": "https://idp.example.com" });
        options["issuer"] = "http://idp.example.com".into();
        let err = (DESCRIPTOR.build)(&settings(options)).err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.issuer".to_owned())
        );
    }
}
