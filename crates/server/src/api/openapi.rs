//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of `/api/v1`, generated from the
//! handlers' `#[utoipa::path]` attributes. A test checks it against the router's routes, so
//! a route cannot be added without being described.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mcpgate API",
        description = "Sign-in for programs, the caller's account, and administration: users, \
                       sessions and tokens, OAuth clients, upstreams, roles, teams, claim \
                       mappings, the audit log. Errors are JSON: `error`, `error_description`."
    ),
    paths(
        crate::api::me::login,
        crate::api::me::me,
        crate::api::me::change_password,
        crate::api::admin::list,
        crate::api::admin::create,
        crate::api::admin::create_batch,
        crate::api::admin::disable,
        crate::api::admin::enable,
        crate::api::accounts::delete_user,
        crate::api::accounts::reset_password,
        crate::api::accounts::list_sessions,
        crate::api::accounts::delete_sessions,
        crate::api::accounts::delete_session,
        crate::api::accounts::list_families,
        crate::api::accounts::revoke_family,
        crate::api::accounts::list_clients,
        crate::api::accounts::revoke_client,
        crate::api::audit::list,
        crate::api::upstreams::list,
        crate::api::upstreams::secret_status,
        crate::api::upstreams::set_secret,
        crate::api::upstreams::delete_secret,
        crate::api::policy::show,
        crate::api::policy::list_roles,
        crate::api::policy::put_role,
        crate::api::policy::delete_role,
        crate::api::policy::grant_user_role,
        crate::api::policy::revoke_user_role,
        crate::api::policy::explain_access,
        crate::api::policy::list_teams,
        crate::api::policy::create_team,
        crate::api::policy::delete_team,
        crate::api::policy::add_member,
        crate::api::policy::remove_member,
        crate::api::policy::add_team_role,
        crate::api::policy::remove_team_role,
        crate::api::policy::add_mapping,
        crate::api::policy::delete_mapping,
        crate::api::service_clients::create,
        crate::api::service_clients::list,
        crate::api::service_clients::get,
        crate::api::service_clients::rotate,
        crate::api::service_clients::retire,
        crate::api::service_clients::disable,
        crate::api::service_clients::enable,
        crate::api::service_clients::delete,
        crate::api::tokens::create,
        crate::api::tokens::list,
        crate::api::tokens::revoke,
        openapi_json,
    ),
    modifiers(&Bearer),
    tags(
        (name = "account", description = "The caller's own account"),
        (name = "service clients", description = "Machine clients: client credentials, secrets, rotation"),
        (name = "users", description = "Accounts, their sessions and tokens (administrators)"),
        (name = "clients", description = "OAuth clients (administrators)"),
        (name = "audit", description = "The audit log (administrators)"),
        (name = "upstreams", description = "Upstream MCP servers (administrators)"),
        (name = "policy", description = "Roles, grants, teams, mappings (administrators)"),
        (name = "meta", description = "This description"),
    )
)]
pub struct ApiDoc;

/// API tokens (`POST /api/v1/login`) go in `Authorization: Bearer`.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    summary = "This OpenAPI document",
    responses((status = 200, description = "OpenAPI 3.1 JSON")),
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/api/v1` route the router declares (the route literals of `app.rs`, with the
    /// methods chained on them), and nothing else, is in the document.
    #[test]
    fn the_document_describes_every_api_route_of_the_router() {
        let source = include_str!("../app.rs");
        let mut routes = std::collections::BTreeSet::new();
        for chunk in source.split(".route(").skip(1) {
            let Some(rest) = chunk.trim_start().strip_prefix('"') else {
                continue;
            };
            let Some(end) = rest.find('"') else { continue };
            let path = &rest[..end];
            if !path.starts_with("/api/v1/") {
                continue;
            }
            // The handler expression ends at the route's closing parenthesis.
            let handlers = &rest[end..];
            let handlers = &handlers[..handlers.find("\n        .").unwrap_or(handlers.len())];
            for method in ["get", "post", "put", "delete", "patch"] {
                let called = handlers.contains(&format!("{method}("))
                    || handlers.contains(&format!(".{method}("))
                    || handlers.contains(&format!("routing::{method}("));
                if called {
                    routes.insert(format!("{method} {path}"));
                }
            }
        }
        assert!(routes.len() > 30, "{routes:?}");
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut described = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                described.insert(format!("{method} {path}"));
            }
        }
        let missing: Vec<_> = routes.difference(&described).collect();
        let extra: Vec<_> = described.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes not in the OpenAPI document: {missing:?}"
        );
        assert!(extra.is_empty(), "described but not routed: {extra:?}");
    }
}
