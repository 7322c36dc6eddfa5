//! Admin API for RBAC: roles and their grants, who holds them (users directly, teams), teams
//! and their members, claim → role mapping rules, and the merged policy as it applies.
//!
//! A change that would leave a policy that does not compile is refused with every problem
//! listed. `admin` and roles declared in the configuration (`[policy]`) are read-only here,
//! though users and teams may be given them. Each change bumps the policy version: this
//! replica sees it on the next request, others through PostgreSQL `NOTIFY` (or the cache TTL).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use mcpgate_rbac::{GrantSpec, MappingRule, PolicyError, RoleSpec};
use mcpgate_storage::{AuditEvent, StorageError, StoredGrant, StoredPolicy};
use serde::{Deserialize, Serialize};

use super::auth::{AdminUser, ApiJson};
use crate::app::AppState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct Page {
    after: Option<String>,
    limit: Option<i64>,
}

impl Page {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}

/// Where a role or rule is defined.
#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Builtin,
    Config,
    Database,
}

#[derive(Serialize)]
pub struct RoleView {
    name: String,
    description: String,
    source: Source,
    grants: Vec<GrantSpec>,
}

#[derive(Serialize)]
pub struct RolePage {
    roles: Vec<RoleView>,
    /// Pass as `after` for the next page; absent on the last one.
    next_after: Option<String>,
}

#[derive(Serialize)]
pub struct Changed {
    /// The policy version the change produced.
    version: i64,
}

#[derive(Serialize)]
pub struct MappingView {
    /// Absent for configuration rules (delete them from the configuration).
    id: Option<String>,
    source: Source,
    #[serde(flatten)]
    rule: MappingRule,
}

#[derive(Serialize)]
pub struct PolicyView {
    version: i64,
    default_role: Option<String>,
    roles: Vec<RoleView>,
    mappings: Vec<MappingView>,
}

fn all_roles(state: &AppState, stored: &StoredPolicy) -> Vec<RoleView> {
    let mut roles: Vec<RoleView> = vec![RoleView {
        name: mcpgate_rbac::ADMIN_ROLE.into(),
        description: "built in: every MCP and admin action on every upstream".into(),
        source: Source::Builtin,
        grants: Vec::new(),
    }];
    roles.extend(state.policy.config_spec().roles.iter().map(|r| RoleView {
        name: r.name.clone(),
        description: r.description.clone(),
        source: Source::Config,
        grants: r.grants.clone(),
    }));
    roles.extend(
        stored
            .roles
            .iter()
            .filter(|r| !state.policy.is_builtin(&r.name))
            .map(|r| {
                let spec = crate::policy::role_spec(r);
                RoleView {
                    name: spec.name,
                    description: spec.description,
                    source: Source::Database,
                    grants: spec.grants,
                }
            }),
    );
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    roles
}

/// `GET /api/v1/admin/policy`: everything that applies, merged, with where it comes from.
#[utoipa::path(
    get,
    path = "/api/v1/admin/policy",
    tag = "policy",
    summary = "The merged policy with where each part comes from",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<PolicyView>, ApiError> {
    let stored = state.store.load_policy().await?;
    let mut mappings: Vec<MappingView> = state
        .policy
        .config_spec()
        .mappings
        .iter()
        .map(|m| MappingView {
            id: None,
            source: Source::Config,
            rule: m.clone(),
        })
        .collect();
    mappings.extend(stored.mappings.iter().map(|m| MappingView {
        id: Some(m.id.clone()),
        source: Source::Database,
        rule: MappingRule {
            provider: m.provider.clone(),
            claim: m.claim.clone(),
            value: m.value.clone(),
            role: m.role.clone(),
        },
    }));
    Ok(Json(PolicyView {
        version: stored.version,
        default_role: state.policy.config_spec().default_role.clone(),
        roles: all_roles(&state, &stored),
        mappings,
    }))
}

