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

/// The upstream side of `user_oauth`: an MCP server that answers 401 with its RFC 9728
/// metadata, and its own strict authorization server (issuer `{base}tenant`: RFC 8414 with
/// path insertion, DCR, PKCE S256, `resource`, rotating refresh tokens, RFC 7009).
pub struct UpstreamAs {
    pub base: Mutex<String>,
    pub registrations: AtomicUsize,
    pub code_exchanges: AtomicUsize,
    pub refreshes: Mutex<HashMap<String, usize>>,
    pub revoked: Mutex<Vec<String>>,
    pub expires_in: std::sync::atomic::AtomicU64,
    codes: Mutex<HashMap<String, IssuedCode>>,
    /// Live refresh tokens → user; a used one is gone (rotation).
    refresh_tokens: Mutex<HashMap<String, String>>,
    serial: AtomicUsize,
}

struct IssuedCode {
    user: String,
    challenge: String,
    redirect_uri: String,
    client_id: String,
}

pub const DCR_CLIENT_ID: &str = "dcr-client-1";
pub const DCR_CLIENT_SECRET: &str = "dcr secret/1";

impl UpstreamAs {
    fn base(&self) -> String {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn refreshes_of(&self, user: &str) -> usize {
        self.refreshes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
            .copied()
            .unwrap_or(0)
    }

    /// Ends every refresh token of `user` (as an admin at the upstream would).
    pub fn end_grants_of(&self, user: &str) {
        self.refresh_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, u| u != user);
    }

    fn next(&self) -> usize {
        self.serial.fetch_add(1, Ordering::SeqCst)
    }
}

fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((dec(id), dec(secret)))
}

