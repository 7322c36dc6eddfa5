//! Connect pages: a signed-in person connects their own account at an upstream whose
//! credentials are `user_oauth` (the upstream authorization server's sign-in, then back to
//! `/connect/{upstream}/callback`) or `user_secret` (a form on this page), and lists or
//! disconnects them at `/me/connections`.
//!
//! A connect URL handed to an MCP client carries `elicitation`: sealed (SecretBox, its own
//! purpose and the upstream in the AAD) with the user it was made for and an expiry. It says
//! nothing readable (no token, no personal data), cannot be forged, and another signed-in
//! user opening it is refused (the MCP spec's phishing rule for URL elicitation). The pending
//! authorization (PKCE verifier, state, registered client) rides in a cookie sealed for the
//! signed-in user, so the callback completes only in the browser and for the user that
//! started it; nothing is stored until the code exchange succeeds.

use std::collections::HashMap;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_core::SecretString;
use mcpgate_credentials::user_oauth::{
    Callback, ClientMetadata, Discovery, PendingAuthorization, UpstreamOAuth,
};
use mcpgate_credentials::{CredentialsConfig, UpstreamTarget};
use mcpgate_crypto::Place;
use mcpgate_storage::{User, now_ms};
use serde::{Deserialize, Serialize};
use url::Url;

use mcpgate_pages::{ConnectView, ConnectionRow, ConnectionsView, MessageView};

use super::pages;
use super::session::{removal, site_cookie};
use super::{csrf, session};
use crate::app::AppState;
use crate::config::Config;

/// How long a connect URL handed to an MCP client stays valid.
pub const ELICITATION_TTL: Duration = Duration::from_secs(30 * 60);
/// How long the upstream's sign-in may take.
const PENDING_TTL_MS: i64 = 10 * 60 * 1000;
/// Longest `elicitation` value accepted (a sealed id is far shorter).
const MAX_ELICITATION_LEN: usize = 1024;
/// Connections listed at most on `/me/connections`.
const MAX_LISTED: i64 = 200;
const CONNECT_FORM: &str = "connect";
const DISCONNECT_FORM: &str = "disconnect";

fn pending_cookie(https: bool) -> &'static str {
    if https {
        "__Host-mcpgate_connect"
    } else {
        "mcpgate_connect"
    }
}

/// How an upstream is connected.
pub enum ConnectorKind {
    OAuth(Box<UpstreamOAuth>),
    Secret,
}

/// One upstream users connect their own account to.
pub struct Connector {
    pub upstream: String,
    pub display_name: String,
    pub kind: ConnectorKind,
}

/// The upstreams with a per-user kind, by name.
#[derive(Default)]
pub struct Connectors(HashMap<String, Connector>);

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Connectors {
    /// From the (validated) configuration: every upstream with `user_oauth` or `user_secret`.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        for (i, upstream) in config.upstreams.iter().enumerate() {
            let path = format!("upstreams[{i}].credentials");
            for entry in upstream.credentials.entries() {
                let connector = match entry {
                    CredentialsConfig::UserOauth(c) => {
                        let target = UpstreamTarget {
                            name: upstream.name.clone(),
                            url: Url::parse(&upstream.url)?,
                            timeout: Duration::from_millis(upstream.response_timeout_ms)
                                .mul_f64(0.8),
                        };
                        let http = mcpgate_credentials::default_client()
                            .map_err(|e| anyhow::anyhow!(e))?;
                        let client =
                            UpstreamOAuth::new(&target, c, http, &path).map_err(|errors| {
                                let lines: Vec<String> = errors
                                    .iter()
                                    .map(|e| format!("{}: {}", e.path, e.message))
                                    .collect();
                                anyhow::anyhow!("{}", lines.join("; "))
                            })?;
                        Connector {
                            upstream: upstream.name.clone(),
                            display_name: client.display_name().to_owned(),
                            kind: ConnectorKind::OAuth(Box::new(client)),
                        }
                    }
                    CredentialsConfig::UserSecret(c) => Connector {
                        upstream: upstream.name.clone(),
                        display_name: c
                            .display_name
                            .clone()
                            .unwrap_or_else(|| upstream.name.clone()),
                        kind: ConnectorKind::Secret,
                    },
                    _ => continue,
                };
                map.insert(upstream.name.clone(), connector);
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, upstream: &str) -> Option<&Connector> {
        self.0.get(upstream)
    }

    fn sorted(&self) -> Vec<&Connector> {
        let mut all: Vec<&Connector> = self.0.values().collect();
        all.sort_by(|a, b| a.upstream.cmp(&b.upstream));
        all
    }
}

