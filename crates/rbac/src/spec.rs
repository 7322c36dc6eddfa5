//! The policy as written: plain serde types the server loads from TOML ("policy as code") or
//! from its database, then compiles with [`Policy::compile`](crate::Policy::compile).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Policy, PolicyError};

/// A whole policy document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// A role every signed-in user holds (never `admin`). None: no default role.
    #[serde(default)]
    pub default_role: Option<String>,
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    /// Identity-provider claim → role rules.
    #[serde(default)]
    pub mappings: Vec<MappingRule>,
}

impl PolicySpec {
    /// Compiles the policy, reporting every problem at once.
    pub fn compile(&self) -> Result<Policy, Vec<PolicyError>> {
        Policy::compile(&self.roles, &self.mappings, self.default_role.as_deref())
    }
}

/// A named set of grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Unique; `admin` is built in and reserved.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
}

/// Allows or denies an action on matching upstreams and items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    pub effect: Effect,
    /// `tools/call`, a group such as `tools/*`, `*` (every MCP action), `other` (methods this
    /// build does not know; target = method name), `admin:users`, `admin:*`, ….
    pub action: String,
    /// Pattern over upstream names (`*`, `github`, `gh-*`). Defaults to `*`.
    #[serde(default = "any")]
    pub upstream: String,
    /// Pattern over the item: tool name, resource URI, prompt name, completion reference,
    /// or method name for `other`. Must stay `*` for actions without an item. Defaults to `*`.
    #[serde(default = "any")]
    pub target: String,
}

fn any() -> String {
    "*".to_owned()
}

/// Whether a grant allows or denies. Deny wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        })
    }
}

/// Gives `role` to users whose identity-provider claim matches `value`.
///
/// `claim` is one of:
/// - `email_domain`: the domain of the user's email, only when the provider says the email
///   is verified; compared case-insensitively;
/// - `groups` / `roles`: the normalised `UserContext` lists (GitHub `org` and `org:team`,
///   Keycloak groups and roles as the provider fills them);
/// - `tenant.<key>`: a `UserContext` tenant fact;
/// - anything else: a dot-separated path into the raw claims (`hd`, `realm_access.roles`,
///   `resource_access.my-client.roles`); quote a key that contains dots
///   (`resource_access."my.client".roles`). Arrays on the way match if any element does.
///
/// `value` is a [`Pattern`](crate::Pattern): `acme:*` matches every team of org `acme`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRule {
    /// The configured provider id this rule applies to; None: every provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub claim: String,
    pub value: String,
    pub role: String,
}
