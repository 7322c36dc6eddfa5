//! RBAC in the server: the compiled policy (configuration merged with the database's roles),
//! each user's effective grants cached by user and policy version, list filtering, and the
//! audit log written off the request path.
//!
//! A decision never holds a database connection: on a cache miss the grants come from one
//! short read (`Store::user_access`), and the policy itself from one short read when its
//! version moves. The version moves when this process changes the policy (the admin API
//! reports the new version), when another replica announces a change (PostgreSQL `NOTIFY`,
//! see `Store::policy_changes`), or at the latest after `policy.cache_ttl_secs`.

pub mod audit;
mod cache;
pub mod enforce;
mod explain;
pub mod lists;

use std::collections::HashSet;
use std::sync::Arc;

use mcpgate_rbac::{Decision, EffectiveGrants, Policy, PolicyError, PolicySpec, Request, RoleSpec};
use mcpgate_storage::{StorageError, Store, StoredPolicy};

pub use audit::AuditLog;
pub use cache::PolicyCache;
pub use explain::Explanation;

use crate::config::PolicyConfig;
use crate::identity::FederatedContext;

/// The configured policy, the store behind it, and the caches.
pub struct Enforcer {
    config: PolicySpec,
    config_roles: HashSet<String>,
    store: Store,
    cache: PolicyCache,
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcer")
            .field("config_roles", &self.config_roles)
            .finish_non_exhaustive()
    }
}

impl Enforcer {
    pub fn new(config: &PolicyConfig, store: Store) -> Arc<Self> {
        let spec = config.spec();
        let enforcer = Arc::new(Self {
            config_roles: spec.roles.iter().map(|r| r.name.clone()).collect(),
            config: spec,
            cache: PolicyCache::new(
                std::time::Duration::from_secs(config.cache_ttl_secs),
                config.cache_capacity,
            ),
            store,
            listener: std::sync::Mutex::new(None),
        });
        enforcer.listen();
        enforcer
    }

