#![doc = include_str!("../README.md")]

mod provider;

use std::sync::Arc;

use mcpgate_core::{
    Capabilities, FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings,
    RefreshBehaviour, TokenBodyFormat,
};
use mcpgate_provider_kit::parse_url;
use serde::Deserialize;

pub use provider::AtlassianProvider;

/// The descriptor the `mcpgate-providers` facade lists under `feature = "atlassian"`.
pub const DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    kind: "atlassian",
    feature: "atlassian",
    display_name: "Atlassian",
    build,
};

/// The `options` table of a `kind = "atlassian"` provider entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Authorization server base (default `https://auth.atlassian.com`): `{auth_url}/authorize`
    /// and `{auth_url}/oauth/token`.
    pub auth_url: Option<String>,
    /// API base (default `https://api.atlassian.com`): `{api_url}/me` and
    /// `{api_url}/oauth/token/accessible-resources`.
    pub api_url: Option<String>,
    /// Send `prompt=consent` (default `true`, as Atlassian's documentation shows).
    #[serde(default = "yes")]
    pub prompt_consent: bool,
    /// Send a PKCE S256 challenge (default `false`: PKCE is not documented for 3LO).
    #[serde(default)]
    pub pkce: bool,
}

fn yes() -> bool {
    true
}

/// Scopes asked when the entry lists none. `offline_access` is always added (no refresh
/// token without it).
pub const DEFAULT_SCOPES: [&str; 1] = ["read:me"];

fn capabilities(pkce: bool) -> Capabilities {
    Capabilities {
        token_body: TokenBodyFormat::Json,
        pkce,
        refresh: RefreshBehaviour::Rotating,
        expiry_known: true,
        errors_in_200: false,
        userinfo_needs_openid: false,
    }
}

fn validate(options: &Options) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(
        options
            .auth_url
            .as_deref()
            .and_then(|url| parse_url("options.auth_url", url).err()),
    );
    errors.extend(
        options
            .api_url
            .as_deref()
            .and_then(|url| parse_url("options.api_url", url).err()),
    );
    errors
}

fn build(settings: &ProviderSettings) -> Result<Arc<dyn IdentityProvider>, Vec<FieldError>> {
    Ok(Arc::new(AtlassianProvider::from_settings(settings)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: serde_json::Value) -> ProviderSettings {
        ProviderSettings {
            id: "atlassian".into(),
            kind: "atlassian".into(),
            client_id: "client".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn builds_from_valid_options() {
        let provider = (DESCRIPTOR.build)(&settings(serde_json::json!({})));
        assert_eq!(provider.map(|p| p.kind()).ok(), Some("atlassian"));
    }

    #[test]
    fn rejects_unknown_options_and_bad_urls() {
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "nope": 1 }))).err();
        assert_eq!(err.map(|e| e[0].path.clone()), Some("options".to_owned()));
        let err = (DESCRIPTOR.build)(&settings(
            serde_json::json!({ "auth_url": "http://auth.example.com" }),
        ))
        .err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.auth_url".to_owned())
        );
    }
}
