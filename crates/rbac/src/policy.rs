//! A compiled policy: roles with their grants, mapping rules and the default role; who holds
//! which roles, and the decision over a role set.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mcpgate_core::UserContext;

use crate::decision::{EffectiveGrants, Grant, Request, evaluate};
use crate::mapping::{self, CompiledMapping};
use crate::{ActionSet, Decision, Effect, GrantSpec, MappingRule, Pattern, PolicyError, RoleSpec};

/// The built-in role that may do everything (every MCP and admin action, every upstream).
pub const ADMIN_ROLE: &str = "admin";

/// Tells policies apart so a [`RoleSet`] from an older policy is resolved by name, not by
/// index (a counter, not a clock).
static NEXT_POLICY_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled policy. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    id: u64,
    roles: Vec<Role>,
    by_name: HashMap<Arc<str>, usize>,
    mappings: Vec<CompiledMapping>,
    default_role: Option<usize>,
}

#[derive(Debug)]
struct Role {
    name: Arc<str>,
    description: String,
    grants: Vec<Arc<Grant>>,
    denies: Vec<Arc<Grant>>,
    allows: Vec<Arc<Grant>>,
}

/// A signed-in user asking (there is no anonymous subject: the default role always applies).
/// Direct and team roles are role names (the caller resolves teams to their roles; `admin`
/// names the built-in role); the identity feeds the mapping rules. Unknown role names are
/// ignored and reported in [`RoleSet::unknown`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// Roles given to the user directly.
    pub roles: &'a [String],
    /// Roles of the teams the user belongs to.
    pub team_roles: &'a [String],
    /// What each identity provider the user is signed in with said about them: every live
    /// grant counts (a user linked to GitHub and Google matches the rules of both), not only
    /// the last sign-in. Empty for a local account.
    pub identities: &'a [Identity<'a>],
    /// The account is an administrator: holds the built-in `admin` role.
    pub is_admin: bool,
}

/// The identity provider a user signed in with and what it said about them.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The configured provider id (`[[providers]] id`).
    pub provider: &'a str,
    pub user: &'a UserContext,
}

/// Why a user holds a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSource {
    /// `is_admin` on the account.
    Admin,
    /// The policy's default role, held by every signed-in user.
    Default,
    Direct,
    Team,
    /// Mapping rule `mappings[rule]`.
    Mapping {
        rule: usize,
    },
}

/// One role a user holds and every reason they hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleEntry {
    index: usize,
    pub name: Arc<str>,
    pub sources: Vec<RoleSource>,
}

/// The roles a user holds under one policy, in policy order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleSet {
    policy: u64,
    entries: Vec<RoleEntry>,
    unknown: Vec<String>,
}

impl RoleSet {
    pub fn entries(&self) -> &[RoleEntry] {
        &self.entries
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| &*e.name)
    }
    pub fn contains(&self, role: &str) -> bool {
        self.names().any(|n| n == role)
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Direct or team role names the policy does not define (ignored).
    pub fn unknown(&self) -> &[String] {
        &self.unknown
    }

    fn add(&mut self, index: usize, name: &Arc<str>, source: RoleSource) {
        match self.entries.iter_mut().find(|e| e.index == index) {
            Some(e) if e.sources.contains(&source) => {}
            Some(e) => e.sources.push(source),
            None => self.entries.push(RoleEntry {
                index,
                name: Arc::clone(name),
                sources: vec![source],
            }),
        }
    }
}

impl Policy {
    /// Compiles roles, mapping rules and the default role, reporting every problem at once,
    /// each with its path (`roles[2].grants[0].upstream`).
    pub fn compile(
        roles: &[RoleSpec],
        mappings: &[MappingRule],
        default_role: Option<&str>,
    ) -> Result<Policy, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let mut compiled = vec![admin_role()];
        let mut by_name: HashMap<Arc<str>, usize> = HashMap::new();
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        by_name.insert(Arc::clone(&compiled[0].name), 0);

