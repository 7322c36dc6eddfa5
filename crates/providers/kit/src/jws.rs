//! Compact JWS (RFC 7515) parsing and signature checks with ring. Only asymmetric algorithms:
//! `none` and HMAC are refused, since a provider's tokens are checked against its public keys.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

use crate::jwks::Jwk;

/// The JOSE header members used to pick the key.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug)]
pub struct Compact<'a> {
    pub header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Whether a string has the shape of a compact JWS (three base64url parts).
pub fn looks_like_jws(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && parts.iter().take(2).all(|p| !p.is_empty())
}

/// The key type an algorithm needs, `None` for algorithms we refuse.
pub fn kty_for(alg: &str) -> Option<&'static str> {
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Some("RSA"),
        "ES256" | "ES384" => Some("EC"),
        _ => None,
    }
}

impl<'a> Compact<'a> {
    pub fn parse(token: &'a str) -> Result<Self, String> {
        let mut parts = token.splitn(3, '.');
        let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("not a compact JWS".into());
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| format!("the {what} is not base64url"))
        };
        let header: Header = serde_json::from_slice(&decode(h, "header")?)
            .map_err(|e| format!("bad JOSE header: {e}"))?;
        if kty_for(&header.alg).is_none() {
            return Err(format!("algorithm {:?} is not accepted", header.alg));
        }
        Ok(Self {
            header,
            signing_input: &token[..h.len() + 1 + p.len()],
            payload: decode(p, "payload")?,
            signature: decode(s, "signature")?,
        })
    }

    /// Checks the signature with `key` and returns the payload as JSON claims.
    pub fn verify(self, key: &Jwk) -> Result<serde_json::Value, String> {
        let message = self.signing_input.as_bytes();
        let b64 = |v: &Option<String>, what: &str| -> Result<Vec<u8>, String> {
            let v = v
                .as_deref()
                .ok_or_else(|| format!("the key has no {what}"))?;
            URL_SAFE_NO_PAD
                .decode(v)
                .map_err(|_| format!("the key's {what} is not base64url"))
        };
        let ok = match self.header.alg.as_str() {
            alg @ ("RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512") => {
                let params: &signature::RsaParameters = match alg {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                    "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                    _ => &signature::RSA_PSS_2048_8192_SHA512,
                };
                let (n, e) = (b64(&key.n, "n")?, b64(&key.e, "e")?);
                RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(params, message, &self.signature)
                    .is_ok()
            }
            alg @ ("ES256" | "ES384") => {
                let (expected_crv, params) = if alg == "ES256" {
                    ("P-256", &signature::ECDSA_P256_SHA256_FIXED)
                } else {
                    ("P-384", &signature::ECDSA_P384_SHA384_FIXED)
                };
                if key.crv.as_deref() != Some(expected_crv) {
                    return Err(format!("{alg} needs a {expected_crv} key"));
                }
                let mut point = vec![0x04];
                point.extend(b64(&key.x, "x")?);
                point.extend(b64(&key.y, "y")?);
                UnparsedPublicKey::new(params, point)
                    .verify(message, &self.signature)
                    .is_ok()
            }
            other => return Err(format!("algorithm {other:?} is not accepted")),
        };
        if !ok {
            return Err("bad signature".into());
        }
        serde_json::from_slice(&self.payload).map_err(|e| format!("the payload is not JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_none_and_hmac() {
        let h = |alg: &str| URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
        let p = URL_SAFE_NO_PAD.encode("{}");
        for alg in ["none", "HS256"] {
            let token = format!("{}.{p}.", h(alg));
            assert!(Compact::parse(&token).is_err(), "{alg}");
        }
        assert!(Compact::parse("abc").is_err());
        assert!(looks_like_jws("a.b.c"));
        assert!(!looks_like_jws("opaque-token"));
    }
}
