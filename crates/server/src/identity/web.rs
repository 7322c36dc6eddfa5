//! Federated sign-in: `GET /login/{provider}` sends the browser to the identity provider;
//! `GET /callback/{provider}` comes back, exactly once, from the same browser.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use mcpgate_core::{AuthorizationRequest, SecretString, UserContext};
use mcpgate_crypto::{Place, TokenHash};
use mcpgate_storage::{GrantTokens, NewUser, PendingLogin, StorageError, User, now_ms};
use serde::Deserialize;

use super::place;
use crate::app::AppState;
use crate::oauth::authorize;
use crate::web::session::{random_value, removal, site_cookie};
use crate::web::{consent, csrf, pages, safe_return_to, session};

/// A pending sign-in lives this long (the provider's login page must be finished within it).
const PENDING_TTL_MS: i64 = 10 * 60 * 1000;

fn binding_cookie(https: bool) -> &'static str {
    if https {
        "__Host-mcpgate_login"
    } else {
        "mcpgate_login"
    }
}

fn failed(status: StatusCode, text: &str) -> Response {
    pages::message(status, "Sign-in failed", text)
}

#[derive(Deserialize)]
pub struct Start {
    return_to: Option<String>,
    login_hint: Option<String>,
}

/// `GET /login/{provider}`: on to the identity provider. When the sign-in continues an MCP
/// client's authorization and this browser has not approved that client yet, the consent
/// page comes first: nothing is stored and nobody is sent to the provider before consent.
pub async fn start(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    jar: CookieJar,
    Query(query): Query<Start>,
) -> Response {
    let Some(provider) = state.providers.get(&provider_id).cloned() else {
        return not_configured();
    };
    let return_to = safe_return_to(query.return_to.as_deref());
    // Consent is needed when the sign-in continues a client's authorization this browser has
    // not approved yet.
    let request = match authorize::request_in(&state, &return_to).await {
        Some(Ok(r))
            if !consent::approved(&state, &jar, r.client_id(), r.resource(), r.scopes()) =>
        {
            r
        }
        Some(Err(refused)) => return refused,
        _ => {
            let hint = query.login_hint;
            return federate(&state, jar, &provider_id, &provider, &return_to, hint, None).await;
        }
    };
    let (jar, token) = match csrf::issue(&state, jar, &federation_purpose(request.client_id())) {
        Ok(issued) => issued,
        Err(e) => return crate::web::login::error_page(e),
    };
    let mut fields = vec![("csrf", token.as_str()), ("return_to", return_to.as_str())];
    if let Some(hint) = query.login_hint.as_deref() {
        fields.push(("login_hint", hint));
    }
    // The form goes on to the provider: its origin must be known for the page's CSP, and a
    // provider that cannot even be discovered now would fail right after the approval.
    let Some(provider_origin) = provider_origin(&state, &provider_id, &provider).await else {
        return failed(
            StatusCode::BAD_GATEWAY,
            "The identity provider cannot be reached right now. Try again in a moment.",
        );
    };
    let action = format!("/login/{provider_id}");
    let form = authorize::ConsentForm {
        action: &action,
        fields: &fields,
        also_ends_at: Some(&provider_origin),
        // Who signs in is not known yet: what they may use follows from the sign-in.
        notice: None,
    };
    let page = authorize::consent_page(
        &request,
        authorize::Consenter::SigningInWith(provider.display_name()),
        &form,
    );
    (jar, page).into_response()
}

#[derive(Deserialize)]
pub struct Approve {
    csrf: Option<String>,
    return_to: Option<String>,
    login_hint: Option<String>,
    decision: Option<String>,
}

