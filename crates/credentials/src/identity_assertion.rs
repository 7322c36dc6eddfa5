//! Kind `identity_assertion`: a short-lived JWT (EdDSA over Ed25519) that tells the upstream who
//! the user is, signed by mcpgate. The JOSE work is `jsonwebtoken`'s; this module holds the key
//! ring (every key published, the active one signs) and the claims.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
use http::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate_core::{FieldError, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::{IdentityAssertionConfig, load_secret};
use crate::{Caller, CredentialError, CredentialSnapshot, CredentialSource, OutgoingRequest};

/// Length of an Ed25519 secret key (the seed) in bytes.
pub const ASSERTION_KEY_LEN: usize = 32;

/// The signing keys, as configured by the server (e.g. `[identity_assertion_keys]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionKeysConfig {
    /// The `id` of the key that signs. The others stay published in the JWKS, so assertions
    /// signed before a rotation keep verifying until they expire (at most 60 s).
    pub active: String,
    pub keys: Vec<AssertionKeyConfig>,
}

/// One Ed25519 key: its `kid` and the 32-byte secret key, base64, from exactly one of `key`,
/// `key_file` or `key_env`. Generate one with [`generate_key_b64`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionKeyConfig {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
}

/// A fresh Ed25519 secret key, base64, as it appears in configuration.
pub fn generate_key_b64() -> Result<String, CredentialError> {
    let seed = mcpgate_crypto::keys::random_bytes::<ASSERTION_KEY_LEN>()
        .map_err(|e| CredentialError::unavailable("-", e.to_string()))?;
    Ok(STANDARD.encode(seed))
}

struct SigningEntry {
    key: EncodingKey,
    jwk: Jwk,
}

/// The key ring for identity assertions: signs with the active key, publishes every key.
pub struct AssertionSigner {
    issuer: String,
    active: String,
    keys: BTreeMap<String, SigningEntry>,
}

