#![doc = include_str!("../README.md")]

mod provider;
mod roles;

use std::sync::Arc;

use mcpgate_core::{
    Capabilities, FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings,
    RefreshBehaviour, TokenBodyFormat,
};
use mcpgate_provider_kit::{TokenAuthMethod, parse_url};
use serde::Deserialize;

pub use provider::KeycloakProvider;
pub use roles::{client_roles, realm_roles};

/// The descriptor the `mcpgate-providers` facade lists under `feature = "keycloak"`.
pub const DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    kind: "keycloak",
    feature: "keycloak",
    display_name: "Keycloak",
    build,
};

/// The `options` table of a `kind = "keycloak"` provider entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The Keycloak base URL, including a legacy `/auth` prefix if the server has one
    /// (Keycloak 16 and older).
    pub server_url: String,
    /// The realm name.
    pub realm: String,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub token_auth: TokenAuthMethod,
    /// Sent as `kc_idp_hint` to skip Keycloak's own login page for a brokered provider.
    #[serde(default)]
    pub idp_hint: Option<String>,
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
    errors.extend(parse_url("options.server_url", &options.server_url).err());
    if options.realm.trim().is_empty() || options.realm.contains('/') {
        errors.push(FieldError::new(
            "options.realm",
            "must be a realm name without '/'",
        ));
    }
    errors
}

fn build(settings: &ProviderSettings) -> Result<Arc<dyn IdentityProvider>, Vec<FieldError>> {
    let provider = KeycloakProvider::from_settings(settings)?;
    Ok(Arc::new(provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: serde_json::Value) -> ProviderSettings {
        ProviderSettings {
            id: "keycloak".into(),
            kind: "keycloak".into(),
            client_id: "client".into(),
            options: options.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn builds_from_valid_options() {
        let provider = (DESCRIPTOR.build)(&settings(
            serde_json::json!({ "server_url": "https://idp.example.com", "realm": "corp" }),
        ));
        assert_eq!(provider.map(|p| p.kind()).ok(), Some("keycloak"));
    }

    #[test]
    fn rejects_unknown_options_and_bad_urls() {
        let err = (DESCRIPTOR.build)(&settings(serde_json::json!({ "nope": 1 }))).err();
        assert_eq!(err.map(|e| e[0].path.clone()), Some("options".to_owned()));
        let mut options =
            serde_json::json!({ "server_url": "https://idp.example.com", "realm": "corp" });
        options["server_url"] = "http://idp.example.com".into();
        let err = (DESCRIPTOR.build)(&settings(options)).err();
        assert_eq!(
            err.map(|e| e[0].path.clone()),
            Some("options.server_url".to_owned())
        );
    }

    #[test]
    fn endpoints_follow_the_realm_with_or_without_the_legacy_prefix() {
        for (server, issuer) in [
            (
                "https://sso.example.com",
                "https://sso.example.com/realms/corp",
            ),
            (
                "https://sso.example.com/",
                "https://sso.example.com/realms/corp",
            ),
            (
                "https://sso.example.com/auth",
                "https://sso.example.com/auth/realms/corp",
            ),
        ] {
            let p = KeycloakProvider::from_settings(&settings(
                serde_json::json!({ "server_url": server, "realm": "corp" }),
            ));
            let p = p.ok();
            assert_eq!(p.as_ref().map(|p| p.issuer()), Some(issuer));
            let token = p.map(|p| p.endpoints().token.to_string());
            assert_eq!(
                token.as_deref(),
                Some(format!("{issuer}/protocol/openid-connect/token").as_str())
            );
        }
    }
}