/// `POST /login/{provider}`: the answer to the consent page shown before federating.
pub async fn approve(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    jar: CookieJar,
    form: Result<Form<Approve>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return failed(StatusCode::BAD_REQUEST, "The consent form was malformed.");
    };
    let Some(provider) = state.providers.get(&provider_id).cloned() else {
        return not_configured();
    };
    let return_to = safe_return_to(form.return_to.as_deref());
    let request = match authorize::request_in(&state, &return_to).await {
        Some(Ok(r)) => r,
        Some(Err(refused)) => return refused,
        None => {
            return failed(
                StatusCode::BAD_REQUEST,
                "There is no client authorization to approve.",
            );
        }
    };
    // Bound to this browser and this client: a consent form for one client cannot approve
    // another, and no other site can submit it.
    if let Err(e) = csrf::check(
        &state,
        &jar,
        &federation_purpose(request.client_id()),
        form.csrf.as_deref().unwrap_or(""),
    ) {
        return crate::web::login::error_page(e);
    }
    if form.decision.as_deref() != Some("approve") {
        tracing::info!(client.id = %request.client_id(), provider = %provider_id, "consent denied before sign-in");
        return request.deny(&state);
    }
    let jar = match consent::remember(
        &state,
        jar,
        request.client_id(),
        request.resource(),
        request.scopes(),
    ) {
        Ok(jar) => jar,
        Err(e) => return crate::web::login::error_page(e),
    };
    tracing::info!(client.id = %request.client_id(), provider = %provider_id, "consent given before sign-in");
    let consented = Consented {
        client_id: request.client_id().to_owned(),
        resource: request.resource().to_owned(),
        scopes: request.scopes().to_owned(),
    };
    federate(
        &state,
        jar,
        &provider_id,
        &provider,
        &return_to,
        form.login_hint,
        Some(consented),
    )
    .await
}

fn federation_purpose(client_id: &str) -> String {
    format!("federate:{client_id}")
}

fn not_configured() -> Response {
    failed(
        StatusCode::NOT_FOUND,
        "This sign-in method is not configured.",
    )
}

/// The consent given on the way (recorded for the user at the callback, so the authorization
/// then goes on without asking twice).
#[derive(serde::Serialize, Deserialize)]
struct Consented {
    client_id: String,
    /// The upstream consented to (empty in a login started before consent named one: then
    /// nothing is recorded and the person is asked again).
    #[serde(default)]
    resource: String,
    scopes: String,
}

/// What a pending login carries besides its secrets.
#[derive(serde::Serialize, Deserialize)]
struct Continuation {
    return_to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consented: Option<Consented>,
}

/// The origin of the provider's authorization endpoint (for the consent form's CSP).
async fn provider_origin(
    state: &AppState,
    provider_id: &str,
    provider: &std::sync::Arc<dyn mcpgate_core::IdentityProvider>,
) -> Option<String> {
    let probe = AuthorizationRequest {
        redirect_uri: callback_url(state, provider_id),
        state: "probe".into(),
        nonce: "probe".into(),
        code_challenge: "probe".into(),
        login_hint: None,
    };
    let url = provider.authorization_url(&probe).await.ok()?;
    Some(url.origin().ascii_serialization())
}

/// Stores the pending login (state, nonce, sealed PKCE verifier, where to go on, bound to
/// this browser) and sends the browser to the provider.
async fn federate(
    state: &AppState,
    jar: CookieJar,
    provider_id: &str,
    provider: &std::sync::Arc<dyn mcpgate_core::IdentityProvider>,
    return_to: &str,
    login_hint: Option<String>,
    consented: Option<Consented>,
) -> Response {
    let https = state.config.is_https();
    let result = async {
        let binding = random_value()?;
        let csprng =
            |e: mcpgate_crypto::CryptoError| crate::error::ApiError::Internal(e.to_string());
        let client_state = mcpgate_crypto::token::random_state().map_err(csprng)?;
        let nonce = mcpgate_crypto::token::random_nonce().map_err(csprng)?;
        let verifier = mcpgate_crypto::pkce::generate_verifier().map_err(csprng)?;
        let state_hash = TokenHash::of(&client_state);
        let sealed_verifier = state
            .secret_box
            .seal(
                verifier.expose().as_bytes(),
                &Place::new("pending_logins", "pkce_verifier", &state_hash.to_hex()),
            )
            .map_err(|e| crate::error::ApiError::Internal(e.to_string()))?;
        let continuation = Continuation {
            return_to: return_to.to_owned(),
            consented,
        };
        state
            .store
            .create_pending_login(&PendingLogin {
                state_hash: state_hash.as_bytes().to_vec(),
                provider_id: provider_id.to_owned(),
                nonce: nonce.clone(),
                pkce_verifier: sealed_verifier,
                authorize_request: serde_json::to_string(&continuation)
                    .map_err(|e| crate::error::ApiError::Internal(e.to_string()))?,
                browser_binding: TokenHash::of(&binding).as_bytes().to_vec(),
                expires_at: now_ms() + PENDING_TTL_MS,
                used_at: None,
                created_at: now_ms(),
            })
            .await?;
        let url = provider
            .authorization_url(&AuthorizationRequest {
                redirect_uri: callback_url(state, provider_id),
                state: client_state,
                nonce,
                code_challenge: mcpgate_crypto::pkce::s256_challenge(verifier.expose()),
                login_hint,
            })
            .await
            .map_err(|e| crate::error::ApiError::BadGateway(e.to_string()))?;
        Ok::<_, crate::error::ApiError>((binding, url))
    }
    .await;
    match result {
        Ok((binding, url)) => (
            jar.add(site_cookie(binding_cookie(https), binding, https)),
            Redirect::to(url.as_str()),
        )
            .into_response(),
        Err(e) => crate::web::login::error_page(e),
    }
}

