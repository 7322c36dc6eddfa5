//! Who a `client_id` is: a configured client, one registered dynamically (RFC 7591, see
//! `register`), or a Client ID Metadata Document fetched from the URL the id is.

use mcpgate_crypto::TokenHash;
use mcpgate_storage::{OAuthClient, now_ms};

use super::cimd;
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
    /// `configured`, `dcr`, `cimd` or `service`.
    pub registration: String,
    /// The stored record of a service client (client-credentials grant).
    pub service: Option<Box<mcpgate_storage::ServiceClient>>,
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
        service: None,
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
            service: None,
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
