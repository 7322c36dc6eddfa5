//! Keycloak's role claims (the default "roles" client scope puts them in the access token):
//! `realm_access.roles` and `resource_access.<client>.roles`.

use serde_json::Value;

/// Realm roles, as given.
pub fn realm_roles(claims: &Value) -> Vec<String> {
    mcpgate_provider_kit::strings(claims.pointer("/realm_access/roles"))
}

/// Client roles of every client, named `client:role` (oauth2-proxy's convention), so a mapping
/// rule can tell `mcpgate:admin` from a realm role `admin`.
pub fn client_roles(claims: &Value) -> Vec<String> {
    let Some(Value::Object(clients)) = claims.get("resource_access") else {
        return Vec::new();
    };
    clients
        .iter()
        .flat_map(|(client, access)| {
            mcpgate_provider_kit::strings(access.get("roles"))
                .into_iter()
                .map(move |role| format!("{client}:{role}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn realm_and_client_roles() {
        let c = json!({
            "realm_access": {"roles": ["admin", "user"]},
            "resource_access": {"mcpgate": {"roles": ["writer"]}, "account": {"roles": ["view"]}}
        });
        assert_eq!(realm_roles(&c), ["admin", "user"]);
        assert_eq!(client_roles(&c), ["account:view", "mcpgate:writer"]);
        assert!(realm_roles(&json!({})).is_empty());
        assert!(client_roles(&json!({"resource_access": []})).is_empty());
    }
}
