//! The device cookie: proof that this browser signed in to an account before. Sign-in limits
//! let such a browser through where they hold back strangers, so an attacker guessing the
//! owner's password cannot lock the owner out. The value is sealed (SecretBox) for the
//! normalised account name with an expiry: it opens only for that account, and cannot be
//! forged or moved to another.

use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_crypto::Place;
use mcpgate_storage::{normalize_email, now_ms};

use super::session::site_cookie;
use crate::app::AppState;
use crate::error::ApiError;

/// How long a browser stays known after a sign-in.
pub const LIFETIME: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// A sealed 8-byte expiry is far below this; anything longer is not ours.
const MAX_VALUE_LEN: usize = 256;

pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-mcpgate_device"
    } else {
        "mcpgate_device"
    }
}

/// Whether the browser's device cookie says it signed in to `email` before.
pub fn recognises(state: &AppState, jar: &CookieJar, email: &str) -> bool {
    let Some(cookie) = jar.get(cookie_name(state.config.is_https())) else {
        return false;
    };
    if cookie.value().len() > MAX_VALUE_LEN {
        return false;
    }
    let Ok(sealed) = URL_SAFE_NO_PAD.decode(cookie.value()) else {
        return false;
    };
    let account = normalize_email(email);
    let Ok(opened) = state
        .secret_box
        .open(&sealed, &Place::new("device", "signin", &account))
    else {
        return false;
    };
    <[u8; 8]>::try_from(&opened[..]).is_ok_and(|b| i64::from_be_bytes(b) > now_ms())
}

/// Sets the device cookie for `email` after a successful sign-in.
pub fn remember(state: &AppState, jar: CookieJar, email: &str) -> Result<CookieJar, ApiError> {
    let account = normalize_email(email);
    let expires = now_ms().saturating_add(LIFETIME.as_millis() as i64);
    let sealed = state
        .secret_box
        .seal(
            &expires.to_be_bytes(),
            &Place::new("device", "signin", &account),
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let https = state.config.is_https();
    let mut cookie = site_cookie(cookie_name(https), URL_SAFE_NO_PAD.encode(sealed), https);
    cookie.set_max_age(time::Duration::seconds(LIFETIME.as_secs() as i64));
    Ok(jar.add(cookie))
}
