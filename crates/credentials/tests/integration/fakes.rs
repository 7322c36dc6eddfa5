//! Small fakes the tests start on 127.0.0.1: a strict authorization server / STS that counts
//! calls, and the server-side traits (provider tokens, sealed secrets).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine;
use mcpgate_core::SecretString;
use mcpgate_credentials::{CredentialError, ProviderTokens, SealedSecrets};
use serde_json::json;
use url::Url;

/// Serves `router` on an ephemeral loopback port until the test ends.
pub async fn serve(router: Router) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Url::parse(&format!("http://{addr}/")).unwrap_or_else(|e| panic!("url: {e}"))
}

pub const CLIENT_ID: &str = "mcpgate-client";
pub const CLIENT_SECRET: &str = "s3cret:with/odd chars";

/// What the fake authorization server does and saw.
pub struct AsState {
    pub calls: AtomicUsize,
    /// Calls per subject token (token exchange).
    pub by_subject: Mutex<HashMap<String, usize>>,
    pub expires_in: u64,
    /// Each token request waits this long first (a slow or hung STS).
    pub delay: Duration,
    pub scope: &'static str,
    /// Answer every token request with this OAuth error (HTTP 400).
    pub refuse_with: Option<&'static str>,
}

impl AsState {
    pub fn new(expires_in: u64) -> Self {
        Self {
            calls: AtomicUsize::new(0),
            by_subject: Mutex::new(HashMap::new()),
            expires_in,
            delay: Duration::ZERO,
            scope: "read write",
            refuse_with: None,
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn oauth_error(code: &str, status: StatusCode) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": "do not echo me"})),
    )
        .into_response()
}

/// RFC 6749 §2.3.1: Basic with form-encoded id and secret.
fn client_ok(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value) else {
        return false;
    };
    let text = String::from_utf8_lossy(&decoded).into_owned();
    let Some((id, secret)) = text.split_once(':') else {
        return false;
    };
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    dec(id) == CLIENT_ID && dec(secret) == CLIENT_SECRET
}

async fn token(
    State(state): State<Arc<AsState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    if !client_ok(&headers) {
        return oauth_error("invalid_client", StatusCode::UNAUTHORIZED);
    }
    if let Some(code) = state.refuse_with {
        return oauth_error(code, StatusCode::BAD_REQUEST);
    }
    let n = state.calls();
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            if form.get("scope").map(String::as_str) != Some(state.scope) {
                return oauth_error("invalid_scope", StatusCode::BAD_REQUEST);
            }
            if form.get("resource").map(String::as_str) != Some("https://api.example/") {
                return oauth_error("invalid_target", StatusCode::BAD_REQUEST);
            }
            Json(json!({
                "access_token": format!("cc-token-{n}"),
                "token_type": "Bearer",
                "expires_in": state.expires_in,
            }))
            .into_response()
        }
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
            let (Some(subject), Some(subject_type)) =
                (form.get("subject_token"), form.get("subject_token_type"))
            else {
                return oauth_error("invalid_request", StatusCode::BAD_REQUEST);
            };
            if form.get("requested_token_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:token-type:access_token")
                || form.get("audience").map(String::as_str) != Some("orders-api")
            {
                return oauth_error("invalid_target", StatusCode::BAD_REQUEST);
            }
            *state
                .by_subject
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(subject.clone())
                .or_default() += 1;
            let issued = if subject_type == "urn:ietf:params:oauth:token-type:jwt" {
                format!("exchanged-jwt-{n}")
            } else {
                format!("exchanged-for-{subject}")
            };
            Json(json!({
                "access_token": issued,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": state.expires_in,
            }))
            .into_response()
        }
        _ => oauth_error("unsupported_grant_type", StatusCode::BAD_REQUEST),
    }
}

/// A strict authorization server: `POST /token`, and RFC 8414 metadata for issuer `{base}`.
pub async fn authorization_server(state: Arc<AsState>) -> Url {
    let base = Arc::new(Mutex::new(String::new()));
    let meta_base = base.clone();
    let router = Router::new()
        .route("/token", post(token))
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || {
                let base = meta_base.lock().unwrap_or_else(|e| e.into_inner()).clone();
                async move {
                    Json(json!({
                        "issuer": base.trim_end_matches('/'),
                        "token_endpoint": format!("{base}token"),
                    }))
                }
            }),
        )
        .with_state(state);
    let url = serve(router).await;
    *base.lock().unwrap_or_else(|e| e.into_inner()) = url.to_string();
    url
}

/// Provider tokens by (user, provider); counts calls.
#[derive(Default)]
pub struct FakeProviderTokens {
    pub tokens: HashMap<(String, String), String>,
    pub calls: AtomicUsize,
}

#[async_trait]
impl ProviderTokens for FakeProviderTokens {
    async fn provider_token(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<SecretString>, CredentialError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .tokens
            .get(&(user_id.to_owned(), provider.to_owned()))
            .map(|t| SecretString::new(t.clone())))
    }
}

/// The admin API's sealed secrets, already opened.
pub struct FakeSealed(pub HashMap<String, String>);

#[async_trait]
impl SealedSecrets for FakeSealed {
    async fn upstream_secret(
        &self,
        upstream: &str,
    ) -> Result<Option<SecretString>, CredentialError> {
        Ok(self.0.get(upstream).map(|s| SecretString::new(s.clone())))
    }
}