fn s256(verifier: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

pub async fn upstream_with_as(expires_in: u64) -> (Url, Arc<UpstreamAs>) {
    use axum::extract::Query;
    let state = Arc::new(UpstreamAs {
        base: Mutex::new(String::new()),
        registrations: AtomicUsize::new(0),
        code_exchanges: AtomicUsize::new(0),
        refreshes: Mutex::new(HashMap::new()),
        revoked: Mutex::new(Vec::new()),
        expires_in: std::sync::atomic::AtomicU64::new(expires_in),
        codes: Mutex::new(HashMap::new()),
        refresh_tokens: Mutex::new(HashMap::new()),
        serial: AtomicUsize::new(1),
    });
    let router = Router::new()
        .route(
            "/mcp",
            post(|State(s): State<Arc<UpstreamAs>>| async move {
                let base = s.base();
                (
                    StatusCode::UNAUTHORIZED,
                    [(
                        "www-authenticate",
                        format!(
                            r#"Bearer resource_metadata="{base}.well-known/oauth-protected-resource/mcp", scope="files:read""#
                        ),
                    )],
                )
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(|State(s): State<Arc<UpstreamAs>>| async move {
                let base = s.base();
                Json(json!({
                    "resource": format!("{base}mcp"),
                    "authorization_servers": [format!("{base}tenant")],
                    "scopes_supported": ["files:read", "files:write"],
                }))
            }),
        )
        .route(
            "/.well-known/oauth-authorization-server/tenant",
            get(|State(s): State<Arc<UpstreamAs>>| async move {
                let base = s.base();
                Json(json!({
                    "issuer": format!("{base}tenant"),
                    "authorization_endpoint": format!("{base}tenant/authorize"),
                    "token_endpoint": format!("{base}tenant/token"),
                    "registration_endpoint": format!("{base}tenant/register"),
                    "revocation_endpoint": format!("{base}tenant/revoke"),
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                    "authorization_response_iss_parameter_supported": true,
                    "scopes_supported": ["files:read", "files:write", "offline_access"],
                }))
            }),
        )
        .route(
            "/tenant/register",
            post(
                |State(s): State<Arc<UpstreamAs>>, Json(body): Json<serde_json::Value>| async move {
                    let redirect_ok = body["redirect_uris"]
                        .as_array()
                        .is_some_and(|r| r.len() == 1 && r[0].is_string());
                    if !redirect_ok
                        || body["token_endpoint_auth_method"] != "client_secret_basic"
                    {
                        return oauth_error("invalid_client_metadata", StatusCode::BAD_REQUEST);
                    }
                    s.registrations.fetch_add(1, Ordering::SeqCst);
                    (
                        StatusCode::CREATED,
                        Json(json!({
                            "client_id": DCR_CLIENT_ID,
                            "client_secret": DCR_CLIENT_SECRET,
                            "token_endpoint_auth_method": "client_secret_basic",
                            "redirect_uris": body["redirect_uris"],
                        })),
                    )
                        .into_response()
                },
            ),
        )
        .route(
            "/tenant/authorize",
            get(
                |State(s): State<Arc<UpstreamAs>>,
                 Query(q): Query<HashMap<String, String>>| async move {
                    let base = s.base();
                    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
                    if get("response_type") != "code"
                        || get("code_challenge_method") != "S256"
                        || get("code_challenge").len() != 43
                        || get("client_id") != DCR_CLIENT_ID
                        || get("resource") != format!("{base}mcp")
                        || get("scope") != "files:read offline_access"
                        || get("state").is_empty()
                        || get("login_hint").is_empty()
                    {
                        return (StatusCode::BAD_REQUEST, "bad authorization request")
                            .into_response();
                    }
                    let code = format!("code-{}", s.next());
                    s.codes.lock().unwrap_or_else(|e| e.into_inner()).insert(
                        code.clone(),
                        IssuedCode {
                            user: get("login_hint"),
                            challenge: get("code_challenge"),
                            redirect_uri: get("redirect_uri"),
                            client_id: get("client_id"),
                        },
                    );
                    let mut to = match Url::parse(&get("redirect_uri")) {
                        Ok(u) => u,
                        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
                    };
                    to.query_pairs_mut()
                        .append_pair("code", &code)
                        .append_pair("state", &get("state"))
                        .append_pair("iss", &format!("{base}tenant"));
                    (StatusCode::FOUND, [("location", to.to_string())]).into_response()
                },
            ),
        )
        .route("/tenant/token", post(upstream_token))
        .route(
            "/tenant/revoke",
            post(
                |State(s): State<Arc<UpstreamAs>>,
                 headers: HeaderMap,
                 Form(form): Form<HashMap<String, String>>| async move {
                    if basic_client(&headers)
                        != Some((DCR_CLIENT_ID.into(), DCR_CLIENT_SECRET.into()))
                    {
                        return oauth_error("invalid_client", StatusCode::UNAUTHORIZED);
                    }
                    let token = form.get("token").cloned().unwrap_or_default();
                    s.refresh_tokens
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&token);
                    s.revoked.lock().unwrap_or_else(|e| e.into_inner()).push(token);
                    StatusCode::OK.into_response()
                },
            ),
        )
        .with_state(state.clone());
    let url = serve(router).await;
    *state.base.lock().unwrap_or_else(|e| e.into_inner()) = url.to_string();
    (url, state)
}

async fn upstream_token(
    State(s): State<Arc<UpstreamAs>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let base = s.base();
    if basic_client(&headers) != Some((DCR_CLIENT_ID.into(), DCR_CLIENT_SECRET.into())) {
        return oauth_error("invalid_client", StatusCode::UNAUTHORIZED);
    }
    if form.get("resource") != Some(&format!("{base}mcp")) {
        return oauth_error("invalid_target", StatusCode::BAD_REQUEST);
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let user = match get("grant_type").as_str() {
        "authorization_code" => {
            let Some(code) = s
                .codes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&get("code"))
            else {
                return oauth_error("invalid_grant", StatusCode::BAD_REQUEST);
            };
            if s256(&get("code_verifier")) != code.challenge
                || get("redirect_uri") != code.redirect_uri
                || code.client_id != DCR_CLIENT_ID
            {
                return oauth_error("invalid_grant", StatusCode::BAD_REQUEST);
            }
            s.code_exchanges.fetch_add(1, Ordering::SeqCst);
            code.user
        }
        "refresh_token" => {
            // Slow enough that concurrent callers overlap with the refresh in flight.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Some(user) = s
                .refresh_tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&get("refresh_token"))
            else {
                return oauth_error("invalid_grant", StatusCode::BAD_REQUEST);
            };
            *s.refreshes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(user.clone())
                .or_default() += 1;
            user
        }
        _ => return oauth_error("unsupported_grant_type", StatusCode::BAD_REQUEST),
    };
    let n = s.next();
    let refresh = format!("rt-{user}-{n}");
    s.refresh_tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(refresh.clone(), user.clone());
    Json(json!({
        "access_token": format!("at-{user}-{n}"),
        "token_type": "Bearer",
        "refresh_token": refresh,
        "expires_in": s.expires_in.load(Ordering::SeqCst),
        "scope": "files:read offline_access",
    }))
    .into_response()
}

/// (grant, version, lease held until).
type GrantRow = (
    mcpgate_credentials::user_oauth::UserGrant,
    i64,
    Option<std::time::Instant>,
);

/// The server's per-user grant store with its refresh lease, in memory.
#[derive(Default)]
pub struct MemoryUserTokens {
    grants: Mutex<HashMap<(String, String), GrantRow>>,
    pub disconnects: AtomicUsize,
}

impl MemoryUserTokens {
    pub fn put(
        &self,
        user: &str,
        upstream: &str,
        grant: mcpgate_credentials::user_oauth::UserGrant,
    ) {
        let mut g = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        let version = g
            .get(&(user.into(), upstream.into()))
            .map_or(1, |e| e.1 + 1);
        g.insert((user.into(), upstream.into()), (grant, version, None));
    }

    pub fn get(
        &self,
        user: &str,
        upstream: &str,
    ) -> Option<mcpgate_credentials::user_oauth::UserGrant> {
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(user.into(), upstream.into()))
            .map(|e| e.0.clone())
    }
}

