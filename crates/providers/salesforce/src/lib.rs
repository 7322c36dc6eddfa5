#![doc = include_str!("../README.md")]

mod provider;

use std::sync::Arc;

use mcpgate_core::{
    Capabilities, FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings,
    RefreshBehaviour, TokenBodyFormat,
};
use mcpgate_provider_kit::parse_url;
use serde::Deserialize;

pub use provider::SalesforceProvider;

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
    /// Login host (default `https://login.salesforce.com`; sandbox `https://test.salesforce.com`;
    /// or a My Domain / Experience Cloud site). Every endpoint is
    /// `{login_url}/services/oauth2/{authorize,token,userinfo,revoke}`.
    pub login_url: Option<String>,
    /// Assumed access-token lifetime, since Salesforce sends no `expires_in` (default 7200,
    /// the org default session timeout; set it to your org's or app's session timeout). The
    /// expiry is `issued_at + token_ttl_secs`; a 401 before that still leads to a refresh.
    pub token_ttl_secs: Option<u64>,
}

/// The default assumed access-token lifetime (seconds).
pub const DEFAULT_TOKEN_TTL: u64 = 7200;

/// Scopes asked when the entry lists none.
pub const DEFAULT_SCOPES: [&str; 4] = ["id", "profile", "email", "refresh_token"];

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
            "must be at least 1 second",
        ));
    }
    errors
}

fn build(settings: &ProviderSettings) -> Result<Arc<dyn IdentityProvider>, Vec<FieldError>> {
    Ok(Arc::new(SalesforceProvider::from_settings(settings)?))
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
    fn rejects_unknown_options_bad_urls_and_zero_ttl() {
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "nope": 1 }))).err();
        assert_eq!(err.map(|e| e[0].path.clone()), Some("options".to_owned()));
        let err = (DESCRIPTOR.build)(&settings(
            serde_json::json!({ "login_url": "http://login.example.com" }),
        ))
        .err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.login_url".to_owned())
        );
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "token_ttl_secs": 0 }))).err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.token_ttl_secs".to_owned())
        );
    }
}
