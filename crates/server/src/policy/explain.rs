//! Explaining a user's access to an administrator: which roles they hold and why (directly,
//! through a team, the default role, an identity-provider claim matched by a mapping rule),
//! and how one request would be decided, naming the grant that decides it.
//!
//! Computed afresh from the stored policy, never from the per-user cache, so it shows what
//! the next request will see.

use mcpgate_rbac::{Decision, MappingRule, RoleSource, Subject};
use mcpgate_storage::StorageError;
use serde::Serialize;

use super::Enforcer;
use crate::identity::FederatedContext;

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub disabled: bool,
    pub roles: Vec<HeldRole>,
    /// Direct or team roles the policy does not define (ignored).
    pub unknown_roles: Vec<String>,
    pub decision: Option<ExplainedDecision>,
}

#[derive(Debug, Serialize)]
pub struct HeldRole {
    pub name: String,
    pub because: Vec<Because>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Because {
    Admin,
    Default,
    Direct,
    Team,
    /// A mapping rule matched the user's identity-provider claims.
    Mapping {
        rule: MappingRule,
    },
}

#[derive(Debug, Serialize)]
pub struct ExplainedDecision {
    pub allowed: bool,
    /// `denied by role `dev` grant #1: deny tools/call upstream="gh-prod" target="delete_*"`.
    pub explanation: String,
}

impl Enforcer {
    /// The roles `user_id` holds and why, and the decision for `request` when given.
    pub async fn explain(
        &self,
        user_id: &str,
        identity: Option<&FederatedContext>,
        request: Option<&mcpgate_rbac::Request<'_>>,
    ) -> Result<Explanation, StorageError> {
        let stored = self.store.load_policy().await?;
        let spec = self.merged_spec(&stored, None);
        let policy = match spec.compile() {
            Ok(policy) => policy,
            // As when serving requests: the configuration's policy alone.
            Err(_) => {
                let (_, policy) = self.load().await?;
                policy
            }
        };
        let access = self.store.user_access(user_id).await?;
        let identities = identity
            .map(FederatedContext::identities)
            .unwrap_or_default();
        let roles = policy.effective_roles(&Subject {
            roles: &access.roles,
            team_roles: &access.team_roles,
            identities: &identities,
            is_admin: access.is_admin,
        });
        let decision = request.map(|r| {
            let decision: Decision = if access.disabled {
                mcpgate_rbac::EffectiveGrants::default().decide(r)
            } else {
                policy.decide(&roles, r)
            };
            ExplainedDecision {
                allowed: decision.allowed,
                explanation: decision.to_string(),
            }
        });
        Ok(Explanation {
            disabled: access.disabled,
            roles: roles
                .entries()
                .iter()
                .map(|e| HeldRole {
                    name: e.name.to_string(),
                    because: e
                        .sources
                        .iter()
                        .map(|s| match *s {
                            RoleSource::Admin => Because::Admin,
                            RoleSource::Default => Because::Default,
                            RoleSource::Direct => Because::Direct,
                            RoleSource::Team => Because::Team,
                            RoleSource::Mapping { rule } => Because::Mapping {
                                rule: spec.mappings.get(rule).cloned().unwrap_or_else(|| {
                                    MappingRule {
                                        provider: None,
                                        claim: format!("mappings[{rule}]"),
                                        value: String::new(),
                                        role: e.name.to_string(),
                                    }
                                }),
                            },
                        })
                        .collect(),
                })
                .collect(),
            unknown_roles: roles.unknown().to_vec(),
            decision,
        })
    }
}