#[async_trait]
impl mcpgate_credentials::UserTokens for MemoryUserTokens {
    async fn user_grant(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<mcpgate_credentials::user_oauth::StoredUserGrant>, CredentialError> {
        Ok(self
            .grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(user_id.into(), upstream.into()))
            .map(|e| mcpgate_credentials::user_oauth::StoredUserGrant {
                grant: e.0.clone(),
                version: e.1,
            }))
    }

    async fn claim_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        seen_version: i64,
    ) -> Result<mcpgate_credentials::user_oauth::RefreshClaim, CredentialError> {
        use mcpgate_credentials::user_oauth::{RefreshClaim, StoredUserGrant};
        let mut g = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = g.get_mut(&(user_id.into(), upstream.into())) else {
            return Ok(RefreshClaim::Gone);
        };
        if entry.1 != seen_version {
            return Ok(RefreshClaim::Changed);
        }
        let now = std::time::Instant::now();
        if let Some(until) = entry.2
            && until > now
        {
            return Ok(RefreshClaim::HeldByOther {
                retry_in: until - now,
            });
        }
        entry.2 = Some(now + Duration::from_secs(5));
        Ok(RefreshClaim::Claimed(Box::new(StoredUserGrant {
            grant: entry.0.clone(),
            version: entry.1,
        })))
    }

    async fn complete_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        claimed_version: i64,
        grant: &mcpgate_credentials::user_oauth::UserGrant,
    ) -> Result<(), CredentialError> {
        let mut g = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = g.get_mut(&(user_id.into(), upstream.into()))
            && entry.1 == claimed_version
        {
            *entry = (grant.clone(), claimed_version + 1, None);
        }
        Ok(())
    }

    async fn release_refresh(&self, user_id: &str, upstream: &str) -> Result<(), CredentialError> {
        if let Some(entry) = self
            .grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&(user_id.into(), upstream.into()))
        {
            entry.2 = None;
        }
        Ok(())
    }

    async fn disconnect(&self, user_id: &str, upstream: &str) -> Result<(), CredentialError> {
        self.disconnects.fetch_add(1, Ordering::SeqCst);
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(user_id.into(), upstream.into()));
        Ok(())
    }
}
