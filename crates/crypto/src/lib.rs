#![doc = include_str!("../README.md")]

pub mod compare;
pub mod keys;
pub mod pkce;
pub mod secretbox;
pub mod token;

pub use compare::constant_time_eq;
pub use secretbox::{Place, SealError, SecretBox};
pub use token::{TokenHash, TokenKind};

/// Everything this crate can fail with (sealing has its own [`SealError`]).
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("invalid PKCE code_verifier: {0}")]
    InvalidVerifier(&'static str),
    #[error("invalid PKCE code_challenge: {0}")]
    InvalidChallenge(&'static str),
    #[error("PKCE code_challenge_method {0:?} is not supported (S256 only)")]
    UnsupportedChallengeMethod(String),
    #[error("the PKCE code_verifier does not match the code_challenge")]
    PkceMismatch,
}
