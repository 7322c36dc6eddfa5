//! PKCE (RFC 7636) with the S256 method only: OAuth 2.1 and the MCP authorization spec
//! require S256, and `plain` would put the verifier itself in the authorization request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::SecretString;
use sha2::{Digest, Sha256};

use crate::keys::random_bytes;
use crate::{CryptoError, constant_time_eq};

/// Length of an S256 challenge: base64url (no padding) of a SHA-256 digest.
const S256_CHALLENGE_LEN: usize = 43;

/// Checks `code_challenge_method` from an authorization request.
pub fn check_method(method: &str) -> Result<(), CryptoError> {
    if method == "S256" {
        Ok(())
    } else {
        Err(CryptoError::UnsupportedChallengeMethod(method.to_owned()))
    }
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, unreserved = ALPHA / DIGIT / "-" / "." /
/// "_" / "~".
pub fn check_verifier(verifier: &str) -> Result<(), CryptoError> {
    if !(43..=128).contains(&verifier.len()) {
        return Err(CryptoError::InvalidVerifier("must be 43 to 128 characters"));
    }
    if !verifier.bytes().all(is_unreserved) {
        return Err(CryptoError::InvalidVerifier(
            "only letters, digits and - . _ ~ are allowed",
        ));
    }
    Ok(())
}

/// An S256 `code_challenge` as an authorization request must carry it: 43 base64url
/// characters (RFC 7636 §4.2).
pub fn check_challenge(challenge: &str) -> Result<(), CryptoError> {
    let well_formed = challenge.len() == S256_CHALLENGE_LEN
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(CryptoError::InvalidChallenge(
            "an S256 challenge is 43 base64url characters",
        ))
    }
}

/// `BASE64URL(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The token endpoint's check (RFC 7636 §4.6): the verifier is well-formed and its S256
/// challenge equals the one stored with the code, compared in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> Result<(), CryptoError> {
    check_verifier(verifier)?;
    if constant_time_eq(s256_challenge(verifier).as_bytes(), challenge.as_bytes()) {
        Ok(())
    } else {
        Err(CryptoError::PkceMismatch)
    }
}

/// A fresh verifier for flows where mcpgate is the client (sign-in at an identity provider):
/// 32 random bytes, base64url, 43 characters (RFC 7636 §4.1's recommendation).
pub fn generate_verifier() -> Result<SecretString, CryptoError> {
    Ok(SecretString::new(
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?),
    ))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        assert!(verify_s256(VERIFIER, CHALLENGE).is_ok());
        assert!(check_challenge(CHALLENGE).is_ok());
    }

    #[test]
    fn a_different_verifier_does_not_match() {
        let other = "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(matches!(
            verify_s256(other, CHALLENGE),
            Err(CryptoError::PkceMismatch)
        ));
    }

    #[test]
    fn verifier_syntax_is_checked_before_hashing() {
        let short = "a".repeat(42);
        let long = "a".repeat(129);
        for bad in [
            short.as_str(),
            long.as_str(),
            &format!("{}+", "a".repeat(42)),
        ] {
            assert!(
                matches!(
                    verify_s256(bad, CHALLENGE),
                    Err(CryptoError::InvalidVerifier(_))
                ),
                "{bad}"
            );
        }
        assert!(check_verifier(&"a".repeat(43)).is_ok());
        assert!(check_verifier(&format!("{}-._~", "Z9".repeat(62))).is_ok());
        assert!(check_verifier(&"é".repeat(30)).is_err());
    }

    #[test]
    fn methods_and_challenges() {
        assert!(check_method("S256").is_ok());
        assert!(matches!(
            check_method("plain"),
            Err(CryptoError::UnsupportedChallengeMethod(m)) if m == "plain"
        ));
        assert!(check_challenge(&CHALLENGE[1..]).is_err());
        assert!(check_challenge(&format!("{}=", &CHALLENGE[1..])).is_err());
    }

    #[test]
    fn generated_verifiers_are_valid_and_fresh() -> Result<(), CryptoError> {
        let (a, b) = (generate_verifier()?, generate_verifier()?);
        assert!(check_verifier(a.expose()).is_ok());
        assert_ne!(a.expose(), b.expose());
        assert!(verify_s256(a.expose(), &s256_challenge(a.expose())).is_ok());
        Ok(())
    }
}
