//! The JSON API under `/api/v1`: sign-in for programs, the caller's own account and personal
//! access tokens, and admin management of users, policy, upstreams and service clients. Errors are JSON in the OAuth shape (`error`, `error_description`).

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod me;
pub mod openapi;
pub mod policy;
pub mod service_clients;
pub mod tokens;
pub mod upstreams;

use mcpgate_storage::User;
use serde::Serialize;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            is_admin: u.is_admin,
            disabled: u.is_disabled(),
        }
    }
}
