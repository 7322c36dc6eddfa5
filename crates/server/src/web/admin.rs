//! The admin pages under `/admin/…`: users, roles and grants, teams and claim mappings,
//! upstreams, OAuth clients, the audit log, the access explainer. Administrators only (403
//! page for anyone else, sign-in first for nobody), a CSRF token on every form, the page CSP.
//!
//! Every change runs the admin API's own handler (same checks, same audit record, same
//! policy-version bump), as the signed-in administrator; the page then redirects (303) back
//! with a confirmation, or shows the API's error in words with a way back.

use std::collections::HashMap;
use std::future::Future;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use axum_extra::extract::cookie::CookieJar;
use mcpgate_pages::{
    AuditFilters, AuditRow, AuditView, ClientRow, ClientsView, DecisionRow, ExplainForm,
    ExplainResult, ExplainView, GrantRow, HeldRoleRow, MappingRow, RoleRow, RolesView, TeamRow,
    TeamsView, UpstreamRow, UpstreamsView, UserRow, UsersView,
};
use serde_json::{Value, json};

use super::signed_in::{Person, admin, chrome, respond, when};
use super::{csrf, pages};
use crate::api::auth::{AdminUser, ApiJson};
use crate::api::{self, audit::AuditParams};
use crate::app::AppState;
use crate::error::ApiError;

const ADMIN_FORM: &str = "admin";

type Fields = HashMap<String, String>;

fn field<'a>(form: &'a Fields, name: &str) -> &'a str {
    form.get(name).map(|v| v.trim()).unwrap_or("")
}

