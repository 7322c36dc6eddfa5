//! `GET /login`, `POST /login`, `POST /logout`, `GET /`.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use mcpgate_core::SecretString;
use serde::Deserialize;

use super::pages;
use super::{csrf, device, safe_return_to, session};
use crate::accounts::AccountError;
use crate::app::AppState;
use crate::error::ApiError;

const LOGIN_FORM: &str = "login";
const LOGOUT_FORM: &str = "logout";

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

/// Every field optional, so a malformed post gets a page, not a bare 422.
#[derive(Deserialize)]
pub struct LoginForm {
    email: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
    return_to: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    let return_to = safe_return_to(query.return_to.as_deref());
    render_login(&state, jar, StatusCode::OK, None, "", &return_to)
}

fn render_login(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
    return_to: &str,
) -> Response {
    match csrf::issue(state, jar, LOGIN_FORM) {
        Ok((jar, token)) => {
            let view = mcpgate_pages::LoginView {
                providers: state
                    .providers
                    .iter()
                    .map(|p| mcpgate_pages::Provider {
                        id: p.id().to_owned(),
                        name: p.display_name().to_owned(),
                    })
                    .collect(),
                error: error.map(str::to_owned),
                email: email.to_owned(),
                csrf: token,
                return_to: return_to.to_owned(),
            };
            (jar, pages::page(status, view.render())).into_response()
        }
        Err(e) => error_page(e),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The sign-in form was malformed. Reload the page and try again.",
        );
    };
    let return_to = safe_return_to(form.return_to.as_deref());
    if let Err(e) = csrf::check(&state, &jar, LOGIN_FORM, form.csrf.as_deref().unwrap_or("")) {
        return error_page(e);
    }
    let email = form.email.unwrap_or_default();
    let password = SecretString::new(form.password.unwrap_or_default());
    if email.trim().is_empty() || password.is_empty() {
        return render_login(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            Some("Enter your email and password."),
            &email,
            &return_to,
        );
    }
    let address = state.limits.client_address(peer, &headers);
    let known_browser = device::recognises(&state, &jar, &email);
    if let Err(e) = state.limits.check(address, &email, known_browser) {
        return error_page(e);
    }
    match state.accounts.sign_in(&email, password).await {
        Ok(user) => {
            state.limits.succeeded(address, &email);
            let jar = match device::remember(&state, csrf::rotate(&state, jar), &email) {
                Ok(jar) => jar,
                Err(e) => return error_page(e),
            };
            state.audit.record(crate::policy::audit::sign_in_event(
                Some(&user.id),
                &user.email,
                "password",
                true,
            ));
            match session::start(&state, jar, &user).await {
                Ok(jar) => {
                    tracing::info!(user.id = %user.id, "signed in");
                    (jar, Redirect::to(&return_to)).into_response()
                }
                Err(e) => error_page(e),
            }
        }
        Err(AccountError::InvalidCredentials | AccountError::Policy(_)) => {
            state.limits.failed(address, &email, &state.audit);
            state.audit.record(crate::policy::audit::sign_in_event(
                None, &email, "password", false,
            ));
            render_login(
                &state,
                jar,
                StatusCode::UNAUTHORIZED,
                Some("Invalid email or password."),
                &email,
                &return_to,
            )
        }
        Err(e) => error_page(e.into()),
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let token = form.ok().and_then(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(e) = csrf::check(&state, &jar, LOGOUT_FORM, &token) {
        return error_page(e);
    }
    match session::end(&state, jar).await {
        Ok(jar) => (csrf::rotate(&state, jar), Redirect::to("/login")).into_response(),
        Err(e) => error_page(e),
    }
}

/// An `ApiError` as a page a person can read, keeping its status and `Retry-After`.
pub fn error_page(e: ApiError) -> Response {
    let api = e.into_response();
    let status = api.status();
    let (title, text) = match status {
        StatusCode::FORBIDDEN => (
            "Form expired",
            "This form expired or was not sent from this site. Reload the page and try again.",
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            "Too many attempts",
            "Too many sign-in attempts. Wait a minute and try again.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "Busy",
            "mcpgate is busy right now. Try again in a few seconds.",
        ),
        _ => (
            "Something went wrong",
            "mcpgate could not complete this request.",
        ),
    };
    let mut page = pages::message(status, title, text);
    if let Some(retry) = api.headers().get(header::RETRY_AFTER) {
        page.headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    page
}
