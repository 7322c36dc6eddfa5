//! JWT checks for id tokens (OIDC Core §3.1.3.7) and JWT access tokens (RFC 9068): signature
//! against the provider's JWKS, then `iss`, `aud`, `exp`/`nbf` with a small leeway, `nonce`.

use mcpgate_core::ProviderError;
use serde_json::Value;

use crate::jwks::JwksCache;
use crate::jws::Compact;

/// Clock leeway for `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 60;

/// What a token must say about itself.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    /// `Some`: `aud` must contain it (and `azp`, when present with several audiences, must
    /// equal it). `None`: not checked (Keycloak access tokens say `account`).
    pub audience: Option<&'a str>,
    /// `Some`: the `nonce` claim must equal it.
    pub nonce: Option<&'a str>,
    pub now: i64,
}

/// Verifies a JWT's signature with the JWKS and its claims against `expect`. Every failure is
/// `Unauthorized` (the token is not acceptable), except that the JWKS fetch may be `Transient`.
pub async fn verify(
    http: &reqwest::Client,
    jwks: &JwksCache,
    token: &str,
    expect: &Expectations<'_>,
) -> Result<Value, ProviderError> {
    let reject = |why: String| ProviderError::Unauthorized(format!("JWT rejected: {why}"));
    let compact = Compact::parse(token).map_err(reject)?;
    let key = jwks
        .key(http, compact.header.kid.as_deref(), &compact.header.alg)
        .await?;
    let claims = compact.verify(&key).map_err(reject)?;
    check_claims(&claims, expect).map_err(reject)?;
    Ok(claims)
}

/// The claim checks, separate so they can be tested without keys.
pub fn check_claims(claims: &Value, expect: &Expectations<'_>) -> Result<(), String> {
    let iss = claims.get("iss").and_then(Value::as_str);
    if iss != Some(expect.issuer) {
        return Err(format!("iss {iss:?} is not {:?}", expect.issuer));
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("no exp claim")?;
    if exp + LEEWAY_SECS <= expect.now {
        return Err("expired".into());
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && nbf - LEEWAY_SECS > expect.now
    {
        return Err("not valid yet (nbf)".into());
    }
    if let Some(audience) = expect.audience {
        let auds: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !auds.contains(&audience) {
            return Err(format!("aud {auds:?} does not include {audience:?}"));
        }
        if auds.len() > 1
            && let Some(azp) = claims.get("azp").and_then(Value::as_str)
            && azp != audience
        {
            return Err(format!("azp {azp:?} is not {audience:?}"));
        }
    }
    if let Some(nonce) = expect.nonce {
        let got = claims.get("nonce").and_then(Value::as_str);
        if got != Some(nonce) {
            return Err("nonce mismatch".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect(now: i64) -> Expectations<'static> {
        Expectations {
            issuer: "https://idp",
            audience: Some("client"),
            nonce: Some("n1"),
            now,
        }
    }

    #[test]
    fn accepts_a_good_token() {
        let c = json!({"iss":"https://idp","aud":"client","exp":1000,"nonce":"n1"});
        assert_eq!(check_claims(&c, &expect(999)), Ok(()));
        // Within the leeway.
        assert_eq!(check_claims(&c, &expect(1000 + LEEWAY_SECS - 1)), Ok(()));
    }

    #[test]
    fn rejects_each_wrong_claim() {
        let good = json!({"iss":"https://idp","aud":["client","other"],"azp":"client","exp":1000,"nonce":"n1"});
        assert_eq!(check_claims(&good, &expect(0)), Ok(()));
        let cases = [
            ("iss", json!("https://evil")),
            ("aud", json!("other")),
            ("azp", json!("other")),
            ("exp", json!(10)),
            ("nonce", json!("n2")),
            ("nbf", json!(5000)),
        ];
        for (claim, value) in cases {
            let mut c = good.clone();
            c[claim] = value;
            assert!(check_claims(&c, &expect(500)).is_err(), "{claim}");
        }
        let mut c = good.clone();
        c.as_object_mut().map(|o| o.remove("nonce"));
        assert!(check_claims(&c, &expect(500)).is_err(), "missing nonce");
    }

    #[test]
    fn audience_and_nonce_are_optional_checks() {
        let c = json!({"iss":"https://idp","aud":"account","exp":1000});
        let e = Expectations {
            audience: None,
            nonce: None,
            ..expect(0)
        };
        assert_eq!(check_claims(&c, &e), Ok(()));
    }
}
