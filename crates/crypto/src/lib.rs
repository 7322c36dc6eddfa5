#![doc = include_str!("../README.md")]

pub mod keys;
pub mod secretbox;

pub use secretbox::{Place, SealError, SecretBox};

/// Everything this crate can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}
