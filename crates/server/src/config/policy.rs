//! `[policy]`: RBAC as code, and how decisions are cached and audited.
//!
//! Roles declared here are merged with the roles kept in the database (the admin API's). On a
//! name clash the configuration wins and the database role is ignored (logged); configuration
//! roles are read-only through the API. `default_role` comes only from here. Mapping rules
//! from both places apply.

use mcpgate_rbac::{MappingRule, PolicySpec, RoleSpec};
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A role every signed-in user holds, also users created later (never `admin`). Unset:
    /// a user holds only the roles given to them, and with none every MCP call is denied.
    pub default_role: Option<String>,
    /// Roles as code (`[[policy.roles]]`), read-only through the admin API.
    pub roles: Vec<RoleSpec>,
    /// Identity-provider claim → role rules (`[[policy.mappings]]`).
    pub mappings: Vec<MappingRule>,
    /// How long a user's effective grants stay cached; also how long this replica may miss a
    /// change announced by another one (PostgreSQL notifies at once; this bounds a missed
    /// notification, or another process on the same SQLite file).
    pub cache_ttl_secs: u64,
    /// Users whose grants are kept in memory at most.
    pub cache_capacity: u64,
    /// Decisions waiting to be written to the audit log; when full, events are dropped and
    /// counted (`mcpgate_audit_dropped_total`) rather than slowing requests down.
    pub audit_queue: usize,
    /// Events written per database statement at most.
    pub audit_batch: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            default_role: None,
            roles: Vec::new(),
            mappings: Vec::new(),
            cache_ttl_secs: 30,
            cache_capacity: 100_000,
            audit_queue: 65_536,
            audit_batch: 512,
        }
    }
}

impl PolicyConfig {
    /// The configured part of the policy.
    pub fn spec(&self) -> PolicySpec {
        PolicySpec {
            default_role: self.default_role.clone(),
            roles: self.roles.clone(),
            mappings: self.mappings.clone(),
        }
    }

    pub(super) fn validate(&self, errors: &mut Vec<ConfigError>) {
        if let Err(policy_errors) = self.spec().compile() {
            errors.extend(policy_errors.into_iter().map(|e| match e.path() {
                Some(path) => ConfigError::new(format!("policy.{path}"), e.kind().to_string()),
                None => ConfigError::new("policy", e.to_string()),
            }));
        }
        if self.cache_ttl_secs == 0 {
            errors.push(ConfigError::new(
                "policy.cache_ttl_secs",
                "must be at least 1",
            ));
        }
        if self.audit_queue == 0 || self.audit_batch == 0 {
            errors.push(ConfigError::new(
                "policy.audit_queue",
                "audit_queue and audit_batch must be at least 1",
            ));
        }
    }
}
