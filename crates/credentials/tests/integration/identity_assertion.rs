//! `identity_assertion`: verified against the published JWKS, claims, lifetime, rotation.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcpgate_core::SecretString;
use mcpgate_credentials::{
    AssertionKeyConfig, AssertionKeysConfig, AssertionSigner, Caller, Dependencies,
    generate_key_b64,
};
use serde_json::Value;

use super::{Request, build, header};

const ISSUER: &str = "https://gateway.example";

fn key(id: &str) -> AssertionKeyConfig {
    AssertionKeyConfig {
        id: id.into(),
        key: Some(SecretString::new(
            generate_key_b64().unwrap_or_else(|e| panic!("{e}")),
        )),
        key_file: None,
        key_env: None,
    }
}

fn signer(active: &str, keys: &[AssertionKeyConfig]) -> Arc<AssertionSigner> {
    let config = AssertionKeysConfig {
        active: active.into(),
        keys: keys.to_vec(),
    };
    Arc::new(
        AssertionSigner::from_config(ISSUER, &config, "identity_assertion_keys")
            .unwrap_or_else(|e| panic!("{e:?}")),
    )
}

/// Verifies like an upstream would: the JWKS as JSON, the key chosen by `kid`.
fn verify(jwt: &str, jwks: &JwkSet, audience: &str) -> HashMap<String, Value> {
    let json = serde_json::to_string(jwks).unwrap_or_default();
    let published: JwkSet = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let header = jsonwebtoken::decode_header(jwt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.unwrap_or_default();
    let jwk = published
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not published"));
    let key = DecodingKey::from_jwk(jwk).unwrap_or_else(|e| panic!("{e}"));
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
    jsonwebtoken::decode::<HashMap<String, Value>>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("verify: {e}"))
        .claims
}

async fn assertion(deps: &Dependencies, roles: &[String]) -> String {
    let source = build(
        "asserted",
        r#"credentials = { kind = "identity_assertion", header = "x-user-assertion", ttl_secs = 45 }"#,
        deps,
    );
    let request = Request::post("https://asserted.example/mcp", "{}");
    let caller = Caller {
        user_id: "user-42",
        email: Some("ada@example.org"),
        roles,
    };
    let snapshot = source
        .resolve(&caller, &request.outgoing())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    header(&snapshot, "x-user-assertion").unwrap_or_else(|| panic!("no assertion header"))
}

#[tokio::test]
async fn the_assertion_verifies_against_the_jwks_with_its_claims() {
    let signer = signer("k1", &[key("k1")]);
    let deps = Dependencies {
        assertion_signer: Some(signer.clone()),
        ..Dependencies::default()
    };
    let roles = vec!["admin".to_owned(), "dev".to_owned()];
    let jwt = assertion(&deps, &roles).await;
    let claims = verify(&jwt, &signer.jwks(), "https://asserted.example/mcp");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "user-42");
    assert_eq!(claims["email"], "ada@example.org");
    assert_eq!(claims["roles"], serde_json::json!(["admin", "dev"]));
    let lifetime = claims["exp"].as_u64().unwrap_or(0) - claims["iat"].as_u64().unwrap_or(0);
    assert_eq!(lifetime, 45);
    assert!(lifetime <= 60);
    // jti differs per assertion.
    let again = verify(
        &assertion(&deps, &roles).await,
        &signer.jwks(),
        "https://asserted.example/mcp",
    );
    assert_ne!(claims["jti"], again["jti"]);
    // The JWKS has public parts only.
    let jwks = serde_json::to_value(signer.jwks()).unwrap_or_default();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert_eq!(jwks["keys"][0]["kid"], "k1");
    assert!(jwks["keys"][0].get("d").is_none(), "{jwks}");
}

#[tokio::test]
async fn rotation_keeps_the_old_key_published() {
    let old = key("2026-01");
    let new = key("2026-02");
    let before = signer("2026-01", std::slice::from_ref(&old));
    let after = signer("2026-02", &[old.clone(), new.clone()]);
    let jwt_before = assertion(
        &Dependencies {
            assertion_signer: Some(before),
            ..Dependencies::default()
        },
        &[],
    )
    .await;
    let jwt_after = assertion(
        &Dependencies {
            assertion_signer: Some(after.clone()),
            ..Dependencies::default()
        },
        &[],
    )
    .await;
    let kids: Vec<String> = after
        .jwks()
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, ["2026-01", "2026-02"]);
    assert_eq!(
        jsonwebtoken::decode_header(&jwt_after)
            .ok()
            .and_then(|h| h.kid)
            .as_deref(),
        Some("2026-02")
    );
    // Signed before the rotation, still verifies against the rotated JWKS.
    verify(&jwt_before, &after.jwks(), "https://asserted.example/mcp");
    verify(&jwt_after, &after.jwks(), "https://asserted.example/mcp");
    // Once the old key is dropped, its assertions no longer verify.
    let dropped = signer("2026-02", &[new]);
    assert!(dropped.jwks().find("2026-01").is_none());
}

#[test]
fn key_problems_are_all_reported() {
    let config = AssertionKeysConfig {
        active: "missing".into(),
        keys: vec![
            AssertionKeyConfig {
                id: "short".into(),
                key: Some(SecretString::new("c2hvcnQ=")),
                key_file: None,
                key_env: None,
            },
            AssertionKeyConfig {
                id: "none".into(),
                key: None,
                key_file: None,
                key_env: None,
            },
        ],
    };
    let problems = AssertionSigner::from_config(ISSUER, &config, "keys")
        .err()
        .unwrap_or_default();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["keys.keys[0]", "keys.keys[1]", "keys.active"],
        "{problems:?}"
    );
}