    /// Follows versions other replicas announce (PostgreSQL); a weak reference, so the task
    /// ends with the enforcer (and at shutdown through [`Enforcer::stop`]).
    fn listen(self: &Arc<Self>) {
        let mut changes = self.store.policy_changes();
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let version = *changes.borrow_and_update();
                match weak.upgrade() {
                    Some(enforcer) => enforcer.note_version(version),
                    None => return,
                }
            }
        });
        if let Ok(mut slot) = self.listener.lock() {
            *slot = Some(task);
        }
    }

    pub fn stop(&self) {
        if let Ok(mut slot) = self.listener.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }

    /// A change is known to exist at `version`: the next request reloads.
    pub fn note_version(&self, version: i64) {
        self.cache.note_version(version);
    }

    /// Whether a role is declared in the configuration (read-only through the API).
    pub fn is_config_role(&self, name: &str) -> bool {
        self.config_roles.contains(name)
    }

    /// `admin` or a configuration role: read-only through the API.
    pub fn is_builtin(&self, name: &str) -> bool {
        name == mcpgate_rbac::ADMIN_ROLE || self.is_config_role(name)
    }

    /// Gives `admin` and each configuration role a row users and teams can reference.
    pub async fn ensure_builtin_roles(&self) -> Result<(), StorageError> {
        let mut names: Vec<&str> = vec![mcpgate_rbac::ADMIN_ROLE];
        names.extend(self.config_roles.iter().map(String::as_str));
        self.store.ensure_roles(&names).await
    }

    pub fn config_spec(&self) -> &PolicySpec {
        &self.config
    }

    /// The user's effective grants: cached by user, policy version and the generation of the
    /// user's identity-provider context (a context fetched again, say after its TTL, with
    /// changed roles or groups, gives new grants); on a miss, one short read. A user unknown
    /// to the store (a principal from elsewhere) holds the default role.
    pub async fn grants_for(
        &self,
        user_id: &str,
        identity: Option<&FederatedContext>,
    ) -> Result<EffectiveGrants, StorageError> {
        let (version, policy) = self.cache.policy(|| self.load()).await?;
        let generation = identity.map_or(0, |c| c.generation);
        self.cache
            .grants(user_id, version, generation, async {
                let access = self.store.user_access(user_id).await?;
                if access.disabled {
                    return Ok(EffectiveGrants::default());
                }
                let identities = identity
                    .map(FederatedContext::identities)
                    .unwrap_or_default();
                let roles = policy.effective_roles(&mcpgate_rbac::Subject {
                    roles: &access.roles,
                    team_roles: &access.team_roles,
                    identities: &identities,
                    is_admin: access.is_admin,
                });
                Ok(policy.effective_grants(&roles))
            })
            .await
    }

    /// Decides one request for a user (with their identity-provider context, if federated).
    pub async fn decide(
        &self,
        user_id: &str,
        identity: Option<&FederatedContext>,
        request: &Request<'_>,
    ) -> Result<(Decision, EffectiveGrants), StorageError> {
        let grants = self.grants_for(user_id, identity).await?;
        Ok((grants.decide(request), grants))
    }

    /// Reads the stored policy and compiles it with the configuration's.
    async fn load(&self) -> Result<(i64, Policy), StorageError> {
        let stored = self.store.load_policy().await?;
        let version = stored.version;
        match self.compile(&stored, None) {
            Ok(policy) => Ok((version, policy)),
            Err(errors) => {
                // The API refuses changes that would not compile, so this takes a changed
                // configuration (a config role now clashing, a default role gone): serve the
                // configuration's policy rather than nothing, and say why loudly.
                for e in &errors {
                    tracing::error!(error = %e, "stored policy does not compile with the configuration; using the configuration's roles only");
                }
                let policy = self
                    .config
                    .compile()
                    .map_err(|e| StorageError::Config(format!("policy does not compile: {e:?}")))?;
                Ok((version, policy))
            }
        }
    }

    /// The merged policy: configuration roles, then stored roles (a stored role named like a
    /// configuration role is ignored: the configuration wins), optionally with one stored
    /// role replaced or removed (`change`: name, None = removed) to check an API change.
    pub fn merged_spec(
        &self,
        stored: &StoredPolicy,
        change: Option<(&str, Option<&RoleSpec>)>,
    ) -> PolicySpec {
        let mut spec = self.config.clone();
        let mut replaced = false;
        for role in &stored.roles {
            // Rows for `admin` and configuration roles only let users and teams hold them.
            if self.is_builtin(&role.name) {
                if !role.grants.is_empty() {
                    tracing::warn!(role = %role.name, "a stored role has the name of a configured role; the configured one applies");
                }
                continue;
            }
            match change {
                Some((name, new)) if name == role.name => {
                    replaced = true;
                    if let Some(new) = new {
                        spec.roles.push(new.clone());
                    }
                }
                _ => spec.roles.push(role_spec(role)),
            }
        }
        if let Some((_, Some(new))) = change
            && !replaced
        {
            spec.roles.push(new.clone());
        }
        let removed = match change {
            Some((name, None)) => Some(name),
            _ => None,
        };
        spec.mappings.extend(
            stored
                .mappings
                .iter()
                .filter(|m| Some(m.role.as_str()) != removed)
                .map(|m| mcpgate_rbac::MappingRule {
                    provider: m.provider.clone(),
                    claim: m.claim.clone(),
                    value: m.value.clone(),
                    role: m.role.clone(),
                }),
        );
        spec
    }

    /// Compiles the merged policy (see [`Enforcer::merged_spec`]).
    pub fn compile(
        &self,
        stored: &StoredPolicy,
        change: Option<(&str, Option<&RoleSpec>)>,
    ) -> Result<Policy, Vec<PolicyError>> {
        self.merged_spec(stored, change).compile()
    }
}

/// A stored role as the rbac crate's spec. An unknown effect fails to compile later through
/// its action (a stored effect is always written by the API as `allow` or `deny`).
pub fn role_spec(role: &mcpgate_storage::StoredRole) -> RoleSpec {
    RoleSpec {
        name: role.name.clone(),
        description: role.description.clone(),
        grants: role
            .grants
            .iter()
            .map(|g| mcpgate_rbac::GrantSpec {
                effect: if g.effect == "allow" {
                    mcpgate_rbac::Effect::Allow
                } else {
                    mcpgate_rbac::Effect::Deny
                },
                action: g.action.clone(),
                upstream: g.upstream.clone(),
                target: g.target.clone(),
            })
            .collect(),
    }
}
