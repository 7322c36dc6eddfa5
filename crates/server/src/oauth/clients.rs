//! Who a `client_id` is: a configured client, one registered dynamically (RFC 7591), or a
//! Client ID Metadata Document fetched from the URL the id is.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mcpgate_crypto::TokenHash;
use mcpgate_storage::{OAuthClient, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use super::cimd;
use super::redirect::{ClientType, check_registrable};
use crate::app::AppState;
use crate::error::ApiError;

/// A client as the authorization flow needs it.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// SHA-256 of the secret of a confidential client; `None` for public clients.
    pub secret_hash: Option<TokenHash>,
    /// `configured`, `dcr` or `cimd`.
    pub registration: String,
}

impl Client {
    /// Checks the secret a client presented: public clients must present none, confidential
    /// ones the right one (constant-time).
    pub fn authenticate(&self, secret: Option<&str>) -> bool {
        match (&self.secret_hash, secret) {
            (None, None) => true,
            (Some(hash), Some(secret)) => hash.matches(secret),
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("unknown client")]
    Unknown,
    #[error(transparent)]
    Document(#[from] cimd::CimdError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<mcpgate_storage::StorageError> for ClientError {
    fn from(e: mcpgate_storage::StorageError) -> Self {
        Self::Api(e.into())
    }
}

fn from_stored(c: OAuthClient) -> Result<Client, ClientError> {
    let redirect_uris: Vec<String> = serde_json::from_str(&c.redirect_uris)
        .map_err(|e| ClientError::Api(ApiError::Internal(e.to_string())))?;
    Ok(Client {
        client_id: c.client_id,
        name: c.client_name,
        redirect_uris,
        secret_hash: c
            .secret_hash
            .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .map(TokenHash::from_bytes),
        registration: c.registration,
    })
}

/// Resolves a client id. A metadata document is fetched when it is not cached or its cache
/// time is over; the fetch runs with no database connection held.
pub async fn find(state: &AppState, client_id: &str) -> Result<Client, ClientError> {
    if let Some(c) = state
        .config
        .oauth
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
    {
        return Ok(Client {
            client_id: c.client_id.clone(),
            name: c.client_name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            secret_hash: c.client_secret.as_ref().map(|s| TokenHash::of(s.expose())),
            registration: "configured".into(),
        });
    }
    let stored = state.store.get_client(client_id).await?;
    if !cimd::is_document_url(client_id) {
        return stored
            .map(from_stored)
            .transpose()?
            .ok_or(ClientError::Unknown);
    }
    let settings = &state.config.oauth.client_metadata;
    if !settings.enabled {
        return Err(ClientError::Unknown);
    }
    if let Some(c) = stored
        && c.registration == "cimd"
        && c.refresh_after.is_some_and(|t| t > now_ms())
    {
        return from_stored(c);
    }
    let doc = cimd::fetch(client_id, settings).await?;
    let now = now_ms();
    let record = OAuthClient {
        client_id: client_id.to_owned(),
        registration: "cimd".into(),
        client_name: doc.client_name,
        redirect_uris: serde_json::to_string(&doc.redirect_uris)
            .map_err(|e| ClientError::Api(ApiError::Internal(e.to_string())))?,
        token_endpoint_auth_method: "none".into(),
        secret_hash: None,
        metadata: doc.raw.to_string(),
        created_at: now,
        refresh_after: Some(now + i64::try_from(doc.cache_for.as_millis()).unwrap_or(0)),
    };
    state.store.upsert_client(&record).await?;
    from_stored(record)
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
    ApiError::oauth(StatusCode::BAD_REQUEST, error, description)
}

/// What a registration asks for, once checked: the redirect URIs, the authentication
/// method, the grant types and the name to store.
#[derive(Debug)]
pub struct Checked {
    pub redirect_uris: Vec<String>,
    pub method: String,
    pub grant_types: Vec<String>,
    pub client_name: String,
}

impl Registration {
    /// The checks RFC 7591 §2 and MCP ask for, without side effects (the fuzz target for
    /// client metadata calls this too).
    pub fn check(&self) -> Result<Checked, ApiError> {
        let redirect_uris = self
            .redirect_uris
            .clone()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                registration_error("invalid_redirect_uri", "redirect_uris is required")
            })?;
        let method = self.token_endpoint_auth_method.as_deref().unwrap_or("none");
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
        let grant_types = self
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
        if let Some(r) = self
            .response_types
            .as_ref()
            .and_then(|r| r.iter().find(|r| r.as_str() != "code"))
        {
            return Err(registration_error(
                "invalid_client_metadata",
                format!("response type {r:?} is not supported"),
            ));
        }
        if let Some(a) = self.application_type.as_deref()
            && !["native", "web"].contains(&a)
        {
            return Err(registration_error(
                "invalid_client_metadata",
                "application_type must be native or web",
            ));
        }
        let client_name = self
            .client_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Unnamed client".into());
        Ok(Checked {
            redirect_uris,
            method: method.to_owned(),
            grant_types,
            client_name,
        })
    }
}

/// `POST /oauth/register` (RFC 7591).
pub async fn register(
    State(state): State<AppState>,
    body: Result<Json<Registration>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(reg) =
        body.map_err(|e| registration_error("invalid_client_metadata", e.body_text()))?;
    let Checked {
        redirect_uris,
        method,
        grant_types,
        client_name,
    } = reg.check()?;
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
    tracing::info!(client.id = %client_id, "client registered");
    Ok((StatusCode::CREATED, Json(response)))
}