/// What a connect URL's `elicitation` says, sealed.
#[derive(Serialize, Deserialize)]
struct Elicitation {
    /// The user the elicitation was made for.
    u: String,
    /// Unix milliseconds.
    exp: i64,
    /// Random: each URL is distinct (and an elicitation id for the client).
    n: String,
}

fn elicitation_place(upstream: &str) -> Place<'_> {
    Place::new("connect", "elicitation", upstream)
}

/// The connect URL for `user_id` at `upstream`, to hand to their MCP client.
pub fn connect_url(state: &AppState, user_id: &str, upstream: &str) -> Option<String> {
    let n = session::random_value().ok()?;
    let json = serde_json::to_vec(&Elicitation {
        u: user_id.to_owned(),
        exp: now_ms().saturating_add(ELICITATION_TTL.as_millis() as i64),
        n,
    })
    .ok()?;
    let sealed = state
        .secret_box
        .seal(&json, &elicitation_place(upstream))
        .ok()?;
    Some(format!(
        "{}/connect/{upstream}?elicitation={}",
        state.config.issuer(),
        URL_SAFE_NO_PAD.encode(sealed)
    ))
}

/// Why an `elicitation` cannot be used by this user.
enum Refusal {
    Invalid,
    OtherUser,
}

fn check_elicitation(
    state: &AppState,
    upstream: &str,
    value: &str,
    user: &User,
) -> Result<(), Refusal> {
    if value.len() > MAX_ELICITATION_LEN {
        return Err(Refusal::Invalid);
    }
    let sealed = URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| Refusal::Invalid)?;
    let clear = state
        .secret_box
        .open(&sealed, &elicitation_place(upstream))
        .map_err(|_| Refusal::Invalid)?;
    let e: Elicitation = serde_json::from_slice(&clear).map_err(|_| Refusal::Invalid)?;
    if e.exp < now_ms() {
        return Err(Refusal::Invalid);
    }
    if !mcpgate_crypto::constant_time_eq(e.u.as_bytes(), user.id.as_bytes()) {
        return Err(Refusal::OtherUser);
    }
    Ok(())
}

fn refused(connector: &Connector, why: Refusal, user: &User) -> Response {
    match why {
        Refusal::Invalid => pages::message(
            StatusCode::BAD_REQUEST,
            "Connect link not valid",
            &format!(
                "This link to connect {} is invalid or expired. Run the tool again from your \
                 MCP client for a new one, or connect from your connections page.",
                connector.display_name
            ),
        ),
        Refusal::OtherUser => {
            tracing::warn!(
                user.id = %user.id,
                upstream = %connector.upstream,
                "connect link opened by another user than the one it was made for"
            );
            pages::message(
                StatusCode::FORBIDDEN,
                "This link is for another account",
                &format!(
                    "This link to connect {} was made for another account than the one \
                     signed in here ({}). Nothing was connected. If you did not ask for it, \
                     someone may be trying to get your account connected to theirs: close \
                     this page.",
                    connector.display_name, &user.email
                ),
            )
        }
    }
}

fn unknown_upstream() -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "Nothing to connect",
        "No upstream of this name takes a connected account.",
    )
}

fn sign_in_first(path_and_query: &str) -> Response {
    let to: String = url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
    Redirect::to(&format!("/login?return_to={to}")).into_response()
}

/// The signed-in user, or the page to show instead.
async fn signed_in(state: &AppState, jar: &CookieJar, here: &str) -> Result<User, Response> {
    match session::current_user(state, jar).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(sign_in_first(here)),
        Err(e) => Err(super::login::error_page(e)),
    }
}

#[derive(Deserialize)]
pub struct ConnectQuery {
    elicitation: Option<String>,
}

