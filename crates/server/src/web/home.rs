//! `/` for every signed-in person: their MCP endpoints to copy with client snippets, the
//! clients they allowed (revoke each), their browser sessions (end the others), and a
//! password change. Every form carries a CSRF token.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::SecretString;
use mcpgate_pages::{ConsentRow, Endpoint, HomeView, SessionRow};
use serde::Deserialize;

use super::login::error_page;
use super::signed_in::{chrome, person, respond, when};
use super::{csrf, pages};
use crate::accounts::AccountError;
use crate::app::AppState;

const HOME_FORM: &str = "home";

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn flash(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "consent" => "The client's access was revoked.",
            "session" => "That session was ended.",
            "password" => "Your password was changed; your other sessions were ended.",
            _ => return None,
        }
        .to_owned(),
    )
}

pub async fn home(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(done): Query<Done>,
) -> Response {
    let person = match person(&state, &jar, "/").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (jar, chrome, token) = match chrome(
        &state,
        jar,
        &person,
        "/",
        HOME_FORM,
        flash(done.done.as_deref()),
    ) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let user = &person.user;
    let (consents, sessions) = match tokio::try_join!(
        state.store.list_user_consents(&user.id),
        state.store.list_user_sessions(&user.id)
    ) {
        Ok(lists) => lists,
        Err(e) => return error_page(e.into()),
    };
    let issuer = state.config.issuer();
    let view = HomeView {
        chrome,
        name: user
            .display_name
            .clone()
            .unwrap_or_else(|| user.email.clone()),
        email: user.email.clone(),
        csrf: token,
        endpoints: state
            .config
            .upstreams
            .iter()
            .map(|u| Endpoint {
                name: u.name.clone(),
                url: format!("{issuer}/mcp/{}", u.name),
            })
            .collect(),
        consents: consents
            .into_iter()
            .map(|c| ConsentRow {
                client_name: c.client_name.unwrap_or_else(|| c.client_id.clone()),
                client_id: c.client_id,
                scopes: c.scopes,
                granted_at: when(c.created_at),
            })
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                current: s.id_hash.as_slice() == person.session.as_bytes().as_slice(),
                id: URL_SAFE_NO_PAD.encode(&s.id_hash),
                created_at: when(s.created_at),
                expires_at: when(s.expires_at),
            })
            .collect(),
        local_account: user.password_hash.is_some(),
    };
    respond(jar, view.render())
}

#[derive(Deserialize)]
pub struct ConsentForm {
    csrf: Option<String>,
    client_id: Option<String>,
}

/// Withdraws the person's consent for a client, and revokes the client's tokens of theirs.
pub async fn revoke_consent(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<ConsentForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let person = match person(&state, &jar, "/").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(Form(form)) = form else {
        return malformed();
    };
    if let Err(e) = csrf::check(&state, &jar, HOME_FORM, form.csrf.as_deref().unwrap_or("")) {
        return error_page(e);
    }
    let client_id = form.client_id.unwrap_or_default();
    let user_id = &person.user.id;
    let result = async {
        state.store.delete_consent(user_id, &client_id).await?;
        for family in state.store.list_user_families(user_id).await? {
            if family.client_id.as_deref() == Some(client_id.as_str())
                && family.revoked_at.is_none()
            {
                state.store.revoke_token_family(&family.id).await?;
                state.tokens.invalidate_family(&family.id).await;
            }
        }
        Ok::<_, mcpgate_storage::StorageError>(())
    }
    .await;
    match result {
        Ok(()) => {
            state.audit.record(crate::policy::audit::oauth_event(
                "oauth.consent.revoke",
                "revoked",
                Some(user_id),
                &client_id,
                serde_json::json!({}),
            ));
            Redirect::to("/?done=consent").into_response()
        }
        Err(mcpgate_storage::StorageError::NotFound) => pages::message(
            StatusCode::NOT_FOUND,
            "Nothing to revoke",
            "You have not allowed that client.",
        ),
        Err(e) => error_page(e.into()),
    }
}

#[derive(Deserialize)]
pub struct SessionForm {
    csrf: Option<String>,
    session: Option<String>,
}

/// Ends one of the person's other browser sessions.
pub async fn end_session(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<SessionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let person = match person(&state, &jar, "/").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(Form(form)) = form else {
        return malformed();
    };
    if let Err(e) = csrf::check(&state, &jar, HOME_FORM, form.csrf.as_deref().unwrap_or("")) {
        return error_page(e);
    }
    let hash = match crate::api::accounts::session_hash(form.session.as_deref().unwrap_or("")) {
        Ok(h) => h,
        Err(e) => return error_page(e),
    };
    match state
        .store
        .delete_user_session(&person.user.id, &hash)
        .await
    {
        Ok(()) => Redirect::to("/?done=session").into_response(),
        Err(mcpgate_storage::StorageError::NotFound) => pages::message(
            StatusCode::NOT_FOUND,
            "No such session",
            "That session has already ended.",
        ),
        Err(e) => error_page(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
}

/// Changes the person's password; their other sessions and tokens end, this one stays.
pub async fn change_password(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<PasswordForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let person = match person(&state, &jar, "/").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(Form(form)) = form else {
        return malformed();
    };
    if let Err(e) = csrf::check(&state, &jar, HOME_FORM, form.csrf.as_deref().unwrap_or("")) {
        return error_page(e);
    }
    let result = state
        .accounts
        .change_password(
            &person.user.id,
            SecretString::new(form.current_password.unwrap_or_default()),
            SecretString::new(form.new_password.unwrap_or_default()),
            None,
        )
        .await;
    match result {
        Ok(()) => {
            state.tokens.invalidate_user(&person.user.id).await;
            // Every session ended with the change; this browser gets a fresh one.
            match super::session::start(&state, jar, &person.user).await {
                Ok(jar) => (jar, Redirect::to("/?done=password")).into_response(),
                Err(e) => error_page(e),
            }
        }
        Err(AccountError::InvalidCredentials) => back_home(
            StatusCode::BAD_REQUEST,
            "Password not changed",
            "The current password is not right.",
        ),
        Err(AccountError::Policy(p)) => back_home(
            StatusCode::BAD_REQUEST,
            "Password not changed",
            &p.to_string(),
        ),
        Err(e) => error_page(e.into()),
    }
}

fn malformed() -> Response {
    pages::message(
        StatusCode::BAD_REQUEST,
        "Form not understood",
        "The form was malformed. Reload the page and try again.",
    )
}

fn back_home(status: StatusCode, title: &str, text: &str) -> Response {
    let mut view = mcpgate_pages::MessageView::new(Some(status.as_u16()), title, text);
    view.back_href = "/".into();
    view.back_text = "Back to your page".into();
    pages::page(status, view.render())
}