/// `GET /api/v1/admin/roles?after=&limit=`: roles by name, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/roles",
    tag = "policy",
    summary = "Roles by name, a page at a time",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list_roles(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(page): Query<Page>,
) -> Result<Json<RolePage>, ApiError> {
    let stored = state.store.load_policy().await?;
    let limit = page.limit() as usize;
    let roles: Vec<RoleView> = all_roles(&state, &stored)
        .into_iter()
        .filter(|r| page.after.as_deref().is_none_or(|a| r.name.as_str() > a))
        .take(limit)
        .collect();
    let next_after = (roles.len() == limit)
        .then(|| roles.last().map(|r| r.name.clone()))
        .flatten();
    Ok(Json(RolePage { roles, next_after }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
}

fn refuse(errors: &[PolicyError]) -> ApiError {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    ApiError::BadRequest(format!(
        "the policy would not compile: {}",
        lines.join("; ")
    ))
}

fn read_only(name: &str) -> ApiError {
    ApiError::Conflict(format!(
        "role {name:?} is built in or declared in the configuration, and read-only here"
    ))
}

/// `PUT /api/v1/admin/roles/{name}`: creates or replaces a role with its grants in order.
#[utoipa::path(
    put,
    path = "/api/v1/admin/roles/{name}",
    tag = "policy",
    summary = "Create or replace a role with its grants",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn put_role(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<Changed>, ApiError> {
    if state.policy.is_builtin(&name) {
        return Err(read_only(&name));
    }
    let role = RoleSpec {
        name: name.clone(),
        description: body.description,
        grants: body.grants,
    };
    // The role alone first, so its errors read `grants[1].action: …`.
    let alone = mcpgate_rbac::PolicySpec {
        roles: vec![role.clone()],
        ..Default::default()
    };
    if let Err(errors) = alone.compile() {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| e.to_string().replacen("roles[0].", "", 1))
            .collect();
        return Err(ApiError::BadRequest(format!(
            "invalid role: {}",
            lines.join("; ")
        )));
    }
    let stored = state.store.load_policy().await?;
    state
        .policy
        .compile(&stored, Some((&name, Some(&role))))
        .map_err(|e| refuse(&e))?;
    let grants: Vec<StoredGrant> = role
        .grants
        .iter()
        .map(|g| StoredGrant {
            effect: g.effect.to_string(),
            action: g.action.clone(),
            upstream: g.upstream.clone(),
            target: g.target.clone(),
        })
        .collect();
    let version = state
        .store
        .put_role(&name, &role.description, &grants)
        .await?;
    Ok(changed(
        &state,
        &admin,
        "admin:roles",
        &format!("put role {name}"),
        version,
    ))
}

/// `DELETE /api/v1/admin/roles/{name}`: refused while the configuration needs the role.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/roles/{name}",
    tag = "policy",
    summary = "Delete a role",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn delete_role(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
) -> Result<Json<Changed>, ApiError> {
    if state.policy.is_builtin(&name) {
        return Err(read_only(&name));
    }
    let stored = state.store.load_policy().await?;
    state
        .policy
        .compile(&stored, Some((&name, None)))
        .map_err(|e| refuse(&e))?;
    let version = state
        .store
        .delete_role(&name)
        .await
        .map_err(|e| not_found(e, format!("no role named {name:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:roles",
        &format!("delete role {name}"),
        version,
    ))
}

/// `PUT /api/v1/admin/users/{id}/roles/{role}`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/roles/{role}",
    tag = "policy",
    summary = "Give a user a role",
    params(("id" = String, Path), ("role" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn grant_user_role(
    State(state): State<AppState>,
    admin: AdminUser,
    Path((user, role)): Path<(String, String)>,
) -> Result<Json<Changed>, ApiError> {
    let version = state
        .store
        .grant_user_role(&user, &role)
        .await
        .map_err(|e| not_found(e, format!("no user {user:?} or no role {role:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:users",
        &format!("give {user} role {role}"),
        version,
    ))
}

/// `DELETE /api/v1/admin/users/{id}/roles/{role}`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}/roles/{role}",
    tag = "policy",
    summary = "Take a role from a user",
    params(("id" = String, Path), ("role" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn revoke_user_role(
    State(state): State<AppState>,
    admin: AdminUser,
    Path((user, role)): Path<(String, String)>,
) -> Result<Json<Changed>, ApiError> {
    let version = state
        .store
        .revoke_user_role(&user, &role)
        .await
        .map_err(|e| not_found(e, format!("user {user:?} does not hold role {role:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:users",
        &format!("take {user} role {role}"),
        version,
    ))
}

#[derive(Serialize)]
pub struct TeamView {
    name: String,
    roles: Vec<String>,
    members: Vec<String>,
}

#[derive(Serialize)]
pub struct TeamPage {
    teams: Vec<TeamView>,
    next_after: Option<String>,
}

/// `GET /api/v1/admin/teams?after=&limit=`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/teams",
    tag = "policy",
    summary = "Teams with members and roles",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list_teams(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(page): Query<Page>,
) -> Result<Json<TeamPage>, ApiError> {
    let limit = page.limit();
    let teams = state.store.list_teams(page.after.as_deref(), limit).await?;
    let next_after = (teams.len() as i64 == limit)
        .then(|| teams.last().map(|t| t.name.clone()))
        .flatten();
    Ok(Json(TeamPage {
        teams: teams
            .into_iter()
            .map(|t| TeamView {
                name: t.name,
                roles: t.roles,
                members: t.members,
            })
            .collect(),
        next_after,
    }))
}

fn check_team_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 100
        || name.trim() != name
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(
            "a team name is 1 to 100 characters, not padded, without control characters".into(),
        ));
    }
    Ok(())
}

/// `PUT /api/v1/admin/teams/{name}`: creates a team (409 if it exists).
#[utoipa::path(
    put,
    path = "/api/v1/admin/teams/{name}",
    tag = "policy",
    summary = "Create a team",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn create_team(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Changed>), ApiError> {
    check_team_name(&name)?;
    let version = state.store.create_team(&name).await.map_err(|e| match e {
        StorageError::Conflict(_) => ApiError::Conflict(format!("team {name:?} exists")),
        other => other.into(),
    })?;
    let Json(c) = changed(
        &state,
        &admin,
        "admin:teams",
        &format!("create team {name}"),
        version,
    );
    Ok((StatusCode::CREATED, Json(c)))
}

/// `DELETE /api/v1/admin/teams/{name}`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/teams/{name}",
    tag = "policy",
    summary = "Delete a team",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn delete_team(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
) -> Result<Json<Changed>, ApiError> {
    let version = state
        .store
        .delete_team(&name)
        .await
        .map_err(|e| not_found(e, format!("no team named {name:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:teams",
        &format!("delete team {name}"),
        version,
    ))
}

/// `PUT /api/v1/admin/teams/{name}/members/{user_id}`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/teams/{name}/members/{user}",
    tag = "policy",
    summary = "Add a user to a team",
    params(("name" = String, Path), ("user" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn add_member(
    State(state): State<AppState>,
    admin: AdminUser,
    Path((team, user)): Path<(String, String)>,
) -> Result<Json<Changed>, ApiError> {
    let version = state
        .store
        .add_team_member(&team, &user)
        .await
        .map_err(|e| not_found(e, format!("no team {team:?} or no user {user:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:teams",
        &format!("add {user} to {team}"),
        version,
    ))
}

/// `DELETE /api/v1/admin/teams/{name}/members/{user_id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/teams/{name}/members/{user}",
    tag = "policy",
    summary = "Remove a user from a team",
    params(("name" = String, Path), ("user" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn remove_member(
    State(state): State<AppState>,
    admin: AdminUser,
    Path((team, user)): Path<(String, String)>,
) -> Result<Json<Changed>, ApiError> {
    let version = state
        .store
        .remove_team_member(&team, &user)
        .await
        .map_err(|e| not_found(e, format!("{user:?} is not a member of {team:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:teams",
        &format!("remove {user} from {team}"),
        version,
    ))
}

/// `PUT /api/v1/admin/teams/{name}/roles/{role}`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/teams/{name}/roles/{role}",
    tag = "policy",
    summary = "Give a team a role",
    params(("name" = String, Path), ("role" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn add_team_role(
    State(state): State<AppState>,
    admin: AdminUser,
    Path((team, role)): Path<(String, String)>,
) -> Result<Json<Changed>, ApiError> {
    let version = state
        .store
        .add_team_role(&team, &role)
        .await
        .map_err(|e| not_found(e, format!("no team {team:?} or no role {role:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:teams",
        &format!("give {team} role {role}"),
        version,
    ))
}

/// `DELETE /api/v1/admin/teams/{name}/roles/{role}`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/teams/{name}/roles/{role}",
    tag = "policy",
    summary = "Take a role from a team",
    params(("name" = String, Path), ("role" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn remove_team_role(
    State(state): State<AppState>,
    admin: AdminUser,
    Path((team, role)): Path<(String, String)>,
) -> Result<Json<Changed>, ApiError> {
    let version = state
        .store
        .remove_team_role(&team, &role)
        .await
        .map_err(|e| not_found(e, format!("team {team:?} does not hold role {role:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:teams",
        &format!("take {team} role {role}"),
        version,
    ))
}

/// `POST /api/v1/admin/mappings`: adds a claim → role rule (for a stored or built-in role).
#[utoipa::path(
    post,
    path = "/api/v1/admin/mappings",
    tag = "policy",
    summary = "Add a claim → role mapping rule",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn add_mapping(
    State(state): State<AppState>,
    admin: AdminUser,
    ApiJson(rule): ApiJson<MappingRule>,
) -> Result<(StatusCode, Json<MappingView>), ApiError> {
    let stored = state.store.load_policy().await?;
    let mut spec = state.policy.merged_spec(&stored, None);
    spec.mappings.push(rule.clone());
    spec.compile().map_err(|e| refuse(&e))?;
    let (mapping, version) = state
        .store
        .add_mapping(
            rule.provider.as_deref(),
            &rule.claim,
            &rule.value,
            &rule.role,
        )
        .await
        .map_err(|e| not_found(e, format!("no role {:?}", rule.role)))?;
    let _ = changed(
        &state,
        &admin,
        "admin:roles",
        &format!("add mapping {}", mapping.id),
        version,
    );
    Ok((
        StatusCode::CREATED,
        Json(MappingView {
            id: Some(mapping.id),
            source: Source::Database,
            rule,
        }),
    ))
}

/// `DELETE /api/v1/admin/mappings/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/mappings/{id}",
    tag = "policy",
    summary = "Delete a mapping rule",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn delete_mapping(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Changed>, ApiError> {
    let version = state
        .store
        .delete_mapping(&id)
        .await
        .map_err(|e| not_found(e, format!("no mapping {id:?}")))?;
    Ok(changed(
        &state,
        &admin,
        "admin:roles",
        &format!("delete mapping {id}"),
        version,
    ))
}

fn not_found(e: StorageError, what: String) -> ApiError {
    match e {
        StorageError::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
}

/// This replica moves to the new version at once; the change goes to the audit log.
fn changed(
    state: &AppState,
    admin: &AdminUser,
    action: &str,
    what: &str,
    version: i64,
) -> Json<Changed> {
    state.policy.note_version(version);
    let mut event = AuditEvent::new(action, "changed");
    event.user_id = Some(admin.0.user.id.clone());
    event.detail = serde_json::json!({ "change": what, "version": version }).to_string();
    state.audit.record(event);
    tracing::info!(user.id = %admin.0.user.id, change = what, version, "policy changed");
    Json(Changed { version })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    /// With `method`: the upstream of the request to decide.
    upstream: Option<String>,
    /// An MCP method (`tools/call`, `resources/read`, …).
    method: Option<String>,
    /// The tool, prompt or resource the request names.
    name: Option<String>,
}

#[derive(Serialize)]
pub struct AccessView {
    user_id: String,
    /// The identity provider the user signed in with, when federated.
    provider: Option<String>,
    /// Why the identity provider's claims are missing (the provider is unreachable, …): the
    /// mapped roles are then not shown.
    identity_error: Option<String>,
    #[serde(flatten)]
    explanation: crate::policy::Explanation,
}

/// `GET /api/v1/admin/users/{id}/access?upstream=&method=&name=`: the roles a user holds and
/// why, and (with `upstream` and `method`) how that request would be decided and by which
/// grant. What the next request will see: the user's current identity-provider claims are
/// matched against the mapping rules.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/access",
    tag = "policy",
    summary = "A user's roles and why, and how a request would be decided (`upstream`, `method`, `name`)",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn explain_access(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(user): Path<String>,
    query: Result<Query<AccessQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AccessView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    state
        .store
        .get_user(&user)
        .await
        .map_err(|e| not_found(e, format!("no user {user:?}")))?;
    let request = match (&query.upstream, &query.method) {
        (Some(upstream), Some(method)) => Some(mcpgate_rbac::Request::for_method(
            method,
            upstream,
            query.name.as_deref(),
        )),
        (None, None) if query.name.is_none() => None,
        _ => {
            return Err(ApiError::BadRequest(
                "to decide a request give both `upstream` and `method` (and `name` for a tool, prompt or resource)".into(),
            ));
        }
    };
    let (identity, identity_error) = match state.identity.context_for_user(&user).await {
        Ok(identity) => (identity, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let explanation = state
        .policy
        .explain(&user, identity.as_deref(), request.as_ref())
        .await?;
    Ok(Json(AccessView {
        user_id: user,
        provider: identity.map(|c| c.provider_id.clone()),
        identity_error,
        explanation,
    }))
}