fn callback_url(state: &AppState, provider_id: &str) -> String {
    format!("{}/callback/{provider_id}", state.config.issuer())
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    jar: CookieJar,
    Query(query): Query<Callback>,
) -> Response {
    let https = state.config.is_https();
    let Some(client_state) = query.state.as_deref() else {
        return failed(
            StatusCode::BAD_REQUEST,
            "The identity provider sent no state.",
        );
    };
    let state_hash = TokenHash::of(client_state);
    let pending = match state
        .store
        .consume_pending_login(state_hash.as_bytes())
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => {
            return failed(
                StatusCode::BAD_REQUEST,
                "This sign-in link is unknown, expired or was already used. Start again.",
            );
        }
        Err(e) => return crate::web::login::error_page(e.into()),
    };
    let same_browser = jar.get(binding_cookie(https)).is_some_and(|c| {
        TokenHash::of(c.value()).as_bytes().as_slice() == pending.browser_binding.as_slice()
    });
    if pending.provider_id != provider_id || !same_browser {
        return failed(
            StatusCode::BAD_REQUEST,
            "This sign-in was started in another browser or for another provider. Start again.",
        );
    }
    let jar = jar.add(removal(binding_cookie(https), https));
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or("");
        tracing::info!(provider = %provider_id, %error, "identity provider refused the sign-in");
        let text = format!(
            "The identity provider did not sign you in ({error}{}{detail}).",
            if detail.is_empty() { "" } else { ": " }
        );
        return (jar, failed(StatusCode::FORBIDDEN, &text)).into_response();
    }
    let Some(code) = query.code.as_deref() else {
        return failed(
            StatusCode::BAD_REQUEST,
            "The identity provider sent no code.",
        );
    };
    match finish(&state, &pending, code).await {
        Ok(user) => {
            state.audit.record(crate::policy::audit::sign_in_event(
                Some(&user.id),
                &user.email,
                &provider_id,
                true,
            ));
            let continuation =
                serde_json::from_str::<Continuation>(&pending.authorize_request).ok();
            let return_to = continuation.as_ref().map(|c| c.return_to.clone());
            // Consent given before federating is this user's consent for the client now.
            if let Some(c) = continuation.and_then(|c| c.consented)
                && !c.resource.is_empty()
                && let Err(e) = state
                    .store
                    .put_consent(&user.id, &c.client_id, &c.resource, &c.scopes)
                    .await
            {
                return crate::web::login::error_page(e.into());
            }
            match session::start(&state, jar, &user).await {
                Ok(jar) => {
                    (jar, Redirect::to(&safe_return_to(return_to.as_deref()))).into_response()
                }
                Err(e) => crate::web::login::error_page(e),
            }
        }
        Err(response) => response,
    }
}