fn here(upstream: &str, elicitation: Option<&str>) -> String {
    match elicitation {
        Some(e) => {
            let e: String = url::form_urlencoded::byte_serialize(e.as_bytes()).collect();
            format!("/connect/{upstream}?elicitation={e}")
        }
        None => format!("/connect/{upstream}"),
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `GET /connect/{upstream}`: what will be connected, and the button (or the secret form).
pub async fn show(
    State(state): State<AppState>,
    Path(upstream): Path<String>,
    jar: CookieJar,
    Query(query): Query<ConnectQuery>,
) -> Response {
    let Some(connector) = state.connectors.get(&upstream) else {
        return unknown_upstream();
    };
    let user = match signed_in(&state, &jar, &here(&upstream, query.elicitation.as_deref())).await {
        Ok(u) => u,
        Err(page) => return page,
    };
    if let Some(e) = &query.elicitation
        && let Err(why) = check_elicitation(&state, &upstream, e, &user)
    {
        return refused(connector, why, &user);
    }
    let (jar, token) = match csrf::issue(&state, jar, CONNECT_FORM) {
        Ok(t) => t,
        Err(e) => return super::login::error_page(e),
    };
    let view = ConnectView {
        title: format!("Connect {}", connector.display_name),
        name: connector.display_name.clone(),
        upstream: upstream.clone(),
        who: user.email.clone(),
        csrf: token,
        elicitation: query.elicitation.clone().unwrap_or_default(),
        secret: matches!(connector.kind, ConnectorKind::Secret),
    };
    let page = match &connector.kind {
        ConnectorKind::OAuth(client) => {
            // The form's redirect ends at the upstream's authorization server: the page's
            // form-action must name it, so discovery happens here (and shows a down server
            // before anything starts).
            let discovery = match client.discover().await {
                Ok(d) => d,
                Err(e) => return as_down(connector, &e),
            };
            pages::page_posting_to(
                StatusCode::OK,
                view.render(),
                &[&origin(&discovery.server.authorization_endpoint)],
            )
        }
        ConnectorKind::Secret => pages::page(StatusCode::OK, view.render()),
    };
    (jar, page).into_response()
}

fn as_down(connector: &Connector, e: &mcpgate_credentials::CredentialError) -> Response {
    tracing::warn!(upstream = %connector.upstream, error = %e, "connect: authorization server");
    pages::message(
        StatusCode::BAD_GATEWAY,
        "Cannot connect right now",
        &format!(
            "The authorization server of {} could not be reached or refused the request. \
             Nothing was stored. Try again later.",
            connector.display_name
        ),
    )
}

/// Every field optional, so a malformed post gets a page, not a bare 422.
#[derive(Deserialize)]
pub struct ConnectForm {
    csrf: Option<String>,
    elicitation: Option<String>,
    secret: Option<String>,
}

/// What the pending-authorization cookie holds, sealed for the user.
#[derive(Serialize, Deserialize)]
struct Pending {
    upstream: String,
    exp: i64,
    authorization: PendingAuthorization,
}

fn pending_place(user_id: &str) -> Place<'_> {
    Place::new("cookies", "connect_pending", user_id)
}

fn callback_url(state: &AppState, upstream: &str) -> Option<Url> {
    Url::parse(&format!(
        "{}/connect/{upstream}/callback",
        state.config.issuer()
    ))
    .ok()
}

/// `POST /connect/{upstream}`: starts the upstream's sign-in, or stores the secret.
pub async fn submit(
    State(state): State<AppState>,
    Path(upstream): Path<String>,
    jar: CookieJar,
    form: Result<Form<ConnectForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(connector) = state.connectors.get(&upstream) else {
        return unknown_upstream();
    };
    let Ok(Form(form)) = form else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Bad form",
            "The form could not be read. Reload the page and try again.",
        );
    };
    let user = match signed_in(&state, &jar, &here(&upstream, None)).await {
        Ok(u) => u,
        Err(page) => return page,
    };
    if let Err(e) = csrf::check(
        &state,
        &jar,
        CONNECT_FORM,
        form.csrf.as_deref().unwrap_or(""),
    ) {
        return super::login::error_page(e);
    }
    if let Some(e) = form.elicitation.as_deref().filter(|e| !e.is_empty())
        && let Err(why) = check_elicitation(&state, &upstream, e, &user)
    {
        return refused(connector, why, &user);
    }
    match &connector.kind {
        ConnectorKind::Secret => {
            let value = SecretString::new(form.secret.unwrap_or_default());
            match state
                .user_connections
                .set_secret(&user.id, &upstream, &value)
                .await
            {
                Ok(()) => {
                    tracing::info!(user.id = %user.id, upstream, "user secret stored");
                    connected(connector)
                }
                Err(crate::proxy::user_connections::StoreError::Invalid) => pages::message(
                    StatusCode::BAD_REQUEST,
                    "Key not accepted",
                    &format!(
                        "The {} key is empty, too long or contains characters a header \
                         cannot carry. Nothing was stored.",
                        connector.display_name
                    ),
                ),
                Err(e) => {
                    tracing::warn!(upstream, error = %e, "user secret not stored");
                    pages::message(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Not saved",
                        "The key could not be stored. Try again shortly.",
                    )
                }
            }
        }
        ConnectorKind::OAuth(client) => {
            let Some(redirect_uri) = callback_url(&state, &upstream) else {
                return unknown_upstream();
            };
            let discovery: Discovery = match client.discover().await {
                Ok(d) => d,
                Err(e) => return as_down(connector, &e),
            };
            let me = ClientMetadata {
                redirect_uri: redirect_uri.clone(),
                client_name: "mcpgate".to_owned(),
                metadata_document: None,
            };
            let registered = match client.register(&discovery, &me).await {
                Ok(c) => c,
                Err(e) => return as_down(connector, &e),
            };
            let (url, authorization) = client.authorize(discovery, registered, redirect_uri);
            let pending = Pending {
                upstream: upstream.clone(),
                exp: now_ms().saturating_add(PENDING_TTL_MS),
                authorization,
            };
            let sealed = serde_json::to_vec(&pending).ok().and_then(|json| {
                let json = zeroize::Zeroizing::new(json);
                state.secret_box.seal(&json, &pending_place(&user.id)).ok()
            });
            let Some(sealed) = sealed else {
                return pages::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Cannot connect right now",
                    "The sign-in could not be started. Try again.",
                );
            };
            let https = state.config.is_https();
            let jar = jar.add(site_cookie(
                pending_cookie(https),
                URL_SAFE_NO_PAD.encode(sealed),
                https,
            ));
            (jar, Redirect::to(url.as_str())).into_response()
        }
    }
}

