#![doc = include_str!("../README.md")]

mod claims;
mod classify;
mod discovery;
mod http;
mod jwks;
mod jws;
mod jwt;
mod numbers;
mod oidc_client;
mod options;
mod pending;
mod secret;
mod token;

pub use claims::{strings, truthy, user_context};
pub use classify::{OAuthErrorBody, resource_error, send_error, token_error};
pub use discovery::{DiscoveryCache, ProviderMetadata, discovery_url};
pub use http::{
    CONNECT_TIMEOUT, REQUEST_TIMEOUT, USER_AGENT, build_client, ensure_tls_provider, shared_client,
};
pub use jwks::{Jwk, JwksCache, MIN_REFETCH};
pub use jws::looks_like_jws;
pub use jwt::{Expectations, LEEWAY_SECS, check_claims};
pub use numbers::lenient_seconds;
pub use oidc_client::{
    DISCOVERY_TTL, EndpointSource, FixedEndpoints, OidcClient, OidcConfig, now_unix,
};
pub use options::{TokenAuthMethod, check_common, parse_options, parse_url};
pub use pending::{PendingProvider, build_pending};
pub use secret::client_secret;
pub use token::{ClientAuth, TokenEndpoint, TokenResponse};

/// Re-exported for provider crates that build their own clients and requests.
pub use reqwest;

/// Discovery fetch, for providers that need the metadata itself.
pub use discovery::fetch as fetch_discovery;
