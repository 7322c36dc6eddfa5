//! The consent cookie: which MCP clients this browser approved before its person signed in
//! with an identity provider (MCP security best practice for a proxy with a static client id
//! at the provider: consent per client *before* federating, so a malicious client cannot ride
//! a person's standing sign-in at the provider to get a code).
//!
//! The value is sealed (authenticated encryption with mcpgate's key ring, bound to its
//! purpose), so it cannot be forged or edited, and it names each approved client id with the
//! upstream and scopes approved and an expiry: approval of one client, or for one upstream,
//! never covers another. `__Host-`,
//! `Secure`, `HttpOnly`, `SameSite=Lax` over https, like every mcpgate cookie.

use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_crypto::Place;
use mcpgate_storage::now_ms;
use serde::{Deserialize, Serialize};

use super::session::site_cookie;
use crate::app::AppState;
use crate::error::ApiError;

/// How long an approval is remembered by the browser.
pub const LIFETIME_SECS: i64 = 30 * 24 * 3600;
/// Approvals kept at most (the oldest go first), to bound the cookie's size.
const MAX_CLIENTS: usize = 16;

fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-mcpgate_consent"
    } else {
        "mcpgate_consent"
    }
}

fn place() -> Place<'static> {
    Place::new("cookies", "consent", "v1")
}

#[derive(Serialize, Deserialize)]
struct Approval {
    client_id: String,
    /// The upstream's resource URL (empty in cookies from before approvals named one: those
    /// match nothing).
    #[serde(default)]
    resource: String,
    scopes: String,
    expires_at: i64,
}

fn approvals(state: &AppState, jar: &CookieJar) -> Vec<Approval> {
    let Some(cookie) = jar.get(cookie_name(state.config.is_https())) else {
        return Vec::new();
    };
    URL_SAFE_NO_PAD
        .decode(cookie.value())
        .ok()
        .and_then(|sealed| state.secret_box.open(&sealed, &place()).ok())
        .and_then(|json| serde_json::from_slice::<Vec<Approval>>(&json).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.expires_at > now_ms())
        .collect()
}

/// Whether this browser approved `client_id` on `resource` for every one of `scopes`.
pub fn approved(
    state: &AppState,
    jar: &CookieJar,
    client_id: &str,
    resource: &str,
    scopes: &str,
) -> bool {
    approvals(state, jar)
        .iter()
        .any(|a| a.client_id == client_id && a.resource == resource && covers(&a.scopes, scopes))
}

/// Whether approved scopes cover every requested one (with the hierarchy: `mcp` covers
/// `mcp:read`).
pub fn covers(approved: &str, requested: &str) -> bool {
    requested
        .split_ascii_whitespace()
        .all(|s| crate::oauth::scopes::satisfies(approved, s))
}

/// Remembers that this browser approved `client_id` on `resource` for `scopes`.
pub fn remember(
    state: &AppState,
    jar: CookieJar,
    client_id: &str,
    resource: &str,
    scopes: &str,
) -> Result<CookieJar, ApiError> {
    let mut list = approvals(state, &jar);
    list.retain(|a| a.client_id != client_id || a.resource != resource);
    list.push(Approval {
        client_id: client_id.to_owned(),
        resource: resource.to_owned(),
        scopes: scopes.to_owned(),
        expires_at: now_ms() + LIFETIME_SECS * 1000,
    });
    if list.len() > MAX_CLIENTS {
        list.drain(..list.len() - MAX_CLIENTS);
    }
    let json = serde_json::to_vec(&list).map_err(|e| ApiError::Internal(e.to_string()))?;
    let sealed = state
        .secret_box
        .seal(&json, &place())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let https = state.config.is_https();
    let mut cookie = site_cookie(cookie_name(https), URL_SAFE_NO_PAD.encode(sealed), https);
    cookie.set_max_age(time::Duration::seconds(LIFETIME_SECS));
    Ok(jar.add(cookie))
}
