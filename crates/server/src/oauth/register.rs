//! `POST /oauth/register`: dynamic client registration (RFC 7591). Anyone may call it, so it
//! is bounded: the metadata's size, each URI's length and each list's length; registrations
//! per client address (429 with `Retry-After`); and registrations nobody used are deleted
//! after `oauth.registration.unused_ttl_secs` (a periodic sweep on every replica). Counted in
//! `mcpgate_oauth_clients_registered_total`, `mcpgate_oauth_registrations_refused_total`
//! (by reason) and `mcpgate_oauth_clients_expired_total`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mcpgate_crypto::TokenHash;
use mcpgate_storage::{OAuthClient, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use super::redirect::{ClientType, check_registrable};
use crate::app::AppState;
use crate::config::RegistrationConfig;
use crate::error::ApiError;

/// Longest URI accepted anywhere in the metadata (`redirect_uris`, `logo_uri`, …).
pub const MAX_URI_BYTES: usize = 2048;
/// Most entries accepted in any list (`redirect_uris`, `contacts`, `grant_types`, …).
pub const MAX_LIST_LEN: usize = 10;

/// Registrations per client address (governor's keyed GCRA limiter, in memory per replica).
pub struct RegistrationLimit {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl RegistrationLimit {
    pub fn new(config: &RegistrationConfig) -> Self {
        Self {
            per_address: NonZeroU32::new(config.per_address_per_hour)
                .map(|n| RateLimiter::keyed(Quota::per_hour(n))),
        }
    }

    /// Counts one registration from `address`; 429 with `Retry-After` when over.
    pub fn check(&self, address: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_address else {
            return Ok(());
        };
        limiter.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Drops idle addresses so the map does not grow without bound (called periodically).
    pub fn shrink(&self) {
        if let Some(l) = &self.per_address {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Deletes registrations that never obtained a token within `unused_ttl_secs` (0: never).
/// Runs on every replica; the delete is one idempotent statement.
pub async fn sweep_unused(state: &AppState) {
    let ttl = state.config.oauth.registration.unused_ttl_secs;
    if ttl == 0 {
        return;
    }
    let cutoff =
        now_ms().saturating_sub(i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX));
    match state.store.delete_unused_clients(cutoff).await {
        Ok(0) => {}
        Ok(n) => {
            metrics::counter!("mcpgate_oauth_clients_expired_total")
                .increment(u64::try_from(n).unwrap_or(u64::MAX));
            tracing::info!(clients = n, "unused registered clients deleted");
        }
        Err(e) => tracing::warn!(error = %e, "cannot sweep unused registered clients"),
    }
}

/// How often the sweep runs: often enough that a client outlives its time by at most about
/// half of it (and a minute is the most a test or an operator waits), at most hourly.
pub fn sweep_interval(config: &RegistrationConfig) -> Duration {
    match config.unused_ttl_secs {
        0 => Duration::from_secs(3600),
        ttl => Duration::from_secs((ttl / 2).clamp(1, 3600)),
    }
}

fn refused(reason: &'static str, error: &'static str, description: impl Into<String>) -> ApiError {
    metrics::counter!("mcpgate_oauth_registrations_refused_total", "reason" => reason).increment(1);
    ApiError::oauth(StatusCode::BAD_REQUEST, error, description)
}

/// Size limits on a parsed registration: each list at most [`MAX_LIST_LEN`] long, each
/// `redirect_uris` entry and each `*_uri` field at most [`MAX_URI_BYTES`].
fn check_bounds(doc: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in doc {
        let error = if key == "redirect_uris" {
            "invalid_redirect_uri"
        } else {
            "invalid_client_metadata"
        };
        if let Value::Array(items) = value
            && items.len() > MAX_LIST_LEN
        {
            return Err(refused(
                "too_many",
                error,
                format!("{key} has more than {MAX_LIST_LEN} entries"),
            ));
        }
        let uris: Vec<&str> = match value {
            Value::String(s) if key.ends_with("_uri") => vec![s.as_str()],
            Value::Array(items) if key == "redirect_uris" => {
                items.iter().filter_map(Value::as_str).collect()
            }
            _ => Vec::new(),
        };
        if uris.iter().any(|u| u.len() > MAX_URI_BYTES) {
            return Err(refused(
                "uri_too_long",
                error,
                format!("{key}: a URI is longer than {MAX_URI_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// RFC 7591 §2 client metadata, as much as mcpgate uses.
#[derive(Debug, Deserialize)]
pub struct Registration {
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    /// `native` or `web` (MCP 2026-07-28 clients send it).
    application_type: Option<String>,
    scope: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

fn registration_error(error: &'static str, description: impl Into<String>) -> ApiError {
    refused("invalid", error, description)
}

/// What a registration asks for, once checked: the redirect URIs, the authentication method,
/// the grant types, the name to store, and the registration itself (its other fields).
#[derive(Debug)]
pub struct Checked {
    pub redirect_uris: Vec<String>,
    pub method: String,
    pub grant_types: Vec<String>,
    pub client_name: String,
    pub registration: Registration,
}

/// Every check of a registration body (size, bounds, RFC 7591 §2 and MCP), without side
/// effects: the handler's first step, and the fuzz target for client metadata.
pub fn check(body: &[u8], max: usize) -> Result<Checked, ApiError> {
    if body.len() > max {
        return Err(refused(
            "too_large",
            "invalid_client_metadata",
            format!("the client metadata is larger than {max} bytes"),
        ));
    }
    let doc: serde_json::Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        registration_error(
            "invalid_client_metadata",
            format!("the client metadata must be a JSON object: {e}"),
        )
    })?;
    check_bounds(&doc)?;
    let reg: Registration = serde_json::from_value(Value::Object(doc))
        .map_err(|e| registration_error("invalid_client_metadata", e.to_string()))?;
    let redirect_uris = reg
        .redirect_uris
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| registration_error("invalid_redirect_uri", "redirect_uris is required"))?;
    let method = reg.token_endpoint_auth_method.as_deref().unwrap_or("none");
    let client_type = if method == "none" {
        ClientType::Public
    } else {
        ClientType::Confidential
    };
    for uri in &redirect_uris {
        check_registrable(uri, client_type)
            .map_err(|e| registration_error("invalid_redirect_uri", format!("{uri}: {e}")))?;
    }
    if !["none", "client_secret_basic", "client_secret_post"].contains(&method) {
        return Err(registration_error(
            "invalid_client_metadata",
            format!("token_endpoint_auth_method {method:?} is not supported"),
        ));
    }
    let grant_types = reg
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(g) = grant_types
        .iter()
        .find(|g| !["authorization_code", "refresh_token"].contains(&g.as_str()))
    {
        return Err(registration_error(
            "invalid_client_metadata",
            format!("grant type {g:?} is not supported"),
        ));
    }
    if let Some(r) = reg
        .response_types
        .as_ref()
        .and_then(|r| r.iter().find(|r| r.as_str() != "code"))
    {
        return Err(registration_error(
            "invalid_client_metadata",
            format!("response type {r:?} is not supported"),
        ));
    }
    if let Some(a) = reg.application_type.as_deref()
        && !["native", "web"].contains(&a)
    {
        return Err(registration_error(
            "invalid_client_metadata",
            "application_type must be native or web",
        ));
    }
    let client_name = reg
        .client_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "Unnamed client".into());
    Ok(Checked {
        redirect_uris,
        method: method.to_owned(),
        grant_types,
        client_name,
        registration: reg,
    })
}

/// `POST /oauth/register` (RFC 7591).
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let address = state.limits.client_address(peer, &headers);
    if let Err(e) = state.registrations.check(address) {
        metrics::counter!("mcpgate_oauth_registrations_refused_total", "reason" => "rate_limited")
            .increment(1);
        return Err(e);
    }
    let Checked {
        redirect_uris,
        method,
        grant_types,
        client_name,
        registration: reg,
    } = check(&body, state.config.oauth.registration.max_metadata_bytes)?;
    let method = method.as_str();
    let client_id = format!(
        "mcpgate_client_{}",
        crate::web::session::random_value()?
            .get(..22)
            .unwrap_or_default()
    );
    let secret = if method == "none" {
        None
    } else {
        Some(format!(
            "mcpgate_cs_{}",
            crate::web::session::random_value()?
        ))
    };
    let now = now_ms();
    let mut response = json!({
        "client_id": client_id,
        "client_id_issued_at": now / 1000,
        "client_name": client_name,
        "redirect_uris": redirect_uris,
        "token_endpoint_auth_method": method,
        "grant_types": grant_types,
        "response_types": ["code"],
    });
    if let Some(a) = &reg.application_type {
        response["application_type"] = json!(a);
    }
    if let Some(s) = super::scopes::grantable(reg.scope.as_deref()) {
        response["scope"] = json!(s);
    }
    let mut metadata = response.clone();
    if let Some(obj) = metadata.as_object_mut() {
        for (k, v) in reg.other {
            obj.entry(k).or_insert(v);
        }
    }
    state
        .store
        .upsert_client(&OAuthClient {
            client_id: client_id.clone(),
            registration: "dcr".into(),
            client_name,
            redirect_uris: serde_json::to_string(&redirect_uris)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            token_endpoint_auth_method: method.into(),
            secret_hash: secret
                .as_deref()
                .map(|s| TokenHash::of(s).as_bytes().to_vec()),
            metadata: metadata.to_string(),
            created_at: now,
            refresh_after: None,
        })
        .await?;
    if let Some(secret) = secret {
        response["client_secret"] = json!(secret);
        response["client_secret_expires_at"] = json!(0);
    }
    metrics::counter!("mcpgate_oauth_clients_registered_total").increment(1);
    tracing::info!(client.id = %client_id, "client registered");
    Ok((StatusCode::CREATED, Json(response)))
}
