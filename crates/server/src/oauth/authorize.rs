//! `GET /oauth/authorize` and the consent decision (`POST /oauth/authorize`).
//!
//! Until the client and its redirect URI are verified, errors are shown to the person and
//! never redirected (RFC 6749 §4.1.2.1: no open redirector). After that, errors go back to the
//! client with `state` and `iss` (RFC 9207). A new client always asks for consent; approval
//! is remembered per user, client and upstream, for the scopes approved: another upstream or
//! a wider scope asks again.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use mcpgate_crypto::TokenKind;
use mcpgate_storage::{AuthorizationCode, User, now_ms};
use serde::Deserialize;
use url::Url;

use super::clients::{self, Client, ClientError};
use super::params::Params;
use super::{redirect, scopes};
use crate::app::AppState;
use crate::error::ApiError;
use crate::web::{csrf, pages, session};

/// A validated authorization request.
pub(crate) struct Request {
    client: Client,
    redirect_uri: String,
    /// Whether the request named `redirect_uri` (else the only registered one is used).
    redirect_uri_sent: bool,
    state: Option<String>,
    code_challenge: String,
    resource: String,
    scopes: String,
}

/// Where an error goes: shown (the client or redirect is not trusted) or sent back.
enum Refusal {
    Show(StatusCode, String),
    Redirect(Response),
}

fn show(status: StatusCode, text: impl Into<String>) -> Refusal {
    Refusal::Show(status, text.into())
}

/// Appends the response parameters (always `iss`) to the client's redirect URI.
fn back_to_client(
    redirect_uri: &str,
    issuer: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Authorization failed",
            "The redirect URI is not valid.",
        );
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    Redirect::to(url.as_str()).into_response()
}

async fn validate(state: &AppState, params: &Params) -> Result<Request, Refusal> {
    let issuer = state.config.issuer();
    let client_id = params.get("client_id").ok_or_else(|| {
        show(
            StatusCode::BAD_REQUEST,
            "The request names no client (client_id is missing).",
        )
    })?;
    let client = match clients::find(state, client_id).await {
        Ok(c) => c,
        Err(ClientError::Unknown) => {
            return Err(show(
                StatusCode::BAD_REQUEST,
                "This client is not known to mcpgate.",
            ));
        }
        Err(ClientError::Document(e)) => {
            return Err(show(
                StatusCode::BAD_REQUEST,
                format!("The client's metadata document was refused: {e}."),
            ));
        }
        Err(ClientError::Api(e)) => {
            return Err(Refusal::Redirect(crate::web::login::error_page(e)));
        }
    };
    let redirect_uri = match (params.get("redirect_uri"), client.redirect_uris.as_slice()) {
        (Some(uri), registered) if redirect::matches(uri, registered) => uri.to_owned(),
        (Some(_), _) => {
            return Err(show(
                StatusCode::BAD_REQUEST,
                "The redirect URI is not registered for this client, so mcpgate will not send you there.",
            ));
        }
        // RFC 6749 §4.1.1: optional when the client registered exactly one.
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(show(
                StatusCode::BAD_REQUEST,
                "The request has no redirect_uri.",
            ));
        }
    };
    let client_state = params.get("state").map(String::from);
    let refuse = |error: &str, description: &str| {
        Refusal::Redirect(back_to_client(
            &redirect_uri,
            &issuer,
            &[("error", error), ("error_description", description)],
            client_state.as_deref(),
        ))
    };
    if params.get("response_type") != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let Some(code_challenge) = params.get("code_challenge") else {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: send code_challenge with S256",
        ));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if mcpgate_crypto::pkce::check_challenge(code_challenge).is_err() {
        return Err(refuse("invalid_request", "code_challenge is malformed"));
    }
    let resource = match params.get("resource") {
        Some(r) => r.to_owned(),
        None => match state.config.upstreams.as_slice() {
            [only] => format!("{issuer}/mcp/{}", only.name),
            _ => {
                return Err(refuse(
                    "invalid_target",
                    "resource is required: the MCP endpoint URL",
                ));
            }
        },
    };
    if !resource_is_known(state, &resource) {
        return Err(refuse(
            "invalid_target",
            "resource is not an MCP endpoint of this gateway",
        ));
    }
    let Some(scopes) = scopes::grantable(params.get("scope")) else {
        return Err(refuse(
            "invalid_scope",
            "none of the requested scopes is supported",
        ));
    };
    Ok(Request {
        client,
        redirect_uri,
        redirect_uri_sent: params.get("redirect_uri").is_some(),
        state: client_state,
        code_challenge: code_challenge.to_owned(),
        resource,
        scopes,
    })
}

/// Whether `resource` is exactly `{issuer}/mcp/{name}` of a configured upstream.
pub fn resource_is_known(state: &AppState, resource: &str) -> bool {
    let issuer = state.config.issuer();
    resource
        .strip_prefix(&issuer)
        .and_then(|rest| rest.strip_prefix("/mcp/"))
        .is_some_and(|name| state.config.upstreams.iter().any(|u| u.name == name))
}

