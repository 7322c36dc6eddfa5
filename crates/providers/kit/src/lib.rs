#![doc = include_str!("../README.md")]

mod claims;
mod classify;
mod discovery;
mod http;
mod numbers;
mod oauth_client;
mod oidc_client;
mod options;
mod secret;
mod token;

pub use claims::{strings, truthy, user_context};
pub use classify::{OAuthErrorBody, resource_error, send_error, token_error};
pub use discovery::{
    DiscoveryCache, ProviderMetadata, RevocationMetadata, discovery_error, fetch_jwks,
};
pub use http::{
    CONNECT_TIMEOUT, HttpClient, HttpError, REQUEST_TIMEOUT, USER_AGENT, build_client,
    ensure_tls_provider, shared_client,
};
pub use numbers::lenient_seconds;
pub use oauth_client::{OAuthClient, OAuthConfig, get_json};
pub use oidc_client::{
    DISCOVERY_TTL, EndpointSource, ExtraClaims, FixedEndpoints, ID_TOKEN_LEEWAY, KitIdToken,
    MIN_REFETCH, OidcClient, OidcConfig, looks_like_jws, now_unix,
};
pub use options::{TokenAuthMethod, check_common, id_token_leeway, parse_options, parse_url};
pub use secret::client_secret;
pub use token::{ClientAuth, KitTokenResponse, request_token_error, revoke as revoke_token};

/// Re-exported for provider crates that build their own clients and requests.
pub use reqwest;
/// Re-exported so provider crates use the same versions as the kit.
pub use {oauth2, openidconnect};

/// Discovery fetch, for providers that need the metadata itself.
pub use discovery::fetch as fetch_discovery;
