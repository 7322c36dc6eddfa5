//! Who is calling: what the resource-server check hands to everything after it.

use serde::{Deserialize, Serialize};

/// The caller of an MCP endpoint, as established from its bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The mcpgate user the token was issued to.
    pub user_id: String,
    /// The OAuth client that holds the token.
    pub client_id: String,
    /// Scopes granted to the token.
    pub scopes: Vec<String>,
    /// The resource (RFC 8707) the token is bound to: the exact MCP endpoint URL.
    pub resource: String,
}
