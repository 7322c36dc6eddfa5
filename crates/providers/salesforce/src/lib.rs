#![doc = include_str!("../README.md")]

use std::sync::Arc;

use mcpgate_core::{
    Capabilities, FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings,
    RefreshBehaviour, TokenBodyFormat,
};
use mcpgate_provider_kit::{build_pending, parse_url};
use serde::Deserialize;

/// The descriptor the `mcpgate-providers` facade lists under `feature = "salesforce"`.
pub const DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    kind: "salesforce",
    feature: "salesforce",
    display_name: "Salesforce",
    build,
};

/// The `options` table of a `kind = "salesforce"` provider entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Login host (default `https://login.salesforce.com`; sandbox `https://test.salesforce.com`; or a My Domain).
    pub login_url: Option<String>,
    /// Assumed access-token lifetime, since Salesforce sends no `expires_in` (default 7200).
    pub token_ttl_secs: Option<u64>,
}

fn capabilities() -> Capabilities {
    Capabilities {
        token_body: TokenBodyFormat::Form,
        pkce: true,
        refresh: RefreshBehaviour::Static,
        expiry_known: false,
        errors_in_200: false,
        userinfo_needs_openid: false,
    }
}

fn validate(options: &Options) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(
        options
            .login_url
            .as_deref()
            .and_then(|url| parse_url("options.login_url", url).err()),
    );
    if options.token_ttl_secs == Some(0) {
        errors.push(FieldError::new(
            "options.token_ttl_secs",
            "must be at least 1",
        ));
    }
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
            id: "salesforce".into(),
            kind: "salesforce".into(),
            client_id: "client".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn builds_from_valid_options() {
        let provider = (DESCRIPTOR.build)(&settings(serde_json::json!({})));
        assert_eq!(provider.map(|p| p.kind()).ok(), Some("salesforce"));
    }

    #[test]
    fn rejects_unknown_options_and_bad_urls() {
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "nope": 1 }))).err();
        assert_eq!(err.map(|e| e[0].path.clone()), Some("options".to_owned()));
        let mut options = serde_json::json!({});
        options["login_url"] = "http://idp.example.com".into();
        let err = (DESCRIPTOR.build)(&settings(options)).err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.login_url".to_owned())
        );
    }
}
