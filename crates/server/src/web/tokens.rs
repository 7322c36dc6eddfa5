//! `/me/tokens`: the signed-in person's personal access tokens — list, create (the token is
//! shown once, on the page that answers the form), revoke. The same rules as
//! `/api/v1/me/tokens` (see `oauth::personal`); every form carries a CSRF token. Kept small and
//! self-contained: the page's markup is here, the look is the shared `pages::page`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use mcpgate_storage::{PersonalToken, User};

use super::login::error_page;
use mcpgate_pages::{Chrome, Nav, ScopeChoice, TokenRow, TokensView};

use super::pages::page;
use super::{csrf, session};
use crate::app::AppState;
use crate::error::ApiError;
use crate::oauth::personal::{self, NewToken, TokenView};

const CREATE_FORM: &str = "pat-create";
const REVOKE_FORM: &str = "pat-revoke";

/// Scope choices offered on the page: (value, label).
const SCOPE_CHOICES: &[(&str, &str)] = &[
    ("mcp api", "Use the upstreams, and the API"),
    ("mcp", "Use the upstreams"),
    ("mcp:read", "List and read only"),
];

async fn signed_in(state: &AppState, jar: &CookieJar) -> Result<Option<User>, ApiError> {
    session::current_user(state, jar).await
}

fn date(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "-".into(),
    }
}

fn render(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    tokens: &[PersonalToken],
    created: Option<&str>,
    error: Option<&str>,
) -> Response {
    let issued =
        csrf::issue(state, jar, super::signed_in::LOGOUT_FORM).and_then(|(jar, logout)| {
            let (jar, create) = csrf::issue(state, jar, CREATE_FORM)?;
            let (jar, revoke) = csrf::issue(state, jar, REVOKE_FORM)?;
            Ok((jar, logout, create, revoke))
        });
    let (jar, logout, create_csrf, revoke_csrf) = match issued {
        Ok(issued) => issued,
        Err(e) => return error_page(e),
    };
    let rows = tokens
        .iter()
        .map(TokenView::from)
        .map(|t| TokenRow {
            status: if t.revoked {
                "revoked".to_owned()
            } else if t.active {
                format!("expires {}", date(t.expires_at))
            } else {
                "expired".to_owned()
            },
            last_used: t.last_used_at.map(date).unwrap_or_else(|| "never".into()),
            upstreams: t.upstreams.join(", "),
            id: t.id,
            name: t.name,
            scope: t.scope,
            active: t.active,
        })
        .collect();
    let settings = &state.config.oauth.personal_tokens;
    let view = TokensView {
        chrome: Chrome {
            nav: Nav::new(user.is_admin, "/me/tokens", logout),
            flash: None,
            error: error.map(str::to_owned),
        },
        tokens: rows,
        created: created.map(str::to_owned),
        create_csrf,
        revoke_csrf,
        upstreams: state
            .config
            .upstreams
            .iter()
            .map(|u| u.name.clone())
            .collect(),
        scopes: SCOPE_CHOICES
            .iter()
            .map(|(value, label)| ScopeChoice {
                value: (*value).into(),
                label: (*label).into(),
            })
            .collect(),
        max_days: settings.max_lifetime_days,
        default_days: settings.default_lifetime_days,
    };
    (jar, page(StatusCode::OK, view.render())).into_response()
}

/// `GET /me/tokens`.
pub async fn show(State(state): State<AppState>, jar: CookieJar) -> Response {
    let user = match signed_in(&state, &jar).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to("/login?return_to=/me/tokens").into_response(),
        Err(e) => return error_page(e),
    };
    match state.store.list_personal_tokens(&user.id).await {
        Ok(tokens) => render(&state, jar, &user, &tokens, None, None),
        Err(e) => error_page(e.into()),
    }
}

/// `POST /me/tokens`: `csrf`, `name`, `upstream` (repeated), `scope`, `expires_in_days`.
pub async fn create(State(state): State<AppState>, jar: CookieJar, body: String) -> Response {
    let user = match signed_in(&state, &jar).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to("/login?return_to=/me/tokens").into_response(),
        Err(e) => return error_page(e),
    };
    let mut csrf_token = String::new();
    let mut new = NewToken {
        name: String::new(),
        upstreams: Vec::new(),
        scope: None,
        expires_in_days: None,
    };
    let mut bad_days = false;
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        match &*k {
            "csrf" => csrf_token = v.into_owned(),
            "name" => new.name = v.into_owned(),
            "upstream" if new.upstreams.len() < 64 => new.upstreams.push(v.into_owned()),
            "scope" => new.scope = Some(v.into_owned()),
            "expires_in_days" if !v.trim().is_empty() => match v.trim().parse() {
                Ok(days) => new.expires_in_days = Some(days),
                Err(_) => bad_days = true,
            },
            _ => {}
        }
    }
    if let Err(e) = csrf::check(&state, &jar, CREATE_FORM, &csrf_token) {
        return error_page(e);
    }
    let outcome = if bad_days {
        Err(ApiError::BadRequest(
            "expires_in_days must be a number".into(),
        ))
    } else {
        personal::create(&state, &user.id, &new).await
    };
    let (created, error) = match &outcome {
        Ok((token, _)) => (Some(token.expose()), None),
        Err(ApiError::BadRequest(d) | ApiError::Conflict(d)) => (None, Some(d.as_str())),
        Err(_) => (None, Some("the token could not be created; try again")),
    };
    match state.store.list_personal_tokens(&user.id).await {
        Ok(tokens) => render(&state, jar, &user, &tokens, created, error),
        Err(e) => error_page(e.into()),
    }
}

/// `POST /me/tokens/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let user = match signed_in(&state, &jar).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to("/login?return_to=/me/tokens").into_response(),
        Err(e) => return error_page(e),
    };
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if let Err(e) = csrf::check(&state, &jar, REVOKE_FORM, &token) {
        return error_page(e);
    }
    match personal::revoke(&state, &user.id, &id).await {
        Ok(_) => Redirect::to("/me/tokens").into_response(),
        Err(e) => error_page(e),
    }
}