fn consent_purpose(client_id: &str) -> String {
    format!("consent:{client_id}")
}

impl Request {
    pub(crate) fn client_id(&self) -> &str {
        &self.client.client_id
    }

    pub(crate) fn scopes(&self) -> &str {
        &self.scopes
    }

    /// The upstream asked for (its RFC 8707 resource URL).
    pub(crate) fn resource(&self) -> &str {
        &self.resource
    }

    /// The origin of the (verified) redirect URI.
    pub(crate) fn redirect_origin(&self) -> String {
        Url::parse(&self.redirect_uri)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// The person said no: back to the client with `access_denied`.
    pub(crate) fn deny(&self, state: &AppState) -> Response {
        back_to_client(
            &self.redirect_uri,
            &state.config.issuer(),
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ],
            self.state.as_deref(),
        )
    }
}

/// The MCP client's authorization request a sign-in continues, when `return_to` is one:
/// validated exactly as `GET /oauth/authorize` does (an untrusted client or redirect is shown
/// an error page; other errors go back to the client).
pub(crate) async fn request_in(
    state: &AppState,
    return_to: &str,
) -> Option<Result<Request, Response>> {
    let query = return_to.strip_prefix("/oauth/authorize?")?;
    let params = match Params::parse(query) {
        Ok(p) => p,
        Err(e) => {
            return Some(Err(pages::message(
                StatusCode::BAD_REQUEST,
                "Authorization failed",
                &e,
            )));
        }
    };
    Some(validate(state, &params).await.map_err(refusal_response))
}

fn refusal_response(r: Refusal) -> Response {
    match r {
        Refusal::Show(status, text) => pages::message(status, "Authorization failed", &text),
        Refusal::Redirect(response) => response,
    }
}

pub async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let params = match Params::parse(&query) {
        Ok(p) => p,
        Err(e) => return pages::message(StatusCode::BAD_REQUEST, "Authorization failed", &e),
    };
    let request = match validate(&state, &params).await {
        Ok(r) => r,
        Err(r) => return refusal_response(r),
    };
    let user = match session::current_user(&state, &jar).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            let back = format!("/oauth/authorize?{query}");
            let login = format!(
                "/login?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", &back)
                    .finish()
            );
            return Redirect::to(&login).into_response();
        }
        Err(e) => return crate::web::login::error_page(e),
    };
    let approved = match state
        .store
        .get_consent(&user.id, &request.client.client_id, &request.resource)
        .await
    {
        Ok(held) => held.is_some_and(|held| crate::web::consent::covers(&held, &request.scopes)),
        Err(e) => return crate::web::login::error_page(e.into()),
    };
    if approved {
        return issue_code(&state, &request, &user).await;
    }
    let no_access = match no_access_notice(&state, &user.id, &request.resource).await {
        Ok(notice) => notice,
        Err(e) => return crate::web::login::error_page(e),
    };
    match csrf::issue(&state, jar, &consent_purpose(&request.client.client_id)) {
        Ok((jar, token)) => {
            let form = ConsentForm {
                action: "/oauth/authorize",
                fields: &[("csrf", &token), ("request", &query)],
                also_ends_at: None,
                notice: no_access.as_deref(),
            };
            let page = consent_page(&request, Consenter::SignedIn(&user.email), &form);
            (jar, page).into_response()
        }
        Err(e) => crate::web::login::error_page(e),
    }
}

#[derive(Deserialize)]
pub struct Decision {
    request: Option<String>,
    csrf: Option<String>,
    decision: Option<String>,
}

pub async fn decide(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<Decision>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Authorization failed",
            "The consent form was malformed.",
        );
    };
    let query = form.request.unwrap_or_default();
    let params = match Params::parse(&query) {
        Ok(p) => p,
        Err(e) => return pages::message(StatusCode::BAD_REQUEST, "Authorization failed", &e),
    };
    let request = match validate(&state, &params).await {
        Ok(r) => r,
        Err(r) => return refusal_response(r),
    };
    // The token is bound to this browser and to this client: a consent form cannot be
    // replayed, forged from another site, or reused for another client.
    if let Err(e) = csrf::check(
        &state,
        &jar,
        &consent_purpose(&request.client.client_id),
        form.csrf.as_deref().unwrap_or(""),
    ) {
        return crate::web::login::error_page(e);
    }
    let user = match session::current_user(&state, &jar).await {
        Ok(Some(u)) => u,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return crate::web::login::error_page(e),
    };
    if form.decision.as_deref() != Some("approve") {
        tracing::info!(user.id = %user.id, client.id = %request.client.client_id, "consent denied");
        return request.deny(&state);
    }
    if let Err(e) = state
        .store
        .put_consent(
            &user.id,
            &request.client.client_id,
            &request.resource,
            &request.scopes,
        )
        .await
    {
        return crate::web::login::error_page(e.into());
    }
    tracing::info!(user.id = %user.id, client.id = %request.client.client_id, "consent given");
    issue_code(&state, &request, &user).await
}

