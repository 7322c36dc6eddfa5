//! Standard OIDC claims (OIDC Core §5.1) normalised into a [`UserContext`].

use mcpgate_core::{ProviderError, UserContext};
use serde_json::Value;

/// Builds a user context from userinfo or id-token claims. `sub` is required: it is the only
/// stable key (`preferred_username` and `email` can change).
pub fn user_context(claims: Value) -> Result<UserContext, ProviderError> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::Misconfigured("the user claims have no sub".into()))?
        .to_owned();
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(UserContext {
        subject,
        email: text("email"),
        email_verified: truthy(claims.get("email_verified")),
        name: text("name"),
        groups: strings(claims.get("groups")),
        roles: strings(claims.get("roles")),
        tenant: Default::default(),
        claims,
    })
}

/// A boolean claim; some providers (AWS Cognito, older Keycloak mappers) send `"true"`.
pub fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// An array of strings (non-strings skipped); a single string counts as one.
pub fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalises_standard_claims() {
        let c = user_context(json!({"sub":"u1","email":"a@x","email_verified":"true",
            "name":"A","groups":["g1", 3, "g2"],"roles":"r"}));
        let c = c.unwrap_or_default();
        assert_eq!(c.subject, "u1");
        assert_eq!(c.email.as_deref(), Some("a@x"));
        assert!(c.email_verified);
        assert_eq!(c.groups, ["g1", "g2"]);
        assert_eq!(c.roles, ["r"]);
    }

    #[test]
    fn sub_is_required() {
        assert!(user_context(json!({"email":"a@x"})).is_err());
        assert!(user_context(json!({"sub":""})).is_err());
    }
}