        for (i, spec) in roles.iter().enumerate() {
            let path = format!("roles[{i}]");
            let name = spec.name.as_str();
            if name.is_empty() || name.trim() != name || name.chars().any(char::is_control) {
                errors.push(
                    PolicyError::BadRoleName { name: name.into() }.at(format!("{path}.name")),
                );
            } else if name == ADMIN_ROLE {
                errors.push(
                    PolicyError::ReservedRole { name: name.into() }.at(format!("{path}.name")),
                );
            } else if let Some(first) = first_seen.get(name) {
                errors.push(
                    PolicyError::DuplicateRole {
                        name: name.into(),
                        first: format!("roles[{first}]"),
                    }
                    .at(format!("{path}.name")),
                );
            } else {
                first_seen.insert(name, i);
            }
            let name: Arc<str> = name.into();
            let mut grants = Vec::with_capacity(spec.grants.len());
            for (g, grant) in spec.grants.iter().enumerate() {
                match compile_grant(&name, g, grant) {
                    Ok(grant) => grants.push(grant),
                    Err(es) => errors.extend(
                        es.into_iter()
                            .map(|(field, e)| e.at(format!("{path}.grants[{g}].{field}"))),
                    ),
                }
            }
            if first_seen.get(&*name) == Some(&i) {
                by_name.insert(Arc::clone(&name), compiled.len());
            }
            compiled.push(Role::new(name, spec.description.clone(), grants));
        }

        let mut rules = Vec::with_capacity(mappings.len());
        for (i, rule) in mappings.iter().enumerate() {
            match mapping::compile(rule, by_name.get(rule.role.as_str()).copied()) {
                Ok(m) => rules.push(m),
                Err(es) => {
                    errors.extend(es.into_iter().map(|e| prefix(e, &format!("mappings[{i}]"))))
                }
            }
        }

        let default_role = match default_role {
            None => None,
            Some(ADMIN_ROLE) => {
                errors.push(PolicyError::DefaultRoleAdmin.at("default_role"));
                None
            }
            Some(name) => {
                let found = by_name.get(name).copied();
                if found.is_none() {
                    errors.push(PolicyError::UnknownRole { role: name.into() }.at("default_role"));
                }
                found
            }
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            inner: Arc::new(Compiled {
                id: NEXT_POLICY_ID.fetch_add(1, Ordering::Relaxed),
                roles: compiled,
                by_name,
                mappings: rules,
                default_role,
            }),
        })
    }

    /// The role names, `admin` first, then in policy order.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.inner.roles.iter().map(|r| &*r.name)
    }

    /// A role's description and grants.
    pub fn role(&self, name: &str) -> Option<(&str, &[Arc<Grant>])> {
        let role = &self.inner.roles[*self.inner.by_name.get(name)?];
        Some((&role.description, &role.grants))
    }

    /// The provider id of each mapping rule that names one, with the rule's index, so the
    /// server can report `mappings[N].provider` naming a provider it does not configure.
    pub fn mapping_providers(&self) -> impl Iterator<Item = (usize, &str)> {
        self.inner
            .mappings
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, m.provider()?)))
    }

    pub fn default_role(&self) -> Option<&str> {
        self.inner.default_role.map(|i| &*self.inner.roles[i].name)
    }

    /// The roles `subject` holds: `admin` if flagged, the default role, direct and team roles
    /// the policy defines, and the roles of every mapping rule their identity matches.
    pub fn effective_roles(&self, subject: &Subject<'_>) -> RoleSet {
        let p = &*self.inner;
        let mut set = RoleSet {
            policy: p.id,
            ..RoleSet::default()
        };
        if subject.is_admin {
            set.add(0, &p.roles[0].name, RoleSource::Admin);
        }
        if let Some(i) = p.default_role {
            set.add(i, &p.roles[i].name, RoleSource::Default);
        }
        for (names, source) in [
            (subject.roles, RoleSource::Direct),
            (subject.team_roles, RoleSource::Team),
        ] {
            for name in names {
                match p.by_name.get(name.as_str()) {
                    Some(&i) => set.add(i, &p.roles[i].name, source),
                    None if !set.unknown.contains(name) => set.unknown.push(name.clone()),
                    None => {}
                }
            }
        }
        for id in subject.identities {
            for (r, rule) in p.mappings.iter().enumerate() {
                if rule.matches(id.provider, id.user) {
                    set.add(
                        rule.role,
                        &p.roles[rule.role].name,
                        RoleSource::Mapping { rule: r },
                    );
                }
            }
        }
        set.entries.sort_by_key(|e| e.index);
        set
    }

    /// The flattened grants of a role set, for the server's per-user cache.
    pub fn effective_grants(&self, roles: &RoleSet) -> EffectiveGrants {
        let roles = self.resolve(roles);
        EffectiveGrants::new(
            roles.clone().map(|r| Arc::clone(&r.name)).collect(),
            roles.flat_map(|r| r.grants.iter().cloned()),
        )
    }

    /// Decides one request for a role set, naming the grant that decided. Same rule as
    /// [`EffectiveGrants::decide`].
    pub fn decide(&self, roles: &RoleSet, request: &Request<'_>) -> Decision {
        let roles = self.resolve(roles);
        evaluate(
            roles.clone().flat_map(|r| r.denies.iter()),
            roles.flat_map(|r| r.allows.iter()),
            request,
        )
        .into_decision()
    }

    /// The roles of a set, by index when it came from this policy, by name otherwise (a set
    /// cached before a reload); roles the policy no longer has are skipped. No allocation.
    fn resolve<'s>(&'s self, roles: &'s RoleSet) -> impl Iterator<Item = &'s Role> + Clone {
        let p = &*self.inner;
        let same = roles.policy == p.id;
        roles.entries.iter().filter_map(move |e| {
            let index = if same {
                e.index
            } else {
                *p.by_name.get(&*e.name)?
            };
            p.roles.get(index)
        })
    }
}