fn connected(connector: &Connector) -> Response {
    notice(
        &format!("{} connected", connector.display_name),
        &format!(
            "Your {} account is connected. Go back to your MCP client and run the tool again.",
            connector.display_name
        ),
    )
}

/// A notice page whose way back is the list of connections.
fn notice(title: &str, text: &str) -> Response {
    let mut view = MessageView::new(None, title, text);
    view.back_href = "/me/connections".into();
    view.back_text = "Your connections".into();
    pages::page(StatusCode::OK, view.render())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// `GET /connect/{upstream}/callback`: the upstream's authorization server sends the browser
/// back; the code is exchanged and the grant stored sealed for the user who started.
pub async fn callback(
    State(state): State<AppState>,
    Path(upstream): Path<String>,
    jar: CookieJar,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(connector) = state.connectors.get(&upstream) else {
        return unknown_upstream();
    };
    let ConnectorKind::OAuth(client) = &connector.kind else {
        return unknown_upstream();
    };
    let user = match signed_in(&state, &jar, &here(&upstream, None)).await {
        Ok(u) => u,
        Err(page) => return page,
    };
    let https = state.config.is_https();
    let pending: Option<Pending> = jar
        .get(pending_cookie(https))
        .and_then(|c| URL_SAFE_NO_PAD.decode(c.value()).ok())
        .and_then(|sealed| {
            state
                .secret_box
                .open(&sealed, &pending_place(&user.id))
                .ok()
        })
        .and_then(|json| serde_json::from_slice(&json).ok())
        .filter(|p: &Pending| p.upstream == upstream && p.exp >= now_ms());
    let jar = jar.add(removal(pending_cookie(https), https));
    let fail = |status: StatusCode, text: String| {
        (jar.clone(), pages::message(status, "Not connected", &text)).into_response()
    };
    let Some(pending) = pending else {
        return fail(
            StatusCode::BAD_REQUEST,
            format!(
                "This sign-in to {} was not started in this browser by the account signed in \
                 here, or it expired. Nothing was stored. Start again from your connections \
                 page.",
                connector.display_name
            ),
        );
    };
    if let Some(error) = &query.error {
        let error: String = error.chars().take(64).collect();
        return fail(
            StatusCode::BAD_GATEWAY,
            format!(
                "The authorization server of {} answered {error:?}. Nothing was stored.",
                connector.display_name
            ),
        );
    }
    let (Some(code), Some(st)) = (query.code.as_deref(), query.state.as_deref()) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "The authorization server's answer has no code or state. Nothing was stored."
                .to_owned(),
        );
    };
    let cb = Callback {
        code,
        state: st,
        iss: query.iss.as_deref(),
    };
    let grant = match client.exchange(&pending.authorization, &cb).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(upstream, error = %e, "connect: code exchange failed");
            return fail(
                StatusCode::BAD_GATEWAY,
                format!(
                    "The authorization server of {} did not complete the sign-in ({}). \
                     Nothing was stored.",
                    connector.display_name,
                    match e {
                        mcpgate_credentials::CredentialError::Refused { error, .. } => error,
                        _ => "unreachable or invalid answer".to_owned(),
                    }
                ),
            );
        }
    };
    match state
        .user_connections
        .connect_oauth(&user.id, &upstream, &grant)
        .await
    {
        Ok(_) => {
            tracing::info!(user.id = %user.id, upstream, "account connected");
            (jar, connected(connector)).into_response()
        }
        Err(e) => {
            tracing::warn!(upstream, error = %e, "connect: grant not stored");
            fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "The connection could not be stored. Try again shortly.".to_owned(),
            )
        }
    }
}

