//! mcpgate as the OAuth 2.1 authorization server of its MCP clients, and the token check of
//! its protected resources (`/mcp/{name}`). See `../shared/design/MCP-AUTH.md` for the
//! requirements (AS-xx, RS-xx) each part answers.

pub mod authorize;
pub mod cimd;
pub mod clients;
pub mod issue;
pub mod last_used;
pub mod metadata;
pub mod params;
pub mod personal;
pub mod redirect;
pub mod register;
pub mod revoke;
pub mod scopes;
pub mod service;
pub mod token;
pub mod validate;
