#![doc = include_str!("../README.md")]

pub mod compare;
pub mod config;
pub mod keys;
pub mod password;
pub mod pkce;
pub mod pool;
mod priority;
pub mod secretbox;
pub mod token;

use std::time::Duration;

pub use compare::constant_time_eq;
pub use config::HasherConfig;
pub use password::{PasswordHasher, Verification};
pub use pool::HashingPool;
pub use secretbox::{Place, SealError, SecretBox};
pub use token::{TokenHash, TokenKind};

/// Everything this crate can fail with (sealing has its own [`SealError`]).
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// Every hashing permit stayed taken for the whole queue timeout. The server answers
    /// 503 with `Retry-After: retry_after` (whole seconds, at least one).
    #[error("password hashing is overloaded; retry after {} s", retry_after.as_secs())]
    Overloaded { retry_after: Duration },
    #[error("the hashing pool has shut down or a hashing thread failed")]
    PoolClosed,
    #[error("argon2 failed")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("the stored password hash is not a PHC string argon2 can verify")]
    MalformedHash(#[source] argon2::password_hash::Error),
    #[error(
        "the stored password hash asks for {m_cost_kib} KiB, more than the {max_kib} KiB one \
         verify may use"
    )]
    HashTooCostly { m_cost_kib: u32, max_kib: u32 },
    #[error("invalid argon2 parameters")]
    Params(#[source] argon2::Error),
    #[error("{field}: {message}")]
    Config {
        field: &'static str,
        message: String,
    },
    #[error("invalid PKCE code_verifier: {0}")]
    InvalidVerifier(&'static str),
    #[error("invalid PKCE code_challenge: {0}")]
    InvalidChallenge(&'static str),
    #[error("PKCE code_challenge_method {0:?} is not supported (S256 only)")]
    UnsupportedChallengeMethod(String),
    #[error("the PKCE code_verifier does not match the code_challenge")]
    PkceMismatch,
}

impl CryptoError {
    /// How long a client should wait before retrying, for errors that are about load.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Overloaded { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}