/// `GET /me/connections`: every upstream taking a connected account, with this user's state.
pub async fn list(State(state): State<AppState>, jar: CookieJar) -> Response {
    let user = match signed_in(&state, &jar, "/me/connections").await {
        Ok(u) => u,
        Err(page) => return page,
    };
    let rows = match state
        .store
        .list_connected_accounts(&user.id, MAX_LISTED)
        .await
    {
        Ok(r) => r,
        Err(e) => return super::login::error_page(e.into()),
    };
    let (jar, token) = match csrf::issue(&state, jar, DISCONNECT_FORM) {
        Ok(t) => t,
        Err(e) => return super::login::error_page(e),
    };
    let view = ConnectionsView {
        title: "Your connections".into(),
        who: user.email.clone(),
        csrf: token,
        connections: state
            .connectors
            .sorted()
            .into_iter()
            .map(|c| ConnectionRow {
                name: c.display_name.clone(),
                upstream: c.upstream.clone(),
                connected: rows.iter().any(|r| r.upstream == c.upstream),
            })
            .collect(),
    };
    (jar, pages::page(StatusCode::OK, view.render())).into_response()
}

#[derive(Deserialize)]
pub struct DisconnectForm {
    csrf: Option<String>,
}

/// `POST /me/connections/{upstream}/disconnect`: deletes the connection, then revokes the
/// grant at the upstream's authorization server where it offers RFC 7009.
pub async fn disconnect(
    State(state): State<AppState>,
    Path(upstream): Path<String>,
    jar: CookieJar,
    form: Result<Form<DisconnectForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(connector) = state.connectors.get(&upstream) else {
        return unknown_upstream();
    };
    let user = match signed_in(&state, &jar, "/me/connections").await {
        Ok(u) => u,
        Err(page) => return page,
    };
    let token = form.ok().and_then(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(e) = csrf::check(&state, &jar, DISCONNECT_FORM, &token) {
        return super::login::error_page(e);
    }
    let grant = match state.user_connections.disconnect(&user.id, &upstream).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(upstream, error = %e, "disconnect failed");
            return pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not disconnected",
                "The connection could not be deleted. Try again shortly.",
            );
        }
    };
    tracing::info!(user.id = %user.id, upstream, "account disconnected");
    // The row is gone before the network call: no connection is held while revoking.
    let revoked = match (&connector.kind, grant) {
        (ConnectorKind::OAuth(client), Some(grant)) => match client.revoke(&grant).await {
            Ok(true) => " and its token revoked at the upstream",
            Ok(false) => " (the upstream offers no revocation)",
            Err(e) => {
                tracing::warn!(upstream, error = %e, "revocation failed");
                " (revoking at the upstream failed; the token there ends when it expires)"
            }
        },
        _ => "",
    };
    notice(
        &format!("{} disconnected", connector.display_name),
        &format!(
            "Your {} account was disconnected{revoked}.",
            connector.display_name
        ),
    )
}
