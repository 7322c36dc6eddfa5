//! Opaque tokens mcpgate issues: 256 bits from the OS RNG behind a readable prefix, stored
//! and looked up only by their SHA-256. Also the random `state` and `nonce` values of the
//! OAuth and OIDC flows mcpgate starts as a client.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::SecretString;
use sha2::{Digest, Sha256};

use crate::keys::random_bytes;
use crate::{CryptoError, constant_time_eq};

/// Random bytes in every token, `state` and `nonce`.
pub const TOKEN_BYTES: usize = 32;

/// What a token is for; its prefix makes a leaked token recognisable (and greppable by
/// secret scanners) without any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Access,
    Refresh,
    /// An OAuth authorization code.
    Code,
    /// A user's personal access token (scripts; the user's rights, narrowed).
    Personal,
    /// The secret of a service client (client-credentials grant).
    ClientSecret,
}

impl TokenKind {
    pub const ALL: [Self; 5] = [
        Self::Access,
        Self::Refresh,
        Self::Code,
        Self::Personal,
        Self::ClientSecret,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Self::Access => "mcpgate_at_",
            Self::Refresh => "mcpgate_rt_",
            Self::Code => "mcpgate_code_",
            Self::Personal => "mcpgate_pat_",
            Self::ClientSecret => "mcpgate_cs_",
        }
    }

    /// The kind a presented token claims by its prefix (it still has to be looked up).
    pub fn of(token: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| token.starts_with(k.prefix()))
    }
}

/// A new token of `kind` and the hash to store for it. Hand the token out once; keep only
/// the hash.
pub fn mint(kind: TokenKind) -> Result<(SecretString, TokenHash), CryptoError> {
    let mut token = String::with_capacity(kind.prefix().len() + 43);
    token.push_str(kind.prefix());
    URL_SAFE_NO_PAD.encode_string(random_bytes::<TOKEN_BYTES>()?, &mut token);
    let hash = TokenHash::of(&token);
    Ok((SecretString::new(token), hash))
}

/// SHA-256 of a whole token (prefix included): what storage keeps and looks up by. A plain
/// hash suffices: the token has 256 random bits, so there is nothing to brute-force.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters: a text column's value.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Whether `token` hashes to this value, compared in constant time.
    pub fn matches(&self, token: &str) -> bool {
        *self == Self::of(token)
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

/// Agrees with the constant-time `eq`: equal hashes hash equally.
impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in logs and tests.
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// A random OAuth `state` (RFC 6749 §10.12): 256 bits, base64url.
pub fn random_state() -> Result<String, CryptoError> {
    random_urlsafe()
}

/// A random OIDC `nonce` (OpenID Connect Core §3.1.2.1): 256 bits, base64url.
pub fn random_nonce() -> Result<String, CryptoError> {
    random_urlsafe()
}

fn random_urlsafe() -> Result<String, CryptoError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_carry_their_prefix_and_256_random_bits() -> Result<(), CryptoError> {
        for kind in TokenKind::ALL {
            let (token, hash) = mint(kind)?;
            let token = token.expose();
            let body = token
                .strip_prefix(kind.prefix())
                .unwrap_or_else(|| panic!("{kind:?} prefix"));
            assert_eq!(URL_SAFE_NO_PAD.decode(body).map(|b| b.len()).ok(), Some(32));
            assert_eq!(TokenKind::of(token), Some(kind));
            assert!(hash.matches(token));
            assert_eq!(hash, TokenHash::of(token));
        }
        assert_ne!(mint(TokenKind::Access)?.1, mint(TokenKind::Access)?.1);
        assert_eq!(TokenKind::of("ghp_abc"), None);
        Ok(())
    }

    #[test]
    fn hash_is_sha256_of_the_whole_token() {
        // SHA-256("abc"), FIPS 180-2 Appendix B.1.
        assert_eq!(
            TokenHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let h = TokenHash::of("mcpgate_at_x");
        assert!(!h.matches("mcpgate_at_y"));
        assert!(!h.matches("mcpgate_rt_x"), "the prefix is hashed too");
        assert_eq!(TokenHash::from_bytes(*h.as_bytes()), h);
        assert!(format!("{h:?}").starts_with("TokenHash("));
    }

    #[test]
    fn state_and_nonce_are_fresh_urlsafe_values() -> Result<(), CryptoError> {
        let (s1, s2, n) = (random_state()?, random_state()?, random_nonce()?);
        assert_ne!(s1, s2);
        assert_eq!(s1.len(), 43);
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        Ok(())
    }
}
