//! CSRF protection for every form: a per-browser random cookie, and in each form a token
//! sealed (SecretBox) for that cookie value and the form's purpose, with an expiry. A token
//! opens only with the cookie it was made for, only for its form, only once, and only until it
//! expires. Signing in replaces the cookie, so a captured sign-in form cannot be replayed.

use std::time::Duration;

use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_crypto::{Place, TokenHash};
use mcpgate_storage::now_ms;

use super::session::{random_value, removal, site_cookie};
use crate::app::AppState;
use crate::error::ApiError;

/// How long a form stays valid.
pub const LIFETIME: Duration = Duration::from_secs(3600);

pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-mcpgate_csrf"
    } else {
        "mcpgate_csrf"
    }
}

/// A token for a form of `purpose`, creating the browser's CSRF cookie if it has none.
pub fn issue(
    state: &AppState,
    jar: CookieJar,
    purpose: &str,
) -> Result<(CookieJar, String), ApiError> {
    let https = state.config.is_https();
    let (jar, binding) = match jar.get(cookie_name(https)) {
        Some(c) if !c.value().is_empty() => {
            let value = c.value().to_owned();
            (jar, value)
        }
        _ => {
            let value = random_value()?;
            let jar = jar.add(site_cookie(cookie_name(https), value.clone(), https));
            (jar, value)
        }
    };
    let expires = now_ms() + LIFETIME.as_millis() as i64;
    let sealed = state
        .secret_box
        .seal(
            &expires.to_be_bytes(),
            &Place::new("csrf", purpose, &binding),
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((jar, URL_SAFE_NO_PAD.encode(sealed)))
}

/// Checks a submitted token; each token is accepted once.
pub fn check(
    state: &AppState,
    jar: &CookieJar,
    purpose: &str,
    token: &str,
) -> Result<(), ApiError> {
    let refuse = || {
        ApiError::Forbidden(
            "the form expired or was not sent from this site; reload it and try again".into(),
        )
    };
    let https = state.config.is_https();
    let binding = jar
        .get(cookie_name(https))
        .map(|c| c.value())
        .ok_or_else(refuse)?;
    let sealed = URL_SAFE_NO_PAD.decode(token).map_err(|_| refuse())?;
    let opened = state
        .secret_box
        .open(&sealed, &Place::new("csrf", purpose, binding))
        .map_err(|_| refuse())?;
    let expires = <[u8; 8]>::try_from(&opened[..])
        .map(i64::from_be_bytes)
        .map_err(|_| refuse())?;
    if expires < now_ms() {
        return Err(refuse());
    }
    let key = *TokenHash::of(token).as_bytes();
    if state.csrf_used.contains_key(&key) {
        return Err(refuse());
    }
    state.csrf_used.insert(key, ());
    Ok(())
}

/// After signing in or out: a fresh CSRF cookie comes with the next form.
pub fn rotate(state: &AppState, jar: CookieJar) -> CookieJar {
    let https = state.config.is_https();
    jar.add(removal(cookie_name(https), https))
}
