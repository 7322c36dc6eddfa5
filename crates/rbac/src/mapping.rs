//! Claim → role mapping rules, compiled: the claim path split once, the value a pattern.

use mcpgate_core::UserContext;
use serde_json::Value;

use crate::{MappingRule, Pattern, PolicyError};

/// Where a rule reads its values from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    EmailDomain,
    Groups,
    Roles,
    Tenant(Box<str>),
    /// Keys into the raw claims JSON.
    Path(Box<[Box<str>]>),
}

/// A mapping rule ready to evaluate. `role` is an index into the policy's roles.
#[derive(Debug, Clone)]
pub(crate) struct CompiledMapping {
    provider: Option<Box<str>>,
    source: Source,
    value: Pattern,
    pub(crate) role: usize,
}

/// Compiles the rule's provider, claim and value; the caller resolves `role` and prefixes
/// errors with `mappings[N]`.
pub(crate) fn compile(
    rule: &MappingRule,
    role: Option<usize>,
) -> Result<CompiledMapping, Vec<PolicyError>> {
    let mut errors = Vec::new();
    if rule.provider.as_deref() == Some("") {
        errors.push(PolicyError::EmptyProvider.at("provider"));
    }
    let source = parse_claim(&rule.claim).map_err(|e| errors.push(e.at("claim")));
    // Domains are case-insensitive: compare lowercased on both sides.
    let value = if matches!(source, Ok(Source::EmailDomain)) {
        Pattern::parse(&rule.value.to_lowercase())
    } else {
        Pattern::parse(&rule.value)
    }
    .map_err(|e| errors.push(e.at("value")));
    if role.is_none() {
        errors.push(
            PolicyError::UnknownRole {
                role: rule.role.clone(),
            }
            .at("role"),
        );
    }
    match (source, value, role) {
        (Ok(source), Ok(value), Some(role)) if errors.is_empty() => Ok(CompiledMapping {
            provider: rule.provider.as_deref().map(Into::into),
            source,
            value,
            role,
        }),
        _ => Err(errors),
    }
}

fn parse_claim(claim: &str) -> Result<Source, PolicyError> {
    let bad = |reason| PolicyError::BadClaim {
        claim: claim.to_owned(),
        reason,
    };
    match claim {
        "email_domain" => return Ok(Source::EmailDomain),
        "groups" => return Ok(Source::Groups),
        "roles" => return Ok(Source::Roles),
        _ => {}
    }
    if let Some(key) = claim.strip_prefix("tenant.") {
        if key.is_empty() {
            return Err(bad("`tenant.` needs a key, as in `tenant.hd`"));
        }
        return Ok(Source::Tenant(key.into()));
    }
    let mut segments = Vec::new();
    let mut rest = claim;
    loop {
        let (segment, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| bad("unterminated quoted key"))?;
            let after = &quoted[end + 1..];
            if !(after.is_empty() || after.starts_with('.')) {
                return Err(bad("a quoted key must be followed by `.` or the end"));
            }
            (&quoted[..end], after)
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if segment.is_empty() {
            return Err(bad("empty key in the path"));
        }
        segments.push(segment.into());
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None => break,
        }
    }
    Ok(Source::Path(segments.into()))
}

impl CompiledMapping {
    pub(crate) fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// Whether this rule gives its role to `user`, signed in through `provider`.
    pub(crate) fn matches(&self, provider: &str, user: &UserContext) -> bool {
        if self.provider.as_deref().is_some_and(|p| p != provider) {
            return false;
        }
        let value = &self.value;
        match &self.source {
            Source::EmailDomain => {
                let domain = user
                    .email
                    .as_deref()
                    .filter(|_| user.email_verified)
                    .and_then(|e| e.rsplit_once('@'))
                    .map(|(_, d)| d);
                domain.is_some_and(|d| value.matches(&d.to_lowercase()))
            }
            Source::Groups => user.groups.iter().any(|g| value.matches(g)),
            Source::Roles => user.roles.iter().any(|r| value.matches(r)),
            Source::Tenant(key) => user.tenant.get(&**key).is_some_and(|v| value.matches(v)),
            Source::Path(path) => any_leaf(&user.claims, path, value),
        }
    }
}

/// Walks `path` into `json`; arrays met on the way (or at the end) match if any element does.
/// Strings compare as they are; booleans and numbers by their JSON text.
fn any_leaf(json: &Value, path: &[Box<str>], value: &Pattern) -> bool {
    match json {
        Value::Array(items) => items.iter().any(|v| any_leaf(v, path, value)),
        Value::Object(map) => match path.split_first() {
            Some((key, rest)) => map.get(&**key).is_some_and(|v| any_leaf(v, rest, value)),
            None => false,
        },
        _ if !path.is_empty() => false,
        Value::String(s) => value.matches(s),
        Value::Bool(b) => value.matches(if *b { "true" } else { "false" }),
        Value::Number(n) => value.matches(&n.to_string()),
        Value::Null => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(claim: &str, value: &str) -> CompiledMapping {
        let r = MappingRule {
            provider: None,
            claim: claim.into(),
            value: value.into(),
            role: "r".into(),
        };
        compile(&r, Some(0)).unwrap()
    }

    #[test]
    fn claim_paths_parse() {
        assert_eq!(
            parse_claim("resource_access.\"my.client\".roles").unwrap(),
            Source::Path(vec!["resource_access".into(), "my.client".into(), "roles".into()].into())
        );
        assert_eq!(
            parse_claim("\"https://example.com/roles\"").unwrap(),
            Source::Path(vec!["https://example.com/roles".into()].into())
        );
        for bad in ["", "a..b", "a.", ".a", "\"a", "\"a\"b", "tenant."] {
            assert!(
                matches!(parse_claim(bad), Err(PolicyError::BadClaim { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_walk_flattens_arrays_and_compares_scalars() {
        let user = UserContext {
            claims: serde_json::json!({
                "orgs": [{"name": "acme"}, {"name": "globex"}],
                "level": 3,
                "staff": true,
                "nested": [["x", "y"]],
                "obj": {"a": "b"},
            }),
            ..UserContext::default()
        };
        assert!(rule("orgs.name", "globex").matches("p", &user));
        assert!(!rule("orgs.name", "initech").matches("p", &user));
        assert!(rule("level", "3").matches("p", &user));
        assert!(rule("staff", "true").matches("p", &user));
        assert!(rule("nested", "y").matches("p", &user));
        assert!(!rule("obj", "*").matches("p", &user));
        assert!(!rule("missing.path", "*").matches("p", &user));
    }

    #[test]
    fn email_domain_needs_a_verified_email() {
        let mut user = UserContext {
            email: Some("Ann@Example.COM".into()),
            email_verified: true,
            ..UserContext::default()
        };
        assert!(rule("email_domain", "example.com").matches("p", &user));
        assert!(rule("email_domain", "EXAMPLE.com").matches("p", &user));
        assert!(!rule("email_domain", "example.org").matches("p", &user));
        user.email_verified = false;
        assert!(!rule("email_domain", "example.com").matches("p", &user));
    }
}
