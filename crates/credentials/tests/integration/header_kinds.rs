//! `static` (file, env, sealed) and `login_token`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use mcpgate_credentials::{CredentialError, Dependencies};

use super::fakes::{FakeProviderTokens, FakeSealed};
use super::{build, header, resolve};

#[tokio::test]
async fn static_from_a_file_is_trimmed_and_sensitive() {
    let mut file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    writeln!(file, "  key-from-file-123  ").unwrap_or_else(|e| panic!("{e}"));
    let path = file.path().display().to_string();
    let source = build(
        "files",
        &format!(
            r#"credentials = {{ kind = "static", header = "X-Api-Key", value_file = {path:?} }}"#
        ),
        &Dependencies::default(),
    );
    let snapshot = resolve(source.as_ref(), "alice")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        header(&snapshot, "x-api-key").as_deref(),
        Some("key-from-file-123")
    );
    assert!(snapshot.headers().all(|(_, v)| v.is_sensitive()));
    for shown in [format!("{snapshot:?}"), format!("{source:?}")] {
        assert!(!shown.contains("key-from-file-123"), "{shown}");
    }
}

#[tokio::test]
async fn static_from_the_environment() {
    // Cargo sets CARGO_PKG_NAME for the test process (edition 2024 makes set_var unsafe).
    let source = build(
        "env",
        r#"credentials = { kind = "static", value_env = "CARGO_PKG_NAME" }"#,
        &Dependencies::default(),
    );
    let snapshot = resolve(source.as_ref(), "alice")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        header(&snapshot, "authorization").as_deref(),
        Some("mcpgate-credentials")
    );
}

#[tokio::test]
async fn static_sealed_comes_from_the_server_store() {
    let deps = Dependencies {
        sealed_secrets: Some(Arc::new(FakeSealed(HashMap::from([(
            "sealed-one".to_owned(),
            "Bearer opened-value".to_owned(),
        )])))),
        ..Dependencies::default()
    };
    let config = r#"credentials = { kind = "static", sealed = true }"#;
    let set = build("sealed-one", config, &deps);
    let snapshot = resolve(set.as_ref(), "alice")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        header(&snapshot, "authorization").as_deref(),
        Some("Bearer opened-value")
    );

    let unset = build("sealed-two", config, &deps);
    let err = resolve(unset.as_ref(), "alice").await.err();
    assert!(
        matches!(&err, Some(CredentialError::Unavailable { upstream, .. }) if upstream == "sealed-two"),
        "{err:?}"
    );

    let problems = mcpgate_credentials::build(
        &super::upstream("sealed-one"),
        &super::parse(config),
        "u",
        &Dependencies::default(),
    )
    .err()
    .unwrap_or_default();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("sealed secret store"),
        "{problems:?}"
    );
}

#[tokio::test]
async fn login_token_carries_each_users_own_token_or_names_the_provider() {
    let tokens = Arc::new(FakeProviderTokens {
        tokens: HashMap::from([
            (("alice".into(), "github".into()), "gho_alice".into()),
            (("bob".into(), "github".into()), "gho_bob".into()),
            (("carol".into(), "google".into()), "ya29_carol".into()),
        ]),
        ..FakeProviderTokens::default()
    });
    let deps = Dependencies {
        provider_tokens: Some(tokens),
        ..Dependencies::default()
    };
    let source = build(
        "gh",
        r#"credentials = { kind = "login_token", provider = "github" }"#,
        &deps,
    );
    for (user, token) in [("alice", "Bearer gho_alice"), ("bob", "Bearer gho_bob")] {
        let snapshot = resolve(source.as_ref(), user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header(&snapshot, "authorization").as_deref(), Some(token));
    }
    // carol signed in with google only: she must sign in with github.
    let err = resolve(source.as_ref(), "carol").await.err();
    assert_eq!(
        err,
        Some(CredentialError::NotConnected {
            provider: "github".into()
        })
    );
    assert_eq!(
        err.map(|e| e.to_string()).unwrap_or_default(),
        "sign in with github to use this upstream"
    );
}
