//! CORS for the endpoints browser-based MCP clients (the MCP Inspector in direct mode, web
//! apps) call from another origin.
//!
//! - Discovery and the token-side OAuth endpoints (metadata, registration, token, revocation)
//!   answer every origin: they use no cookies, so a cross-origin caller gains nothing it could
//!   not do from a server. `/oauth/authorize` and the sign-in pages are navigations, not
//!   fetches, and get no CORS headers.
//! - `/mcp/*` answers only the origins allowed to call it at all (`public_url`'s and
//!   `proxy.allowed_origins`, the same set the `Origin` check enforces), and lets their scripts
//!   read the session id and the authentication challenge.

use std::time::Duration;

use axum::http::{HeaderName, Method, header};
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};

use crate::proxy::origin::AllowedOrigins;

const MAX_AGE: Duration = Duration::from_secs(3600);

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// Discovery and the token-side OAuth endpoints: any origin, no credentials.
pub fn public() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            MCP_PROTOCOL_VERSION,
        ])
        .expose_headers([header::WWW_AUTHENTICATE])
        .max_age(MAX_AGE)
}

/// The MCP endpoint: the allowed origins only.
pub fn mcp(origins: AllowedOrigins) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origins.allows(origin.as_bytes())
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        // MCP clients send the protocol's own headers (Mcp-Session-Id, Mcp-Protocol-Version,
        // Mcp-Method, Mcp-Name, Last-Event-ID, …); the origin is already trusted here.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            MCP_SESSION_ID,
            MCP_PROTOCOL_VERSION,
            header::WWW_AUTHENTICATE,
        ])
        .max_age(MAX_AGE)
}