/// What a finished change says on the page it returns to.
fn flash(done: Option<&String>) -> Option<String> {
    Some(
        match done?.as_str() {
            "user_created" => "The user was created.",
            "user_disabled" => "The user was disabled; their tokens stopped working.",
            "user_enabled" => "The user was enabled.",
            "user_deleted" => "The user was deleted.",
            "password_reset" => "The password was reset; the user's sessions and tokens ended.",
            "sessions_revoked" => "The user's browser sessions were ended.",
            "role_saved" => "The role was saved.",
            "role_deleted" => "The role was deleted.",
            "role_given" => "The role was given.",
            "team_created" => "The team was created.",
            "team_deleted" => "The team was deleted.",
            "member_added" => "The member was added.",
            "team_role_added" => "The role was given to the team.",
            "mapping_added" => "The mapping rule was added.",
            "mapping_deleted" => "The mapping rule was deleted.",
            "client_revoked" => "The client was revoked: its tokens and consents ended.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// The admin for a page, with the chrome, or the response to send instead.
async fn page_for(
    state: &AppState,
    jar: CookieJar,
    path: &str,
    query: &Fields,
) -> Result<(CookieJar, Person, mcpgate_pages::Chrome, String), Response> {
    let person = admin(state, &jar, path).await?;
    let (jar, chrome, token) = chrome(
        state,
        jar,
        &person,
        path,
        ADMIN_FORM,
        flash(query.get("done")),
    )?;
    Ok((jar, person, chrome, token))
}

/// Runs a change posted from an admin page: administrator, then CSRF token, then the change;
/// back to `back` with `done`, or the error in words.
async fn act<F, Fut>(
    state: AppState,
    jar: CookieJar,
    form: &Fields,
    back: &str,
    done: &str,
    change: F,
) -> Response
where
    F: FnOnce(AppState, AdminUser) -> Fut,
    Fut: Future<Output = Result<(), ApiError>>,
{
    let person = match admin(&state, &jar, back).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = csrf::check(&state, &jar, ADMIN_FORM, field(form, "csrf")) {
        return super::login::error_page(e);
    }
    match change(state, person.as_admin()).await {
        Ok(()) => Redirect::to(&format!("{back}?done={done}")).into_response(),
        Err(e) => failed(e, back).await,
    }
}

/// The API's error as a page: its status, its description, a way back.
async fn failed(e: ApiError, back: &str) -> Response {
    let response = e.into_response();
    let status = response.status();
    let (title, text) = match status {
        StatusCode::NOT_FOUND => ("Not found", "It does not exist (any more)."),
        StatusCode::CONFLICT => ("Not changed", "It conflicts with what exists."),
        StatusCode::BAD_REQUEST => ("Not changed", "The form has a problem."),
        StatusCode::FORBIDDEN => ("Not allowed", "This change is not allowed."),
        _ => (
            "Something went wrong",
            "mcpgate could not make this change.",
        ),
    };
    // The API's own description says what exactly; read it back from its JSON body.
    let detail = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["error_description"].as_str().map(str::to_owned));
    let text = detail.unwrap_or_else(|| text.to_owned());
    let mut view = mcpgate_pages::MessageView::new(Some(status.as_u16()), title, &text);
    view.back_href = back.to_owned();
    view.back_text = "Back".into();
    pages::page(status, view.render())
}

fn body<T: serde::de::DeserializeOwned>(value: Value) -> Result<ApiJson<T>, ApiError> {
    serde_json::from_value(value)
        .map(ApiJson)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn user_id_for(state: &AppState, email: &str) -> Result<String, ApiError> {
    state
        .store
        .find_user_by_email(email)
        .await?
        .map(|u| u.id)
        .ok_or_else(|| ApiError::NotFound(format!("no user with the email {email:?}")))
}

pub async fn index() -> Redirect {
    Redirect::to("/admin/users")
}

pub async fn users(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<Fields>,
) -> Response {
    let (jar, _, chrome, token) = match page_for(&state, jar, "/admin/users", &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let q = field(&query, "q");
    let after = query.get("after").map(String::as_str);
    const LIMIT: i64 = 50;
    let found = if q.is_empty() {
        state.store.list_users(after, LIMIT).await
    } else {
        state.store.search_users(q, after, LIMIT).await
    };
    let users = match found {
        Ok(u) => u,
        Err(e) => return super::login::error_page(e.into()),
    };
    let next_after = (users.len() as i64 == LIMIT)
        .then(|| users.last().map(|u| u.email.clone()))
        .flatten();
    let view = UsersView {
        chrome,
        csrf: token,
        query: q.to_owned(),
        users: users
            .iter()
            .map(|u| UserRow {
                id: u.id.clone(),
                email: u.email.clone(),
                display_name: u.display_name.clone(),
                is_admin: u.is_admin,
                disabled: u.is_disabled(),
            })
            .collect(),
        next_after,
    };
    respond(jar, view.render())
}

pub async fn create_user(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Fields>,
) -> Response {
    let account = json!({
        "email": field(&form, "email"),
        "password": form.get("password").cloned().unwrap_or_default(),
        "display_name": Some(field(&form, "display_name")).filter(|n| !n.is_empty()),
        "is_admin": field(&form, "is_admin") == "yes",
    });
    act(
        state,
        jar,
        &form,
        "/admin/users",
        "user_created",
        |state, admin| async move {
            let _ = api::admin::create(State(state), admin, body(account)?).await?;
            Ok(())
        },
    )
    .await
}

/// `POST /admin/users/{id}/{disable|enable|delete|password|sessions/revoke}`.
pub async fn user_action(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> Response {
    let password = form.get("password").cloned().unwrap_or_default();
    let done = match action.as_str() {
        "disable" => "user_disabled",
        "enable" => "user_enabled",
        "delete" => "user_deleted",
        "password" => "password_reset",
        _ => return not_found_page(),
    };
    act(
        state,
        jar,
        &form,
        "/admin/users",
        done,
        |state, admin| async move {
            let path = Path(id);
            match action.as_str() {
                "disable" => api::admin::disable(State(state), admin, path)
                    .await
                    .map(drop),
                "enable" => api::admin::enable(State(state), admin, path)
                    .await
                    .map(drop),
                "delete" => api::accounts::delete_user(State(state), admin, path)
                    .await
                    .map(drop),
                _ => api::accounts::reset_password(
                    State(state),
                    admin,
                    path,
                    body(json!({ "password": password }))?,
                )
                .await
                .map(drop),
            }
        },
    )
    .await
}

pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    act(
        state,
        jar,
        &form,
        "/admin/users",
        "sessions_revoked",
        |state, admin| async move {
            let _ = api::accounts::delete_sessions(State(state), admin, Path(id)).await?;
            Ok(())
        },
    )
    .await
}

/// The merged policy as the admin API shows it.
async fn policy(state: &AppState, person: &Person) -> Result<Value, ApiError> {
    let Json(view) = api::policy::show(State(state.clone()), person.as_admin()).await?;
    serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

pub async fn roles(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<Fields>,
) -> Response {
    let (jar, person, chrome, token) = match page_for(&state, jar, "/admin/roles", &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let policy = match policy(&state, &person).await {
        Ok(p) => p,
        Err(e) => return super::login::error_page(e),
    };
    let roles = policy["roles"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| RoleRow {
            name: text(&r["name"]),
            description: text(&r["description"]),
            source: text(&r["source"]),
            grants: r["grants"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|g| GrantRow {
                    effect: text(&g["effect"]),
                    action: text(&g["action"]),
                    upstream: text(&g["upstream"]),
                    target: g["target"]
                        .as_str()
                        .filter(|t| *t != "*")
                        .map(str::to_owned),
                })
                .collect(),
        })
        .collect();
    respond(
        jar,
        RolesView {
            chrome,
            csrf: token,
            roles,
        }
        .render(),
    )
}

pub async fn save_role(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Fields>,
) -> Response {
    let name = field(&form, "name").to_owned();
    let target = Some(field(&form, "target"))
        .filter(|t| !t.is_empty())
        .unwrap_or("*");
    let role = json!({
        "description": field(&form, "description"),
        "grants": [{
            "effect": field(&form, "effect"),
            "action": field(&form, "action"),
            "upstream": Some(field(&form, "upstream")).filter(|u| !u.is_empty()).unwrap_or("*"),
            "target": target,
        }],
    });
    act(
        state,
        jar,
        &form,
        "/admin/roles",
        "role_saved",
        |state, admin| async move {
            let _ = api::policy::put_role(State(state), admin, Path(name), body(role)?).await?;
            Ok(())
        },
    )
    .await
}

pub async fn delete_role(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(name): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    act(
        state,
        jar,
        &form,
        "/admin/roles",
        "role_deleted",
        |state, admin| async move {
            let _ = api::policy::delete_role(State(state), admin, Path(name)).await?;
            Ok(())
        },
    )
    .await
}

pub async fn give_role(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Fields>,
) -> Response {
    let email = field(&form, "email").to_owned();
    let role = field(&form, "role").to_owned();
    act(
        state,
        jar,
        &form,
        "/admin/roles",
        "role_given",
        |state, admin| async move {
            let user = user_id_for(&state, &email).await?;
            let _ = api::policy::grant_user_role(State(state), admin, Path((user, role))).await?;
            Ok(())
        },
    )
    .await
}

pub async fn teams(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<Fields>,
) -> Response {
    let (jar, person, chrome, token) = match page_for(&state, jar, "/admin/teams", &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let loaded = async {
        let policy = policy(&state, &person).await?;
        let teams = state.store.list_teams(None, 500).await?;
        let mut rows = Vec::with_capacity(teams.len());
        for team in teams {
            let mut members = Vec::with_capacity(team.members.len());
            for id in &team.members {
                members.push(match state.store.get_user(id).await {
                    Ok(u) => u.email,
                    Err(_) => id.clone(),
                });
            }
            rows.push(TeamRow {
                name: team.name,
                members,
                roles: team.roles,
            });
        }
        Ok::<_, ApiError>((policy, rows))
    }
    .await;
    let (policy, teams) = match loaded {
        Ok(l) => l,
        Err(e) => return super::login::error_page(e),
    };
    let empty = Vec::new();
    let view = TeamsView {
        chrome,
        csrf: token,
        teams,
        roles: policy["roles"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|r| text(&r["name"]))
            .collect(),
        mappings: policy["mappings"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|m| MappingRow {
                id: m["id"].as_str().map(str::to_owned),
                provider: m["provider"].as_str().map(str::to_owned),
                claim: text(&m["claim"]),
                value: text(&m["value"]),
                role: text(&m["role"]),
                source: text(&m["source"]),
            })
            .collect(),
    };
    respond(jar, view.render())
}

pub async fn create_team(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Fields>,
) -> Response {
    let name = field(&form, "name").to_owned();
    act(
        state,
        jar,
        &form,
        "/admin/teams",
        "team_created",
        |state, admin| async move {
            let _ = api::policy::create_team(State(state), admin, Path(name)).await?;
            Ok(())
        },
    )
    .await
}

pub async fn delete_team(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(name): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    act(
        state,
        jar,
        &form,
        "/admin/teams",
        "team_deleted",
        |state, admin| async move {
            let _ = api::policy::delete_team(State(state), admin, Path(name)).await?;
            Ok(())
        },
    )
    .await
}

pub async fn add_member(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Fields>,
) -> Response {
    let team = field(&form, "team").to_owned();
    let email = field(&form, "email").to_owned();
    act(
        state,
        jar,
        &form,
        "/admin/teams",
        "member_added",
        |state, admin| async move {
            let user = user_id_for(&state, &email).await?;
            let _ = api::policy::add_member(State(state), admin, Path((team, user))).await?;
            Ok(())
        },
    )
    .await
}

pub async fn add_team_role(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Fields>,
) -> Response {
    let team = field(&form, "team").to_owned();
    let role = field(&form, "role").to_owned();
    act(
        state,
        jar,
        &form,
        "/admin/teams",
        "team_role_added",
        |state, admin| async move {
            let _ = api::policy::add_team_role(State(state), admin, Path((team, role))).await?;
            Ok(())
        },
    )
    .await
}

pub async fn add_mapping(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Fields>,
) -> Response {
    let rule = json!({
        "provider": Some(field(&form, "provider")).filter(|p| !p.is_empty()),
        "claim": field(&form, "claim"),
        "value": field(&form, "value"),
        "role": field(&form, "role"),
    });
    act(
        state,
        jar,
        &form,
        "/admin/teams",
        "mapping_added",
        |state, admin| async move {
            let _ = api::policy::add_mapping(State(state), admin, body(rule)?).await?;
            Ok(())
        },
    )
    .await
}

pub async fn delete_mapping(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    act(
        state,
        jar,
        &form,
        "/admin/teams",
        "mapping_deleted",
        |state, admin| async move {
            let _ = api::policy::delete_mapping(State(state), admin, Path(id)).await?;
            Ok(())
        },
    )
    .await
}

pub async fn upstreams(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<Fields>,
) -> Response {
    let (jar, _, chrome, _) = match page_for(&state, jar, "/admin/upstreams", &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let views = match api::upstreams::views(&state).await {
        Ok(v) => v,
        Err(e) => return super::login::error_page(e),
    };
    let issuer = state.config.issuer();
    let view = UpstreamsView {
        chrome,
        upstreams: views
            .into_iter()
            .map(|u| UpstreamRow {
                endpoint: format!("{issuer}/mcp/{}", u.name),
                credential: if u.credential_kinds.is_empty() {
                    "none".into()
                } else {
                    u.credential_kinds.join(", ")
                },
                reachable: u.status.reachable,
                last_error: u.status.last_error.map(|e| match u.status.last_error_at {
                    Some(at) => format!("{e} ({})", when(at)),
                    None => e,
                }),
                name: u.name,
                url: u.url,
            })
            .collect(),
    };
    respond(jar, view.render())
}

pub async fn clients(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<Fields>,
) -> Response {
    let (jar, _, chrome, token) = match page_for(&state, jar, "/admin/clients", &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let page = match api::accounts::client_page(
        &state,
        query.get("after").map(String::as_str),
        None,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return super::login::error_page(e),
    };
    let view = ClientsView {
        chrome,
        csrf: token,
        clients: page
            .clients
            .into_iter()
            .map(|c| ClientRow {
                client_id: c.client_id,
                name: c.client_name,
                registration: c.registration,
                redirect_uris: c.redirect_uris,
                created_at: when(c.created_at),
            })
            .collect(),
        next_after: page.next_after,
    };
    respond(jar, view.render())
}

pub async fn revoke_client(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<Fields>,
) -> Response {
    let client_id = field(&form, "client_id").to_owned();
    act(
        state,
        jar,
        &form,
        "/admin/clients",
        "client_revoked",
        |state, admin| async move {
            api::accounts::revoke_client_by(&state, &admin.0.user.id, &client_id).await
        },
    )
    .await
}

pub async fn audit(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<Fields>,
) -> Response {
    let (jar, _, chrome, _) = match page_for(&state, jar, "/admin/audit", &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let get = |name: &str| query.get(name).cloned().filter(|v| !v.trim().is_empty());
    let params = AuditParams {
        user: get("user"),
        upstream: get("upstream"),
        tool: get("tool"),
        decision: get("decision"),
        since: get("since"),
        until: get("until"),
        cursor: get("cursor"),
        limit: Some(50),
        format: None,
    };
    let filters = AuditFilters {
        user: field(&query, "user").to_owned(),
        upstream: field(&query, "upstream").to_owned(),
        tool: field(&query, "tool").to_owned(),
        decision: field(&query, "decision").to_owned(),
        since: field(&query, "since").to_owned(),
        until: field(&query, "until").to_owned(),
    };
    let export_query = {
        let mut export = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("user", &filters.user),
            ("upstream", &filters.upstream),
            ("tool", &filters.tool),
            ("decision", &filters.decision),
            ("since", &filters.since),
            ("until", &filters.until),
        ] {
            if !value.is_empty() {
                export.append_pair(name, value);
            }
        }
        export.finish()
    };
    let loaded = async {
        let Some(q) = params.query(&state, 50).await? else {
            return Ok((Vec::new(), None));
        };
        let events = state.store.query_audit_events(&q).await?;
        let next = api::audit::next_cursor(&events, q.limit);
        Ok::<_, ApiError>((events, next))
    }
    .await;
    let (events, next) = match loaded {
        Ok(l) => l,
        Err(e) => return failed(e, "/admin/audit").await,
    };
    // Emails for the users on this page (at most 50 look-ups).
    let mut emails: HashMap<String, String> = HashMap::new();
    for id in events.iter().filter_map(|e| e.user_id.as_ref()) {
        if !emails.contains_key(id) {
            let email = match state.store.get_user(id).await {
                Ok(u) => u.email,
                Err(_) => id.clone(),
            };
            emails.insert(id.clone(), email);
        }
    }
    let next_query = next.map(|cursor| {
        let mut q = url::form_urlencoded::Serializer::new(export_query.clone());
        q.append_pair("cursor", &cursor);
        q.finish()
    });
    let view = AuditView {
        chrome,
        filters,
        events: events
            .into_iter()
            .map(|e| AuditRow {
                at: api::audit::format_time(e.at)
                    .replace('T', " ")
                    .replace('Z', ""),
                user: e.user_id.map(|id| emails.get(&id).cloned().unwrap_or(id)),
                action: e.action,
                upstream: e.upstream,
                target: e.target,
                decision: e.decision,
                detail: e.detail,
            })
            .collect(),
        export_query,
        next_query,
    };
    respond(jar, view.render())
}

pub async fn explain(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<Fields>,
) -> Response {
    let (jar, person, chrome, _) = match page_for(&state, jar, "/admin/explain", &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let form = ExplainForm {
        user: field(&query, "user").to_owned(),
        upstream: field(&query, "upstream").to_owned(),
        tool: field(&query, "tool").to_owned(),
    };
    let mut result = None;
    if !form.user.is_empty() {
        let explained = async {
            let id = user_id_for(&state, &form.user).await?;
            let upstream = Some(form.upstream.clone()).filter(|u| !u.is_empty());
            let access = json!({
                "upstream": upstream,
                "method": upstream.as_ref().map(|_| "tools/call"),
                "name": Some(form.tool.clone()).filter(|t| !t.is_empty() && upstream.is_some()),
            });
            let query =
                serde_json::from_value(access).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let Json(view) = api::policy::explain_access(
                State(state.clone()),
                person.as_admin(),
                Path(id),
                Ok(Query(query)),
            )
            .await?;
            serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))
        }
        .await;
        let v = match explained {
            Ok(v) => v,
            Err(e) => return failed(e, "/admin/explain").await,
        };
        let empty = Vec::new();
        result = Some(ExplainResult {
            user: form.user.clone(),
            disabled: v["disabled"].as_bool().unwrap_or(false),
            roles: v["roles"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|r| HeldRoleRow {
                    name: text(&r["name"]),
                    because: r["because"]
                        .as_array()
                        .unwrap_or(&empty)
                        .iter()
                        .map(|b| match b["kind"].as_str().unwrap_or_default() {
                            "admin" => "administrator".to_owned(),
                            "default" => "the default role".to_owned(),
                            "direct" => "given directly".to_owned(),
                            "team" => "through a team".to_owned(),
                            "mapping" => format!(
                                "claim {} = {}",
                                text(&b["rule"]["claim"]),
                                text(&b["rule"]["value"])
                            ),
                            other => other.to_owned(),
                        })
                        .collect(),
                })
                .collect(),
            unknown_roles: v["unknown_roles"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(text)
                .collect(),
            decision: v["decision"].as_object().map(|d| DecisionRow {
                allowed: d.get("allowed").and_then(Value::as_bool).unwrap_or(false),
                explanation: d
                    .get("explanation")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }),
        });
    }
    respond(
        jar,
        ExplainView {
            chrome,
            form,
            result,
        }
        .render(),
    )
}

fn not_found_page() -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
    )
}