async fn issue_code(state: &AppState, request: &Request, user: &User) -> Response {
    let (code, hash) = match mcpgate_crypto::token::mint(TokenKind::Code) {
        Ok(minted) => minted,
        Err(e) => return crate::web::login::error_page(crate::accounts::crypto_error(e)),
    };
    let now = now_ms();
    let ttl = i64::try_from(state.config.oauth.code_ttl_secs * 1000).unwrap_or(60_000);
    let record = AuthorizationCode {
        code_hash: hash.as_bytes().to_vec(),
        client_id: request.client.client_id.clone(),
        user_id: user.id.clone(),
        // What the token request must repeat: only a redirect_uri that was sent.
        redirect_uri: if request.redirect_uri_sent {
            request.redirect_uri.clone()
        } else {
            String::new()
        },
        code_challenge: request.code_challenge.clone(),
        resource: request.resource.clone(),
        scopes: request.scopes.clone(),
        family_id: uuid_like(),
        expires_at: now + ttl,
        used_at: None,
        created_at: now,
    };
    if let Err(e) = state.store.insert_code(&record).await {
        return crate::web::login::error_page(e.into());
    }
    state.audit.record(crate::policy::audit::oauth_event(
        "oauth.grant",
        "granted",
        Some(&user.id),
        &request.client.client_id,
        serde_json::json!({ "resource": request.resource, "scopes": request.scopes }),
    ));
    back_to_client(
        &request.redirect_uri,
        &state.config.issuer(),
        &[("code", code.expose())],
        request.state.as_deref(),
    )
}

fn uuid_like() -> String {
    crate::web::session::random_value().unwrap_or_else(|_| format!("family-{}", now_ms()))
}

/// Who is asked: a signed-in person, or one about to sign in with an identity provider.
pub(crate) enum Consenter<'a> {
    SignedIn(&'a str),
    SigningInWith(&'a str),
}

/// Where the consent form posts, its hidden fields, and one more origin its redirect may end
/// at (the identity provider, for consent before signing in there).
pub(crate) struct ConsentForm<'a> {
    pub action: &'a str,
    pub fields: &'a [(&'a str, &'a str)],
    pub also_ends_at: Option<&'a str>,
    /// A warning shown above the buttons (already HTML-safe text is escaped again).
    pub notice: Option<&'a str>,
}

/// For a person with no grant at all on the upstream a client asks for: a warning that says
/// so, before they allow a client whose every request would be refused.
async fn no_access_notice(
    state: &AppState,
    user_id: &str,
    resource: &str,
) -> Result<Option<String>, ApiError> {
    let prefix = format!("{}/mcp/", state.config.issuer());
    let Some(upstream) = resource.strip_prefix(&prefix) else {
        return Ok(None);
    };
    let grants = state.policy.grants_for(user_id, None).await?;
    Ok(
        (!crate::policy::enforce::holds_anything(&grants, upstream)).then(|| {
            format!(
                "You have no access to {upstream} yet: none of your roles grants anything on it. \
             If you allow this client, its requests will be refused until an administrator \
             gives you a role on {upstream}."
            )
        }),
    )
}

pub(crate) fn consent_page(
    request: &Request,
    who: Consenter<'_>,
    form: &ConsentForm<'_>,
) -> Response {
    let client = &request.client;
    let (who_label, who, federating) = match who {
        Consenter::SignedIn(email) => ("Signed in as", email, false),
        Consenter::SigningInWith(provider) => ("Sign in with", provider, true),
    };
    let view = mcpgate_pages::ConsentView {
        client_name: client.name.clone(),
        registration: client.registration.clone(),
        client_host: redirect::host_of(&client.client_id),
        who_label: who_label.into(),
        who: who.to_owned(),
        federating,
        resource: request.resource.clone(),
        redirect_host: redirect::host_of(&request.redirect_uri),
        scopes: request
            .scopes
            .split_ascii_whitespace()
            .map(|s| mcpgate_pages::ScopeLine {
                text: match s {
                    scopes::MCP => "use the tools, resources and prompts you are allowed",
                    scopes::MCP_READ => "list and read tools, resources and prompts",
                    other => other,
                }
                .to_owned(),
                scope: s.to_owned(),
            })
            .collect(),
        notice: form.notice.map(str::to_owned),
        loopback: redirect::all_loopback(&client.redirect_uris),
        action: form.action.to_owned(),
        fields: form
            .fields
            .iter()
            .map(|(name, value)| mcpgate_pages::HiddenField {
                name: (*name).to_owned(),
                value: (*value).to_owned(),
            })
            .collect(),
    };
    // The redirect URI was checked against the client's registration above.
    let origin = request.redirect_origin();
    let mut origins = vec![origin.as_str()];
    origins.extend(form.also_ends_at);
    pages::page_posting_to(StatusCode::OK, view.render(), &origins)
}