impl fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("issuer", &self.issuer)
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AssertionSigner {
    /// Builds the ring from `(kid, 32-byte secret key)` pairs; `active` must be one of them.
    /// `issuer` is mcpgate's issuer URL (the `iss` of every assertion).
    pub fn new(
        issuer: impl Into<String>,
        active: &str,
        keys: impl IntoIterator<Item = (String, Zeroizing<[u8; ASSERTION_KEY_LEN]>)>,
    ) -> Result<Self, String> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err("jsonwebtoken has no crypto provider (enable exactly one backend)".into());
        }
        let mut ring = BTreeMap::new();
        for (kid, seed) in keys {
            if kid.is_empty() {
                return Err("a key id must not be empty".into());
            }
            // PKCS#8 v1 (secret key only): the form `jsonwebtoken` derives the JWK from.
            let der = KeypairBytes {
                secret_key: *seed,
                public_key: None,
            }
            .to_pkcs8_der()
            .map_err(|_| format!("key {kid:?} cannot be encoded"))?;
            let key = EncodingKey::from_ed_der(der.as_bytes());
            let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA)
                .map_err(|e| format!("key {kid:?}: {e}"))?;
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            ring.insert(kid, SigningEntry { key, jwk });
        }
        if !ring.contains_key(active) {
            return Err(format!("the active key {active:?} is not in the key ring"));
        }
        Ok(Self {
            issuer: issuer.into(),
            active: active.to_owned(),
            keys: ring,
        })
    }

    /// Loads the configured keys; every problem is reported, with paths under `path`.
    pub fn from_config(
        issuer: impl Into<String>,
        config: &AssertionKeysConfig,
        path: &str,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut keys = Vec::new();
        for (i, k) in config.keys.iter().enumerate() {
            let at = format!("{path}.keys[{i}]");
            let loaded = load_secret(
                &at,
                ("key", k.key.as_ref()),
                ("key_file", k.key_file.as_deref()),
                ("key_env", k.key_env.as_deref()),
            )
            .and_then(|secret| {
                let bytes = Zeroizing::new(
                    STANDARD
                        .decode(secret.expose().trim())
                        .map_err(|_| FieldError::new(&at, "the key is not valid base64"))?,
                );
                let seed = <[u8; ASSERTION_KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
                    FieldError::new(
                        &at,
                        format!("the key must decode to {ASSERTION_KEY_LEN} bytes"),
                    )
                })?;
                Ok(Zeroizing::new(seed))
            });
            match loaded {
                Ok(seed) => keys.push((k.id.clone(), seed)),
                Err(e) => errors.push(e),
            }
        }
        if !config.keys.iter().any(|k| k.id == config.active) {
            errors.push(FieldError::new(
                format!("{path}.active"),
                format!("no key has the id {:?}", config.active),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Self::new(issuer, &config.active, keys).map_err(|e| vec![FieldError::new(path, e)])
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// The public keys for `/.well-known/jwks.json`: every key in the ring.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.values().map(|e| e.jwk.clone()).collect(),
        }
    }

    /// Signs an assertion about `caller` for `audience`, valid `ttl_secs` (capped at 60).
    pub fn sign(
        &self,
        caller: &Caller<'_>,
        audience: &str,
        ttl_secs: u64,
        upstream: &str,
    ) -> Result<String, CredentialError> {
        let entry = self
            .keys
            .get(&self.active)
            .ok_or_else(|| CredentialError::unavailable(upstream, "no active assertion key"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| CredentialError::unavailable(upstream, "the clock is before 1970"))?
            .as_secs();
        let jti = mcpgate_crypto::keys::random_bytes::<16>()
            .map_err(|_| CredentialError::unavailable(upstream, "the random generator failed"))?;
        let claims = AssertionClaims {
            iss: &self.issuer,
            aud: audience,
            sub: caller.user_id,
            email: caller.email,
            roles: caller.roles,
            jti: URL_SAFE_NO_PAD.encode(jti),
            iat: now,
            nbf: now,
            exp: now + ttl_secs.min(crate::config::MAX_ASSERTION_TTL_SECS),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.active.clone());
        jsonwebtoken::encode(&header, &claims, &entry.key)
            .map_err(|_| CredentialError::unavailable(upstream, "signing the assertion failed"))
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    roles: &'a [String],
    jti: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// The built kind: one header with a fresh assertion per request.
pub(crate) struct IdentityAssertion {
    pub(crate) upstream: String,
    pub(crate) signer: Arc<AssertionSigner>,
    pub(crate) header: HeaderName,
    pub(crate) audience: String,
    pub(crate) ttl_secs: u64,
}

impl IdentityAssertion {
    pub(crate) fn build(
        upstream: &str,
        upstream_url: &str,
        config: &IdentityAssertionConfig,
        signer: Arc<AssertionSigner>,
    ) -> Result<Self, String> {
        Ok(Self {
            upstream: upstream.to_owned(),
            signer,
            header: HeaderName::from_bytes(config.header.as_bytes())
                .map_err(|_| "not a valid header name".to_owned())?,
            audience: config
                .audience
                .clone()
                .unwrap_or_else(|| upstream_url.to_owned()),
            ttl_secs: config.ttl_secs,
        })
    }
}

impl fmt::Debug for IdentityAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityAssertion")
            .field("upstream", &self.upstream)
            .field("header", &self.header)
            .field("audience", &self.audience)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CredentialSource for IdentityAssertion {
    async fn resolve(
        &self,
        caller: &Caller<'_>,
        _request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let jwt = self
            .signer
            .sign(caller, &self.audience, self.ttl_secs, &self.upstream)?;
        let value = HeaderValue::from_str(&jwt)
            .map_err(|_| CredentialError::unavailable(&self.upstream, "unencodable assertion"))?;
        Ok(CredentialSnapshot::empty().with_header(self.header.clone(), value))
    }
}
