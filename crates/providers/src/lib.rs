#![doc = include_str!("../README.md")]

use std::collections::BTreeMap;
use std::sync::Arc;

use mcpgate_core::{FieldError, IdentityProvider, ProviderDescriptor, ProviderSettings};

/// Every provider kind mcpgate knows, with the Cargo feature that compiles it in, whether or
/// not this build has it (so a missing one gets a helpful message).
pub const KNOWN_KINDS: &[&str] = &[
    "oidc",
    "keycloak",
    "google",
    "github",
    "atlassian",
    "salesforce",
];

/// The descriptors compiled into this build.
pub const COMPILED_IN: &[ProviderDescriptor] = &[
    #[cfg(feature = "oidc")]
    mcpgate_provider_oidc::DESCRIPTOR,
    #[cfg(feature = "keycloak")]
    mcpgate_provider_keycloak::DESCRIPTOR,
    #[cfg(feature = "google")]
    mcpgate_provider_google::DESCRIPTOR,
    #[cfg(feature = "github")]
    mcpgate_provider_github::DESCRIPTOR,
    #[cfg(feature = "atlassian")]
    mcpgate_provider_atlassian::DESCRIPTOR,
    #[cfg(feature = "salesforce")]
    mcpgate_provider_salesforce::DESCRIPTOR,
];

/// Finds the descriptor of a kind, or explains why there is none.
pub fn descriptor(kind: &str) -> Result<&'static ProviderDescriptor, String> {
    if let Some(d) = COMPILED_IN.iter().find(|d| d.kind == kind) {
        return Ok(d);
    }
    if KNOWN_KINDS.contains(&kind) {
        Err(format!(
            "provider kind {kind:?} is not compiled into this build: rebuild mcpgate with the \
             Cargo feature `{kind}` (e.g. `cargo build -p mcpgate-server --features {kind}`)"
        ))
    } else {
        Err(format!(
            "unknown provider kind {kind:?}; known kinds: {}",
            KNOWN_KINDS.join(", ")
        ))
    }
}

/// The configured identity providers, by id.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    providers: BTreeMap<String, Arc<dyn IdentityProvider>>,
}

impl Registry {
    /// Builds every configured provider, collecting every problem (paths prefixed with
    /// `providers[N].`) instead of stopping at the first.
    pub fn build(entries: &[ProviderSettings]) -> Result<Self, Vec<FieldError>> {
        let mut providers = BTreeMap::new();
        let mut errors = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let prefix = |path: &str| format!("providers[{i}].{path}");
            let descriptor = match descriptor(&entry.kind) {
                Ok(d) => d,
                Err(message) => {
                    errors.push(FieldError::new(prefix("kind"), message));
                    continue;
                }
            };
            match (descriptor.build)(entry) {
                Ok(provider) => {
                    if providers.insert(entry.id.clone(), provider).is_some() {
                        errors.push(FieldError::new(
                            prefix("id"),
                            format!("duplicate provider id {:?}", entry.id),
                        ));
                    }
                }
                Err(field_errors) => errors.extend(
                    field_errors
                        .into_iter()
                        .map(|e| FieldError::new(prefix(&e.path), e.message)),
                ),
            }
        }
        if errors.is_empty() {
            Ok(Self { providers })
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn IdentityProvider>> {
        self.providers.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn IdentityProvider>> {
        self.providers.values()
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kind_is_named() {
        let err = descriptor("myspace").err().unwrap_or_default();
        assert!(err.contains("unknown provider kind"), "{err}");
    }

    #[test]
    fn every_compiled_descriptor_is_known_and_its_feature_matches() {
        for d in COMPILED_IN {
            assert!(KNOWN_KINDS.contains(&d.kind));
            assert_eq!(d.kind, d.feature);
        }
    }

    #[cfg(not(feature = "github"))]
    #[test]
    fn missing_feature_is_named() {
        let err = descriptor("github").err().unwrap_or_default();
        assert!(err.contains("Cargo feature `github`"), "{err}");
    }

    #[cfg(feature = "keycloak")]
    #[test]
    fn registry_reports_every_entry_problem_with_its_path() {
        let entries = vec![
            ProviderSettings {
                id: "kc".into(),
                kind: "keycloak".into(),
                client_id: "".into(),
                options: serde_json::json!({"server_url": "http://sso.example.com", "realm": "r"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                ..Default::default()
            },
            ProviderSettings {
                id: "x".into(),
                kind: "myspace".into(),
                client_id: "c".into(),
                ..Default::default()
            },
        ];
        let paths: Vec<_> = Registry::build(&entries)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "providers[0].client_id",
                "providers[0].options.server_url",
                "providers[1].kind"
            ]
        );
    }
}

/// The provider examples of the repository README build with every provider compiled in.
#[cfg(all(
    test,
    feature = "oidc",
    feature = "keycloak",
    feature = "google",
    feature = "github",
    feature = "atlassian",
    feature = "salesforce"
))]
mod readme_examples {
    use super::*;

    #[test]
    fn the_readme_provider_examples_build() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### Identity providers")
            .nth(1)
            .and_then(|s| s.split("\n### ").next())
            .unwrap_or_default();
        let block = section
            .split("```toml\n")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .unwrap_or_default();
        let doc: toml::Table = toml::from_str(block).unwrap_or_default();
        let mut entries: Vec<ProviderSettings> = Vec::new();
        for entry in doc
            .get("providers")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            let mut json = serde_json::to_value(entry).unwrap_or_default();
            // The secret files of the example do not exist here.
            if let Some(o) = json.as_object_mut() {
                o.remove("client_secret_file");
                o.insert("client_secret".into(), "s".into());
            }
            match serde_json::from_value(json) {
                Ok(settings) => entries.push(settings),
                Err(e) => panic!("README provider entry does not parse: {e}"),
            }
        }
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "keycloak",
                "oidc",
                "google",
                "github",
                "atlassian",
                "salesforce"
            ]
        );
        if let Err(errors) = Registry::build(&entries) {
            panic!("README provider examples do not build: {errors:?}");
        }
    }
}
