#![doc = include_str!("../README.md")]

mod provider;

use std::sync::Arc;

use mcpgate_core::{
    Capabilities, FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings,
    RefreshBehaviour, TokenBodyFormat,
};
use mcpgate_provider_kit::{TokenAuthMethod, parse_url};
use serde::Deserialize;

pub use provider::GoogleProvider;

/// The descriptor the `mcpgate-providers` facade lists under `feature = "google"`.
pub const DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    kind: "google",
    feature: "google",
    display_name: "Google",
    build,
};

/// Google's issuer; its discovery document names every endpoint.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The `options` table of a `kind = "google"` provider entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The issuer whose discovery document gives the endpoints (default
    /// `https://accounts.google.com`). Tests and sandboxes point it at a stand-in.
    #[serde(default = "google_issuer")]
    pub issuer: String,
    /// Send `prompt=consent` with every sign-in (default `true`). Google returns a refresh
    /// token only on the first consent unless consent is asked again; the plugin cannot know
    /// whether the gateway still holds one, so this is an option rather than automatic.
    #[serde(default = "yes")]
    pub prompt_consent: bool,
    /// Accept only accounts of these Google Workspace domains (the verified `hd` claim),
    /// checked at sign-in and whenever the user is read. Empty: any account. With exactly
    /// one domain, it is also sent as the `hd` hint.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub token_auth: TokenAuthMethod,
    /// Clock leeway for id tokens: accepted up to this many seconds after their `exp`
    /// (default 60, at most 300).
    #[serde(default)]
    pub id_token_leeway_secs: Option<u64>,
}

fn google_issuer() -> String {
    GOOGLE_ISSUER.to_owned()
}

fn yes() -> bool {
    true
}

/// Scopes asked when the entry lists none (`openid` is always added).
pub const DEFAULT_SCOPES: [&str; 2] = ["email", "profile"];

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
    errors.extend(parse_url("options.issuer", &options.issuer).err());
    for (i, domain) in options.allowed_domains.iter().enumerate() {
        if domain.trim().is_empty() || domain.contains(['/', '@', ' ']) {
            errors.push(FieldError::new(
                format!("options.allowed_domains[{i}]"),
                "must be a domain name such as example.com",
            ));
        }
    }
    errors
}

fn build(settings: &ProviderSettings) -> Result<Arc<dyn IdentityProvider>, Vec<FieldError>> {
    Ok(Arc::new(GoogleProvider::from_settings(settings)?))
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
    fn rejects_unknown_options_bad_urls_and_bad_domains() {
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "nope": 1 }))).err();
        assert_eq!(err.map(|e| e[0].path.clone()), Some("options".to_owned()));
        let err = (DESCRIPTOR.build)(&settings(
            serde_json::json!({ "issuer": "http://accounts.example.com" }),
        ))
        .err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.issuer".to_owned())
        );
        let err = (DESCRIPTOR.build)(&settings(
            serde_json::json!({ "allowed_domains": ["ok.example", "a@b"] }),
        ))
        .err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.allowed_domains[1]".to_owned())
        );
    }
}
