#![doc = include_str!("../README.md")]

use std::sync::Arc;

use mcpgate_core::{
    Capabilities, FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings,
    RefreshBehaviour, TokenBodyFormat,
};
use mcpgate_provider_kit::{build_pending, parse_url};
use serde::Deserialize;

/// The descriptor the `mcpgate-providers` facade lists under `feature = "google"`.
pub const DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    kind: "google",
    feature: "google",
    display_name: "Google",
    build,
};

/// The `options` table of a `kind = "google"` provider entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Override of the accounts base URL (tests point it at a local fake).
    pub base_url: Option<String>,
    /// Only accept accounts of this Workspace domain (`hd`).
    pub hosted_domain: Option<String>,
}

fn capabilities() -> Capabilities {
    Capabilities {
        token_body: TokenBodyFormat::Form,
        pkce: true,
        refresh: RefreshBehaviour::Static,
        expiry_known: true,
        errors_in_200: false,
        userinfo_needs_openid: true,
    }
}

fn validate(options: &Options) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(
        options
            .base_url
            .as_deref()
            .and_then(|url| parse_url("options.base_url", url).err()),
    );
    errors
}

fn build(settings: &ProviderSettings) -> Result<Arc<dyn IdentityProvider>, Vec<FieldError>> {
    build_pending(
        settings,
        DESCRIPTOR.kind,
        DESCRIPTOR.display_name,
        capabilities(),
        validate,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: serde_json::Value) -> ProviderSettings {
        ProviderSettings {
            id: "google".into(),
            kind: "google".into(),
            client_id: "client".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn builds_from_valid_options() {
        let provider = (DESCRIPTOR.build)(&settings(serde_json::json!({})));
        assert_eq!(provider.map(|p| p.kind()).ok(), Some("google"));
    }

    #[test]
    fn rejects_unknown_options_and_bad_urls() {
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "nope": 1 }))).err();
        assert_eq!(err.map(|e| e[0].path.clone()), Some("options".to_owned()));
        let mut options = serde_json::json!({});
        options["base_url"] = "http://idp.example.com".into();
        let err = (DESCRIPTOR.build)(&settings(options)).err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.base_url".to_owned())
        );
    }
}
