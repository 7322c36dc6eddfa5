//! Who is at the browser, for the pages behind sign-in: the session's user, the page chrome
//! (navigation with the admin links for administrators, sign-out), and the answers for
//! everyone else (sign in first; 403 for a non-admin on an admin page).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use mcpgate_crypto::TokenHash;
use mcpgate_pages::{Chrome, Nav};
use mcpgate_storage::User;

use super::login::error_page;
use super::{csrf, pages, session};
use crate::api::auth::{AdminUser, ApiUser};
use crate::app::AppState;

pub const LOGOUT_FORM: &str = "logout";

/// A signed-in person and their session.
pub struct Person {
    pub user: User,
    /// The hash of the session cookie (names this browser's session).
    pub session: TokenHash,
}

impl Person {
    /// The same person as the admin API's caller, to run the API's own handlers for a form.
    pub fn as_admin(&self) -> AdminUser {
        AdminUser(ApiUser {
            user: self.user.clone(),
            token_hash: self.session,
        })
    }
}

/// The signed-in person, or the response to send instead: to sign-in (coming back to
/// `path`), or an error page.
pub async fn person(state: &AppState, jar: &CookieJar, path: &str) -> Result<Person, Response> {
    match session::current_user(state, jar).await {
        Ok(Some(user)) => {
            let cookie = jar
                .get(session::cookie_name(state.config.is_https()))
                .map(|c| c.value().to_owned())
                .unwrap_or_default();
            Ok(Person {
                user,
                session: TokenHash::of(&cookie),
            })
        }
        // Sign-in returns to `/` by default.
        Ok(None) if path == "/" => Err(Redirect::to("/login").into_response()),
        Ok(None) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", path)
                .finish();
            Err(Redirect::to(&format!("/login?{query}")).into_response())
        }
        Err(e) => Err(error_page(e)),
    }
}

/// A signed-in administrator, or the response to send instead (403 for anyone else).
pub async fn admin(state: &AppState, jar: &CookieJar, path: &str) -> Result<Person, Response> {
    let person = person(state, jar, path).await?;
    if !person.user.is_admin {
        let mut page = pages::message(
            StatusCode::FORBIDDEN,
            "For administrators only",
            "This page is for mcpgate administrators. Ask one if you need something changed.",
        );
        *page.status_mut() = StatusCode::FORBIDDEN;
        return Err(page);
    }
    Ok(person)
}

/// The navigation and sign-out form for `person` on `current`, with a CSRF token for the
/// page's own forms (`purpose`). Returns the jar (the CSRF cookie may be new).
#[allow(
    clippy::result_large_err,
    reason = "the error is the page to send, built once per request, never propagated far"
)]
pub fn chrome(
    state: &AppState,
    jar: CookieJar,
    person: &Person,
    current: &str,
    purpose: &str,
    flash: Option<String>,
) -> Result<(CookieJar, Chrome, String), Response> {
    let (jar, logout) = csrf::issue(state, jar, LOGOUT_FORM).map_err(error_page)?;
    let (jar, token) = csrf::issue(state, jar, purpose).map_err(error_page)?;
    Ok((
        jar,
        Chrome {
            nav: Nav::new(person.user.is_admin, current, logout),
            flash,
            error: None,
        },
        token,
    ))
}

/// A rendered page with its cookies.
pub fn respond(jar: CookieJar, rendered: Result<String, mcpgate_pages::RenderError>) -> Response {
    (jar, pages::page(StatusCode::OK, rendered)).into_response()
}

/// `YYYY-MM-DD HH:MM UTC` for milliseconds since 1970.
pub fn when(ms: i64) -> String {
    let t = crate::api::audit::format_time(ms);
    format!("{} {} UTC", &t[..10], &t[11..16])
}
