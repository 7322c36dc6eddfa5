#![doc = include_str!("../README.md")]

pub mod email;
pub mod principal;
pub mod provider;
pub mod secret;

pub use principal::Principal;
pub use provider::{
    AuthorizationRequest, Capabilities, FieldError, IdentityProvider, ProviderDescriptor,
    ProviderError, ProviderSettings, RefreshBehaviour, TokenBodyFormat, TokenSet, UserContext,
};
pub use secret::SecretString;
