#![doc = include_str!("../README.md")]

mod provider;

use std::sync::Arc;

use mcpgate_core::{
    Capabilities, FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings,
    RefreshBehaviour, TokenBodyFormat,
};
use mcpgate_provider_kit::parse_url;
use serde::Deserialize;

pub use provider::{GitHubProvider, groups};

/// The descriptor the `mcpgate-providers` facade lists under `feature = "github"`.
pub const DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    kind: "github",
    feature: "github",
    display_name: "GitHub",
    build,
};

/// The `options` table of a `kind = "github"` provider entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Web base URL (default `https://github.com`; GitHub Enterprise Server: `https://HOST`).
    /// The authorization and token endpoints are `{web_url}/login/oauth/{authorize,access_token}`.
    pub web_url: Option<String>,
    /// REST API base URL (default `https://api.github.com`; GHES: `https://HOST/api/v3`).
    pub api_url: Option<String>,
    /// Read the user's organizations and teams as groups `org` and `org:team` (default on;
    /// needs the `read:org` scope or the GitHub App's "Members" read permission; a 403
    /// degrades to no groups).
    #[serde(default = "yes")]
    pub groups: bool,
}

fn yes() -> bool {
    true
}

/// Scopes asked when the entry lists none (OAuth Apps; GitHub Apps ignore scopes and use
/// their permissions).
pub const DEFAULT_SCOPES: [&str; 3] = ["read:user", "user:email", "read:org"];

fn capabilities() -> Capabilities {
    Capabilities {
        token_body: TokenBodyFormat::Form,
        pkce: true,
        refresh: RefreshBehaviour::Rotating,
        expiry_known: false,
        errors_in_200: true,
        userinfo_needs_openid: false,
    }
}

fn validate(options: &Options) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(
        options
            .web_url
            .as_deref()
            .and_then(|url| parse_url("options.web_url", url).err()),
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
    Ok(Arc::new(GitHubProvider::from_settings(settings)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: serde_json::Value) -> ProviderSettings {
        ProviderSettings {
            id: "github".into(),
            kind: "github".into(),
            client_id: "client".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn builds_from_valid_options() {
        let provider = (DESCRIPTOR.build)(&settings(serde_json::json!({})));
        assert_eq!(provider.map(|p| p.kind()).ok(), Some("github"));
    }

    #[test]
    fn rejects_unknown_options_and_bad_urls() {
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "nope": 1 }))).err();
        assert_eq!(err.map(|e| e[0].path.clone()), Some("options".to_owned()));
        let mut options = serde_json::json!({});
        options["web_url"] = "http://idp.example.com".into();
        let err = (DESCRIPTOR.build)(&settings(options)).err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.web_url".to_owned())
        );
    }

    #[test]
    fn endpoints_follow_the_base_urls() {
        let p = GitHubProvider::from_settings(&settings(serde_json::json!({
            "web_url": "https://ghe.example.com", "api_url": "https://ghe.example.com/api/v3"
        })));
        let p = p.ok();
        assert_eq!(
            p.as_ref().map(|p| p.token_url().to_string()).as_deref(),
            Some("https://ghe.example.com/login/oauth/access_token")
        );
        assert_eq!(
            p.map(|p| p.api_url().to_string()).as_deref(),
            Some("https://ghe.example.com/api/v3/user")
        );
        let p = GitHubProvider::from_settings(&settings(serde_json::json!({}))).ok();
        assert_eq!(
            p.map(|p| p.api_url().to_string()).as_deref(),
            Some("https://api.github.com/user")
        );
    }
}
