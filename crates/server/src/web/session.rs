//! The browser session: a random cookie value whose SHA-256 is stored with the user.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use mcpgate_crypto::TokenHash;
use mcpgate_storage::{User, now_ms};

use crate::app::AppState;
use crate::error::ApiError;

/// `__Host-` (and `Secure`) whenever mcpgate is served over https: the browser then refuses
/// the cookie from any other origin or path.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-mcpgate_session"
    } else {
        "mcpgate_session"
    }
}

/// A cookie for this site, with the attributes every mcpgate cookie carries.
pub fn site_cookie(name: &'static str, value: String, https: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .build()
}

/// A cookie that removes `name` (same path, expired).
pub fn removal(name: &'static str, https: bool) -> Cookie<'static> {
    let mut cookie = site_cookie(name, String::new(), https);
    cookie.make_removal();
    cookie
}

/// Starts a session for `user`; returns the jar with the cookie set.
pub async fn start(state: &AppState, jar: CookieJar, user: &User) -> Result<CookieJar, ApiError> {
    let value = random_value()?;
    let ttl_ms =
        i64::try_from(state.config.auth.session_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    state
        .store
        .create_session(
            TokenHash::of(&value).as_bytes(),
            &user.id,
            now_ms().saturating_add(ttl_ms),
        )
        .await?;
    // No Max-Age: the cookie ends with the browser session; the server-side expiry bounds it.
    let https = state.config.is_https();
    Ok(jar.add(site_cookie(cookie_name(https), value, https)))
}

/// The signed-in user, if the cookie names a live session of an enabled user.
pub async fn current_user(state: &AppState, jar: &CookieJar) -> Result<Option<User>, ApiError> {
    let https = state.config.is_https();
    let Some(cookie) = jar.get(cookie_name(https)) else {
        return Ok(None);
    };
    let hash = TokenHash::of(cookie.value());
    let Some(session) = state.store.find_session(hash.as_bytes()).await? else {
        return Ok(None);
    };
    if session.user_disabled_at.is_some() {
        return Ok(None);
    }
    Ok(Some(state.store.get_user(&session.user_id).await?))
}

/// Ends the session named by the cookie (if any) and removes the cookie.
pub async fn end(state: &AppState, jar: CookieJar) -> Result<CookieJar, ApiError> {
    let https = state.config.is_https();
    if let Some(cookie) = jar.get(cookie_name(https)) {
        let hash = TokenHash::of(cookie.value());
        state.store.delete_session(hash.as_bytes()).await?;
    }
    Ok(jar.add(removal(cookie_name(https), https)))
}

/// 256 random bits, base64url: a cookie value nobody can guess.
pub fn random_value() -> Result<String, ApiError> {
    use base64::Engine;
    let bytes = mcpgate_crypto::keys::random_bytes::<32>()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let c = site_cookie(cookie_name(true), "v".into(), true);
        let text = c.to_string();
        assert!(text.starts_with("__Host-mcpgate_session=v"), "{text}");
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(text.contains(attr), "{attr} missing in {text}");
        }
        assert!(!text.contains("Domain"), "__Host- cookies carry no Domain");
        let plain = site_cookie(cookie_name(false), "v".into(), false).to_string();
        assert!(plain.starts_with("mcpgate_session=v") && !plain.contains("Secure"));
    }
}