impl Role {
    fn new(name: Arc<str>, description: String, grants: Vec<Arc<Grant>>) -> Role {
        let (denies, allows) = grants
            .iter()
            .cloned()
            .partition(|g| g.effect == Effect::Deny);
        Role {
            name,
            description,
            grants,
            denies,
            allows,
        }
    }
}

fn admin_role() -> Role {
    let grant = |index, action: &str, actions| {
        Arc::new(Grant {
            role: ADMIN_ROLE.into(),
            index,
            effect: Effect::Allow,
            action: action.into(),
            actions,
            upstream: Pattern::any(),
            target: Pattern::any(),
        })
    };
    Role::new(
        ADMIN_ROLE.into(),
        "Built in: every MCP and admin action on every upstream".into(),
        vec![
            grant(0, "*", ActionSet::MCP),
            grant(1, "admin:*", ActionSet::ADMIN),
        ],
    )
}

/// Compiles one grant; errors carry the field name.
fn compile_grant(
    role: &Arc<str>,
    index: usize,
    spec: &GrantSpec,
) -> Result<Arc<Grant>, Vec<(&'static str, PolicyError)>> {
    let mut errors = Vec::new();
    let actions = ActionSet::parse(&spec.action).map_err(|e| errors.push(("action", e)));
    let upstream = Pattern::parse(&spec.upstream).map_err(|e| errors.push(("upstream", e)));
    let target = Pattern::parse(&spec.target).map_err(|e| errors.push(("target", e)));
    if let (Ok(actions), Ok(target)) = (&actions, &target)
        && !target.is_any()
        && !actions.any_takes_target()
    {
        errors.push((
            "target",
            PolicyError::TargetWithoutTargetAction {
                action: spec.action.clone(),
                target: spec.target.clone(),
            },
        ));
    }
    match (actions, upstream, target) {
        (Ok(actions), Ok(upstream), Ok(target)) if errors.is_empty() => Ok(Arc::new(Grant {
            role: Arc::clone(role),
            index,
            effect: spec.effect,
            action: spec.action.as_str().into(),
            actions,
            upstream,
            target,
        })),
        _ => Err(errors),
    }
}

/// `mappings[3]` + `role: …` → `mappings[3].role: …`.
fn prefix(error: PolicyError, path: &str) -> PolicyError {
    match error {
        PolicyError::At {
            path: inner,
            source,
        } => PolicyError::At {
            path: format!("{path}.{inner}"),
            source,
        },
        other => other.at(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn cached_types_are_send_sync_and_clone() {
        assert_send_sync_clone::<Policy>();
        assert_send_sync_clone::<EffectiveGrants>();
        assert_send_sync_clone::<RoleSet>();
        assert_send_sync_clone::<Decision>();
    }

    #[test]
    fn role_set_from_another_policy_resolves_by_name() {
        let spec = |name: &str| RoleSpec {
            name: name.into(),
            description: String::new(),
            grants: vec![GrantSpec {
                effect: Effect::Allow,
                action: "tools/call".into(),
                upstream: name.into(),
                target: "*".into(),
            }],
        };
        let old = Policy::compile(&[spec("a"), spec("b")], &[], None).unwrap();
        let new = Policy::compile(&[spec("b")], &[], None).unwrap();
        let roles = old.effective_roles(&Subject {
            roles: &["b".into()],
            ..Subject::default()
        });
        let call = Request::new(crate::Action::ToolsCall, "b", Some("t"));
        let d = new.decide(&roles, &call);
        assert!(d.allowed);
        assert_eq!(d.decided_by.map(|b| b.role), Some("b".into()));
        assert!(new.effective_grants(&roles).is_allowed(&call));
    }
}