/// Code exchange, user info, the user and identity, the sealed grant.
async fn finish(state: &AppState, pending: &PendingLogin, code: &str) -> Result<User, Response> {
    let provider = state
        .providers
        .get(&pending.provider_id)
        .cloned()
        .ok_or_else(|| {
            failed(
                StatusCode::NOT_FOUND,
                "This sign-in method is not configured.",
            )
        })?;
    let verifier = state
        .secret_box
        .open(
            &pending.pkce_verifier,
            &Place::new(
                "pending_logins",
                "pkce_verifier",
                &TokenHash::from_bytes(
                    <[u8; 32]>::try_from(pending.state_hash.as_slice()).unwrap_or([0; 32]),
                )
                .to_hex(),
            ),
        )
        .map_err(|_| {
            failed(
                StatusCode::BAD_REQUEST,
                "This sign-in could not be verified. Start again.",
            )
        })?;
    let verifier = String::from_utf8_lossy(&verifier).into_owned();
    let provider_failed = |e: mcpgate_core::ProviderError| {
        tracing::warn!(provider = %pending.provider_id, error = %e, "federated sign-in failed");
        failed(
            StatusCode::BAD_GATEWAY,
            "The identity provider could not complete the sign-in. Try again.",
        )
    };
    let tokens = provider
        .exchange_code(
            code,
            &verifier,
            &callback_url(state, &pending.provider_id),
            &pending.nonce,
        )
        .await
        .map_err(provider_failed)?;
    let context = provider
        .user_info(&tokens.access_token)
        .await
        .map_err(provider_failed)?;
    let user = link_user(state, &pending.provider_id, &context).await?;
    if user.is_disabled() {
        return Err(failed(StatusCode::FORBIDDEN, "This account is disabled."));
    }
    let identity = match state
        .store
        .find_identity(&pending.provider_id, &context.subject)
        .await
    {
        Ok(Some(i)) => i,
        Ok(None) => state
            .store
            .create_identity(
                &user.id,
                &pending.provider_id,
                &context.subject,
                &context.claims,
            )
            .await
            .map_err(|e| crate::web::login::error_page(e.into()))?,
        Err(e) => return Err(crate::web::login::error_page(e.into())),
    };
    let _ = state
        .store
        .update_identity_claims(&identity.id, &context.claims)
        .await;
    let grant_id = mcpgate_storage::new_id();
    let seal = |column: &str, value: &SecretString| {
        state
            .secret_box
            .seal(value.expose().as_bytes(), &place(column, &grant_id))
    };
    let sealed = (|| {
        Ok::<_, mcpgate_crypto::SealError>(GrantTokens {
            access_token: seal("access_token", &tokens.access_token)?,
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|t| seal("refresh_token", t))
                .transpose()?,
            id_token: tokens
                .id_token
                .as_ref()
                .map(|t| seal("id_token", t))
                .transpose()?,
            expires_at: tokens.expires_at.map(|s| s.saturating_mul(1000)),
            refresh_expires_at: tokens.refresh_expires_at.map(|s| s.saturating_mul(1000)),
            scopes: tokens.scopes.join(" "),
        })
    })()
    .map_err(|e| crate::web::login::error_page(crate::error::ApiError::Internal(e.to_string())))?;
    state
        .store
        .create_grant(
            &grant_id,
            &user.id,
            &identity.id,
            &pending.provider_id,
            &sealed,
        )
        .await
        .map_err(|e| crate::web::login::error_page(e.into()))?;
    state.identity.forget_user(&user.id).await;
    // The first tool call reuses what the sign-in just learnt instead of asking again.
    state
        .identity
        .remember(&grant_id, &pending.provider_id, context)
        .await;
    tracing::info!(user.id = %user.id, provider = %pending.provider_id, "signed in through an identity provider");
    Ok(user)
}

/// The user behind an identity: linked before, or matched by a verified email, or new.
async fn link_user(
    state: &AppState,
    provider_id: &str,
    context: &UserContext,
) -> Result<User, Response> {
    let page = |e: StorageError| crate::web::login::error_page(e.into());
    if let Some(identity) = state
        .store
        .find_identity(provider_id, &context.subject)
        .await
        .map_err(page)?
    {
        return state.store.get_user(&identity.user_id).await.map_err(page);
    }
    let email = context
        .email
        .clone()
        .unwrap_or_else(|| format!("{}@{provider_id}.invalid", context.subject));
    if let Some(existing) = state.store.find_user_by_email(&email).await.map_err(page)? {
        // Only a verified email may join an existing account; otherwise it could be anyone's.
        if context.email_verified {
            return Ok(existing);
        }
        return Err(failed(
            StatusCode::CONFLICT,
            "An account with this email already exists, and the identity provider has not verified the email.",
        ));
    }
    state
        .store
        .create_user(&NewUser {
            email,
            display_name: context.name.clone(),
            password_hash: None,
            is_admin: false,
        })
        .await
        .map_err(page)
}
