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
use super::pages::{escape, page};
use super::{csrf, session};
use crate::app::AppState;
use crate::error::ApiError;
use crate::oauth::personal::{self, NewToken, TokenView};

/// The shared stylesheet styles only the sign-in inputs; these take the same look inline.
const INPUT_STYLE: &str = "display:block;width:100%;min-height:2.75rem;padding:.6rem .75rem;\
font:inherit;color:inherit;background:var(--card);border:1px solid var(--line);border-radius:8px";

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
    let (jar, create_csrf) = match csrf::issue(state, jar, CREATE_FORM) {
        Ok(issued) => issued,
        Err(e) => return error_page(e),
    };
    let (jar, revoke_csrf) = match csrf::issue(state, jar, REVOKE_FORM) {
        Ok(issued) => issued,
        Err(e) => return error_page(e),
    };
    let mut body = String::from(
        "<div class=\"card\"><h1>Personal access tokens</h1>\
         <p class=\"sub\">For scripts: send one as <code>Authorization: Bearer</code>. A token \
         never has more rights than you have at the time of each call.</p>",
    );
    if let Some(e) = error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(e)
        ));
    }
    if let Some(token) = created {
        body.push_str(&format!(
            "<div class=\"note\" role=\"status\"><p>Your new token — copy it now, it will not \
             be shown again:</p><p><code id=\"new-token\">{}</code></p></div>",
            escape(token)
        ));
    }
    let views: Vec<TokenView> = tokens.iter().map(TokenView::from).collect();
    if views.is_empty() {
        body.push_str("<p class=\"status\">You have no tokens yet.</p>");
    }
    for t in &views {
        let status = if t.revoked {
            "revoked".to_owned()
        } else if t.active {
            format!("expires {}", date(t.expires_at))
        } else {
            "expired".to_owned()
        };
        let used = t.last_used_at.map(date).unwrap_or_else(|| "never".into());
        body.push_str(&format!(
            "<dl class=\"facts\"><dt>Name</dt><dd>{name}</dd><dt>Upstreams</dt><dd>{ups}</dd>\
             <dt>Scope</dt><dd>{scope}</dd><dt>Status</dt><dd>{status}</dd>\
             <dt>Last used</dt><dd>{used}</dd></dl>",
            name = escape(&t.name),
            ups = escape(&t.upstreams.join(", ")),
            scope = escape(&t.scope),
        ));
        if t.active {
            body.push_str(&format!(
                "<form method=\"post\" action=\"/me/tokens/{id}/revoke\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\" class=\"secondary\">Revoke {name}</button></form>",
                id = escape(&t.id),
                csrf = escape(&revoke_csrf),
                name = escape(&t.name),
            ));
        }
    }
    body.push_str(&format!(
        "<h1 style=\"margin-top:2rem\">New token</h1>\
         <form method=\"post\" action=\"/me/tokens\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"name\">Name</label>\
         <input id=\"name\" name=\"name\" type=\"text\" required maxlength=\"100\" \
         style=\"{INPUT_STYLE}\">",
        csrf = escape(&create_csrf),
    ));
    body.push_str("<fieldset><legend>Upstreams</legend>");
    for u in &state.config.upstreams {
        body.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"upstream\" value=\"{n}\"> {n}</label>",
            n = escape(&u.name)
        ));
    }
    body.push_str("</fieldset><fieldset><legend>Scope</legend>");
    for (i, (value, label)) in SCOPE_CHOICES.iter().enumerate() {
        body.push_str(&format!(
            "<label><input type=\"radio\" name=\"scope\" value=\"{value}\"{checked}> {label}</label>",
            checked = if i == 0 { " checked" } else { "" },
        ));
    }
    let settings = &state.config.oauth.personal_tokens;
    body.push_str(&format!(
        "</fieldset><label for=\"days\">Expires in (days, at most {max})</label>\
         <input id=\"days\" name=\"expires_in_days\" type=\"number\" min=\"1\" max=\"{max}\" \
         value=\"{default}\" style=\"{INPUT_STYLE}\">\
         <button type=\"submit\">Create token</button></form></div>\
         <footer><a href=\"/\">Back</a> · signed in as {email}</footer>",
        max = settings.max_lifetime_days,
        default = settings.default_lifetime_days,
        email = escape(&user.email),
    ));
    (jar, page(StatusCode::OK, "Personal access tokens", &body)).into_response()
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
