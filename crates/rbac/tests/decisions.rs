//! Table-driven decisions over one policy written as the server would load it (TOML).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its message"
)]

use mcpgate_core::UserContext;
use mcpgate_rbac::{
    Action, Effect, EffectiveGrants, Identity, Item, Policy, PolicyError, PolicySpec, Reason,
    Request, RoleSource, Subject,
};
use serde_json::json;

const POLICY: &str = r#"
default_role = "everyone"

[[roles]]
name = "everyone"
description = "Held by every signed-in user"
grants = [
  { effect = "allow", action = "tools/list", upstream = "docs" },
  { effect = "allow", action = "tools/call", upstream = "docs", target = "search_?" },
]

[[roles]]
name = "dev"
grants = [
  { effect = "allow", action = "*", upstream = "gh-*" },
  { effect = "deny", action = "tools/call", upstream = "gh-prod", target = "delete_*" },
  { effect = "allow", action = "prompts/get", upstream = "docs", target = "summari?e" },
]

[[roles]]
name = "no-delete"
grants = [
  { effect = "deny", action = "tools/call", target = "*delete*" },
]

[[roles]]
name = "reader"
grants = [
  { effect = "allow", action = "resources/*", upstream = "files", target = "file:///public/*" },
  { effect = "deny", action = "resources/*", upstream = "files", target = "file:///public/secret*" },
]

[[roles]]
name = "locked-out"
grants = [
  { effect = "deny", action = "*", upstream = "gh-*" },
]

[[roles]]
name = "future"
grants = [
  { effect = "allow", action = "other", upstream = "labs", target = "experimental/*" },
  { effect = "allow", action = "tools/list", upstream = "labs" },
]

[[roles]]
name = "auditor"
grants = [{ effect = "allow", action = "admin:audit" }]

[[roles]]
name = "kc-realm"
grants = [{ effect = "allow", action = "tools/call", upstream = "kc-realm" }]
[[roles]]
name = "kc-client"
grants = [{ effect = "allow", action = "tools/call", upstream = "kc-client" }]
[[roles]]
name = "gh-team"
grants = [{ effect = "allow", action = "tools/call", upstream = "gh-team" }]
[[roles]]
name = "google"
grants = [{ effect = "allow", action = "tools/call", upstream = "google" }]
[[roles]]
name = "email"
grants = [{ effect = "allow", action = "tools/call", upstream = "email" }]
[[roles]]
name = "claim-array"
grants = [{ effect = "allow", action = "tools/call", upstream = "claim-array" }]
[[roles]]
name = "claim-scalar"
grants = [{ effect = "allow", action = "tools/call", upstream = "claim-scalar" }]

[[mappings]]
provider = "keycloak"
claim = "realm_access.roles"
value = "mcp-realm"
role = "kc-realm"

[[mappings]]
provider = "keycloak"
claim = 'resource_access."mcp.gate".roles'
value = "caller"
role = "kc-client"

[[mappings]]
provider = "github"
claim = "groups"
value = "acme:platform"
role = "gh-team"

[[mappings]]
provider = "google"
claim = "hd"
value = "acme.com"
role = "google"

[[mappings]]
claim = "email_domain"
value = "contractor.example"
role = "email"

[[mappings]]
claim = "departments"
value = "eng*"
role = "claim-array"

[[mappings]]
claim = "org.employee_type"
value = "staff"
role = "claim-scalar"

[[mappings]]
provider = "keycloak"
claim = "realm_access.roles"
value = "mcp-admin"
role = "admin"
"#;

fn policy() -> Policy {
    let spec: PolicySpec = toml::from_str(POLICY).unwrap();
    spec.compile().unwrap()
}

/// Who asks, owning what a [`Subject`] borrows.
#[derive(Default)]
struct Who {
    roles: Vec<String>,
    teams: Vec<String>,
    identities: Vec<Identity<'static>>,
    admin: bool,
}

impl Who {
    fn subject(&self) -> Subject<'_> {
        Subject {
            roles: &self.roles,
            team_roles: &self.teams,
            identities: &self.identities,
            is_admin: self.admin,
        }
    }
}

fn direct(roles: &[&str]) -> Who {
    Who {
        roles: roles.iter().map(|r| (*r).into()).collect(),
        ..Who::default()
    }
}

fn team(roles: &[&str]) -> Who {
    Who {
        teams: roles.iter().map(|r| (*r).into()).collect(),
        ..Who::default()
    }
}

/// Test contexts live as long as the test binary, so a `Who` can lend them out.
fn identity(provider: &'static str, user: UserContext) -> Identity<'static> {
    Identity {
        provider,
        user: Box::leak(Box::new(user)),
    }
}

fn idp(provider: &'static str, user: UserContext) -> Who {
    Who {
        identities: vec![identity(provider, user)],
        ..Who::default()
    }
}

fn claims(value: serde_json::Value) -> UserContext {
    UserContext {
        subject: "u-1".into(),
        claims: value,
        ..UserContext::default()
    }
}

fn admin() -> Who {
    Who {
        admin: true,
        ..Who::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Allowed by role, grant index.
    Allow(&'static str, usize),
    /// Denied by role, grant index.
    Deny(&'static str, usize),
    /// No grant matched.
    DefaultDeny,
    MissingTarget,
    /// Plumbing allowed by role, grant index.
    Plumbing(&'static str, usize),
}

struct Case {
    name: &'static str,
    who: Who,
    method: &'static str,
    upstream: &'static str,
    target: Option<&'static str>,
    expect: Expect,
}

fn case(
    name: &'static str,
    who: Who,
    method: &'static str,
    upstream: &'static str,
    target: Option<&'static str>,
    expect: Expect,
) -> Case {
    Case {
        name,
        who,
        method,
        upstream,
        target,
        expect,
    }
}

fn cases() -> Vec<Case> {
    use Expect::*;
    vec![
        // Allow, and which grant allowed.
        case(
            "dev calls a tool on a gh-* upstream",
            direct(&["dev"]),
            "tools/call",
            "gh-dev",
            Some("create_issue"),
            Allow("dev", 0),
        ),
        case(
            "dev reads a resource on gh-*: `*` covers every MCP action",
            direct(&["dev"]),
            "resources/read",
            "gh-dev",
            Some("repo://x"),
            Allow("dev", 0),
        ),
        case(
            "dev lists tools on gh-*",
            direct(&["dev"]),
            "tools/list",
            "gh-prod",
            None,
            Allow("dev", 0),
        ),
        // Deny overriding allow, in the same role and across roles.
        case(
            "deny in the same role wins",
            direct(&["dev"]),
            "tools/call",
            "gh-prod",
            Some("delete_repo"),
            Deny("dev", 1),
        ),
        case(
            "the deny is scoped to its upstream",
            direct(&["dev"]),
            "tools/call",
            "gh-dev",
            Some("delete_repo"),
            Allow("dev", 0),
        ),
        case(
            "deny from another role wins",
            direct(&["dev", "no-delete"]),
            "tools/call",
            "gh-dev",
            Some("bulk_delete"),
            Deny("no-delete", 0),
        ),
        case(
            "deny from a team role wins",
            Who {
                roles: vec!["dev".into()],
                teams: vec!["no-delete".into()],
                ..Who::default()
            },
            "tools/call",
            "gh-dev",
            Some("undelete"),
            Deny("no-delete", 0),
        ),
        case(
            "a whole-upstream deny wins over `*`",
            direct(&["dev", "locked-out"]),
            "tools/call",
            "gh-dev",
            Some("create_issue"),
            Deny("locked-out", 0),
        ),
        // Patterns: upstream and target, `*`, `?`, exact.
        case(
            "? matches one character",
            direct(&[]),
            "tools/call",
            "docs",
            Some("search_1"),
            Allow("everyone", 1),
        ),
        case(
            "? does not match two",
            direct(&[]),
            "tools/call",
            "docs",
            Some("search_12"),
            DefaultDeny,
        ),
        case(
            "? does not match none",
            direct(&[]),
            "tools/call",
            "docs",
            Some("search_"),
            DefaultDeny,
        ),
        case(
            "? inside a name",
            direct(&["dev"]),
            "prompts/get",
            "docs",
            Some("summarise"),
            Allow("dev", 2),
        ),
        case(
            "exact upstream does not match a longer name",
            direct(&[]),
            "tools/call",
            "docs2",
            Some("search_1"),
            DefaultDeny,
        ),
        case(
            "names are case-sensitive",
            direct(&[]),
            "tools/call",
            "Docs",
            Some("search_1"),
            DefaultDeny,
        ),
        case(
            "upstream prefix pattern",
            direct(&["dev"]),
            "tools/call",
            "gh-",
            Some("x"),
            Allow("dev", 0),
        ),
        case(
            "upstream prefix pattern needs the prefix",
            direct(&["dev"]),
            "tools/call",
            "github",
            Some("x"),
            DefaultDeny,
        ),
        case(
            "resource uri pattern",
            direct(&["reader"]),
            "resources/read",
            "files",
            Some("file:///public/a.txt"),
            Allow("reader", 0),
        ),
        case(
            "resource uri deny",
            direct(&["reader"]),
            "resources/read",
            "files",
            Some("file:///public/secret.txt"),
            Deny("reader", 1),
        ),
        case(
            "resource outside the pattern",
            direct(&["reader"]),
            "resources/read",
            "files",
            Some("file:///etc/passwd"),
            DefaultDeny,
        ),
        case(
            "subscribe is in resources/*",
            direct(&["reader"]),
            "resources/subscribe",
            "files",
            Some("file:///public/a"),
            Allow("reader", 0),
        ),
        case(
            "a target-specific deny does not deny the list",
            direct(&["reader"]),
            "resources/list",
            "files",
            None,
            Allow("reader", 0),
        ),
        case(
            "templates/list is in resources/*",
            direct(&["reader"]),
            "resources/templates/list",
            "files",
            None,
            Allow("reader", 0),
        ),
        // Default role for every signed-in user, and default deny.
        case(
            "the default role applies with no roles",
            direct(&[]),
            "tools/list",
            "docs",
            None,
            Allow("everyone", 0),
        ),
        case(
            "the default role applies to idp users",
            idp("github", claims(json!({}))),
            "tools/list",
            "docs",
            None,
            Allow("everyone", 0),
        ),
        case(
            "nothing allowed by default",
            direct(&[]),
            "tools/call",
            "gh-dev",
            Some("x"),
            DefaultDeny,
        ),
        case(
            "an unknown direct role gives nothing",
            direct(&["ghost"]),
            "tools/call",
            "gh-dev",
            Some("x"),
            DefaultDeny,
        ),
        case(
            "tools/call does not grant prompts/get",
            direct(&[]),
            "prompts/get",
            "docs",
            Some("search_1"),
            DefaultDeny,
        ),
        case(
            "a missing tool name is denied",
            direct(&["dev"]),
            "tools/call",
            "gh-dev",
            None,
            MissingTarget,
        ),
        // Team roles.
        case(
            "team role",
            team(&["dev"]),
            "tools/call",
            "gh-dev",
            Some("x"),
            Allow("dev", 0),
        ),
        // Claim-mapped roles.
        case(
            "keycloak realm role",
            idp(
                "keycloak",
                claims(json!({"realm_access": {"roles": ["offline_access", "mcp-realm"]}})),
            ),
            "tools/call",
            "kc-realm",
            Some("t"),
            Allow("kc-realm", 0),
        ),
        case(
            "keycloak realm role from another provider id does not map",
            idp(
                "other-kc",
                claims(json!({"realm_access": {"roles": ["mcp-realm"]}})),
            ),
            "tools/call",
            "kc-realm",
            Some("t"),
            DefaultDeny,
        ),
        case(
            "keycloak client role (quoted client id with a dot)",
            idp(
                "keycloak",
                claims(
                    json!({"resource_access": {"mcp.gate": {"roles": ["caller"]}, "other": {"roles": []}}}),
                ),
            ),
            "tools/call",
            "kc-client",
            Some("t"),
            Allow("kc-client", 0),
        ),
        case(
            "keycloak role of another client does not map",
            idp(
                "keycloak",
                claims(json!({"resource_access": {"other": {"roles": ["caller"]}}})),
            ),
            "tools/call",
            "kc-client",
            Some("t"),
            DefaultDeny,
        ),
        case(
            "github org:team in groups",
            idp(
                "github",
                UserContext {
                    groups: vec!["acme".into(), "acme:platform".into()],
                    ..UserContext::default()
                },
            ),
            "tools/call",
            "gh-team",
            Some("t"),
            Allow("gh-team", 0),
        ),
        case(
            "github org alone is not the team",
            idp(
                "github",
                UserContext {
                    groups: vec!["acme".into()],
                    ..UserContext::default()
                },
            ),
            "tools/call",
            "gh-team",
            Some("t"),
            DefaultDeny,
        ),
        case(
            "google hosted domain",
            idp("google", claims(json!({"hd": "acme.com"}))),
            "tools/call",
            "google",
            Some("t"),
            Allow("google", 0),
        ),
        case(
            "google other domain",
            idp("google", claims(json!({"hd": "acme.co"}))),
            "tools/call",
            "google",
            Some("t"),
            DefaultDeny,
        ),
        case(
            "verified email domain",
            idp(
                "oidc",
                UserContext {
                    email: Some("bob@Contractor.Example".into()),
                    email_verified: true,
                    ..UserContext::default()
                },
            ),
            "tools/call",
            "email",
            Some("t"),
            Allow("email", 0),
        ),
        case(
            "unverified email domain does not map",
            idp(
                "oidc",
                UserContext {
                    email: Some("bob@contractor.example".into()),
                    email_verified: false,
                    ..UserContext::default()
                },
            ),
            "tools/call",
            "email",
            Some("t"),
            DefaultDeny,
        ),
        case(
            "claim path, array value",
            idp(
                "oidc",
                claims(json!({"departments": ["sales", "engineering"]})),
            ),
            "tools/call",
            "claim-array",
            Some("t"),
            Allow("claim-array", 0),
        ),
        case(
            "claim path, scalar value",
            idp("oidc", claims(json!({"departments": "eng"}))),
            "tools/call",
            "claim-array",
            Some("t"),
            Allow("claim-array", 0),
        ),
        case(
            "nested claim path, scalar",
            idp("oidc", claims(json!({"org": {"employee_type": "staff"}}))),
            "tools/call",
            "claim-scalar",
            Some("t"),
            Allow("claim-scalar", 0),
        ),
        case(
            "nested claim path, other value",
            idp(
                "oidc",
                claims(json!({"org": {"employee_type": "contractor"}})),
            ),
            "tools/call",
            "claim-scalar",
            Some("t"),
            DefaultDeny,
        ),
        case(
            "claim mapped to admin",
            idp(
                "keycloak",
                claims(json!({"realm_access": {"roles": ["mcp-admin"]}})),
            ),
            "admin:users",
            "",
            None,
            Allow("admin", 1),
        ),
        // Admin.
        case(
            "admin calls any tool",
            admin(),
            "tools/call",
            "anything",
            Some("rm_rf"),
            Allow("admin", 0),
        ),
        case(
            "admin manages roles",
            admin(),
            "admin:roles",
            "",
            None,
            Allow("admin", 1),
        ),
        case(
            "admin uses unknown methods",
            admin(),
            "sampling/whatever",
            "x",
            None,
            Allow("admin", 0),
        ),
        case(
            "deny wins even for admin",
            Who {
                admin: true,
                roles: vec!["no-delete".into()],
                ..Who::default()
            },
            "tools/call",
            "x",
            Some("delete_all"),
            Deny("no-delete", 0),
        ),
        case(
            "admin action by grant",
            direct(&["auditor"]),
            "admin:audit",
            "",
            None,
            Allow("auditor", 0),
        ),
        case(
            "admin action not granted",
            direct(&["auditor"]),
            "admin:users",
            "",
            None,
            DefaultDeny,
        ),
        case(
            "`*` does not include admin actions",
            direct(&["dev"]),
            "admin:users",
            "gh-dev",
            None,
            DefaultDeny,
        ),
        // Unknown methods.
        case(
            "unknown method allowed by `other`",
            direct(&["future"]),
            "experimental/frob",
            "labs",
            None,
            Allow("future", 0),
        ),
        case(
            "unknown method outside the `other` target",
            direct(&["future"]),
            "sampling/frob",
            "labs",
            None,
            DefaultDeny,
        ),
        // Protocol plumbing: allowed with an MCP grant on the upstream.
        case(
            "initialize with a grant on the upstream",
            direct(&["dev"]),
            "initialize",
            "gh-dev",
            None,
            Plumbing("dev", 0),
        ),
        case(
            "ping with a grant on the upstream",
            direct(&["reader"]),
            "ping",
            "files",
            None,
            Plumbing("reader", 0),
        ),
        case(
            "notification with a grant on the upstream",
            direct(&["future"]),
            "notifications/initialized",
            "labs",
            None,
            Plumbing("future", 0),
        ),
        case(
            "server/discover via the default role",
            direct(&[]),
            "server/discover",
            "docs",
            None,
            Plumbing("everyone", 0),
        ),
        case(
            "initialize without a grant on the upstream",
            direct(&["dev"]),
            "initialize",
            "files",
            None,
            DefaultDeny,
        ),
        case(
            "an admin grant is not an MCP grant",
            direct(&["auditor"]),
            "ping",
            "",
            None,
            DefaultDeny,
        ),
        case(
            "plumbing taken back by a whole-upstream deny",
            direct(&["dev", "locked-out"]),
            "initialize",
            "gh-dev",
            None,
            Deny("locked-out", 0),
        ),
        case(
            "a target-specific deny leaves plumbing alone",
            direct(&["dev", "no-delete"]),
            "ping",
            "gh-dev",
            None,
            Plumbing("dev", 0),
        ),
    ]
}

#[test]
fn decision_table() {
    let policy = policy();
    let mut failures = Vec::new();
    for c in cases() {
        let roles = policy.effective_roles(&c.who.subject());
        let grants = policy.effective_grants(&roles);
        // Admin actions come from the admin API, MCP actions from a JSON-RPC method.
        let request = match Action::from_name(c.method) {
            Some(a) if a.is_admin() => Request::new(a, c.upstream, c.target),
            _ => Request::for_method(c.method, c.upstream, c.target),
        };
        let by_policy = policy.decide(&roles, &request);
        let by_cache = grants.decide(&request);
        let got = match (&by_cache.decided_by, by_cache.reason) {
            (None, Reason::NoMatchingGrant) => Expect::DefaultDeny,
            (None, Reason::MissingTarget) => Expect::MissingTarget,
            (Some(by), Reason::Allowed) => Expect::Allow(leak(&by.role), by.grant_index),
            (Some(by), Reason::Denied) => Expect::Deny(leak(&by.role), by.grant_index),
            (Some(by), Reason::Plumbing) => Expect::Plumbing(leak(&by.role), by.grant_index),
            other => panic!("{}: unexpected {other:?}", c.name),
        };
        let allowed = matches!(got, Expect::Allow(..) | Expect::Plumbing(..));
        if got != c.expect || by_cache.allowed != allowed {
            failures.push(format!(
                "{}: expected {:?}, got {got:?} ({by_cache})",
                c.name, c.expect
            ));
        }
        // The per-user cache and the policy agree exactly.
        if by_policy.allowed != by_cache.allowed
            || by_policy.reason != by_cache.reason
            || by_policy
                .decided_by
                .as_ref()
                .map(|b| (&b.role, b.grant_index))
                != by_cache
                    .decided_by
                    .as_ref()
                    .map(|b| (&b.role, b.grant_index))
        {
            failures.push(format!(
                "{}: policy {by_policy} vs cache {by_cache}",
                c.name
            ));
        }
        if let Some(by) = &by_cache.decided_by {
            assert_eq!(by.grant.role(), &*by.role);
            assert_eq!(by.grant.index(), by.grant_index);
            assert_eq!(by.grant.effect(), by.effect);
            assert_eq!(by.effect == Effect::Allow, by_cache.allowed, "{}", c.name);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

#[test]
fn a_client_cannot_send_an_admin_action_as_a_method() {
    let policy = policy();
    let auditor = policy.effective_grants(&policy.effective_roles(&direct(&["auditor"]).subject()));
    let by_api = Request::new(Action::AdminAudit, "", None);
    let by_rpc = Request::for_method("admin:audit", "", None);
    assert!(auditor.is_allowed(&by_api));
    assert_eq!(by_rpc.action, Action::OtherMethod);
    assert!(!auditor.is_allowed(&by_rpc));
}

#[test]
fn decisions_explain_themselves() {
    let policy = policy();
    let dev = policy.effective_grants(&policy.effective_roles(&direct(&["dev"]).subject()));
    let say = |method, upstream, target| {
        dev.decide(&Request::for_method(method, upstream, target))
            .to_string()
    };
    assert_eq!(
        say("tools/call", "gh-prod", Some("delete_repo")),
        r#"denied by role `dev` grant #1: deny tools/call upstream="gh-prod" target="delete_*""#
    );
    assert_eq!(
        say("tools/call", "gh-prod", Some("create_issue")),
        r#"allowed by role `dev` grant #0: allow * upstream="gh-*" target="*""#
    );
    assert_eq!(
        say("ping", "gh-prod", None),
        r#"allowed as protocol plumbing by role `dev` grant #0: allow * upstream="gh-*" target="*""#
    );
    assert_eq!(
        say("tools/call", "files", Some("x")),
        "denied: no grant allows it (denied by default)"
    );
    let (description, grants) = policy.role("everyone").unwrap();
    assert_eq!(description, "Held by every signed-in user");
    assert_eq!(grants.len(), 2);
}

#[test]
fn roles_say_where_they_come_from() {
    let policy = policy();
    let who = Who {
        roles: vec!["dev".into(), "ghost".into()],
        teams: vec!["dev".into(), "reader".into()],
        identities: vec![identity(
            "keycloak",
            claims(json!({"realm_access": {"roles": ["mcp-realm", "mcp-admin"]}})),
        )],
        admin: false,
    };
    let roles = policy.effective_roles(&who.subject());
    let got: Vec<(&str, Vec<RoleSource>)> = roles
        .entries()
        .iter()
        .map(|e| (&*e.name, e.sources.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("admin", vec![RoleSource::Mapping { rule: 7 }]),
            ("everyone", vec![RoleSource::Default]),
            ("dev", vec![RoleSource::Direct, RoleSource::Team]),
            ("reader", vec![RoleSource::Team]),
            ("kc-realm", vec![RoleSource::Mapping { rule: 0 }]),
        ]
    );
    assert_eq!(roles.unknown(), ["ghost"]);
}

#[test]
fn admin_is_allowed_every_action_on_any_upstream() {
    let policy = policy();
    let grants = policy.effective_grants(&policy.effective_roles(&admin().subject()));
    for action in Action::ALL {
        let request = Request::new(action, "some-upstream", Some("anything"));
        let d = grants.decide(&request);
        assert!(d.allowed, "{action}: {d}");
    }
}

#[test]
fn list_filtering_matches_decide() {
    let policy = policy();
    let names = [
        "search_1",
        "search_12",
        "delete_repo",
        "bulk_delete",
        "create_issue",
        "summarise",
        "summarize",
        "file:///public/a",
        "file:///public/secret.txt",
        "file:///etc/passwd",
        "",
    ];
    let upstreams = ["docs", "gh-dev", "gh-prod", "files", "labs", "other"];
    let people = [
        direct(&[]),
        direct(&["dev"]),
        direct(&["dev", "no-delete"]),
        direct(&["reader"]),
        direct(&["dev", "locked-out"]),
        admin(),
    ];
    let mut shown = 0;
    for who in &people {
        let grants: EffectiveGrants =
            policy.effective_grants(&policy.effective_roles(&who.subject()));
        for (item, action) in [
            (Item::Tool, Action::ToolsCall),
            (Item::Resource, Action::ResourcesRead),
            (Item::ResourceTemplate, Action::ResourcesRead),
            (Item::Prompt, Action::PromptsGet),
        ] {
            for upstream in upstreams {
                let filter = grants.list_filter(item, upstream);
                for name in names {
                    let visible = grants.visible(item, upstream, name);
                    assert_eq!(filter.visible(name), visible, "{item:?} {upstream} {name}");
                    let call = grants.decide(&Request::new(action, upstream, Some(name)));
                    assert_eq!(visible, call.allowed, "{item:?} {upstream} {name}: {call}");
                    shown += usize::from(visible);
                }
            }
        }
    }
    // The table is not trivially all-hidden or all-shown.
    assert!(shown > 0 && shown < people.len() * 4 * upstreams.len() * names.len());
    let dev = policy.effective_grants(&policy.effective_roles(&direct(&["dev"]).subject()));
    assert!(dev.visible(Item::Tool, "gh-prod", "create_issue"));
    assert!(!dev.visible(Item::Tool, "gh-prod", "delete_repo"));
}

#[test]
fn compile_reports_every_problem_with_its_path() {
    let spec: PolicySpec = toml::from_str(
        r#"
default_role = "nobody"

[[roles]]
name = "a"
grants = [
  { effect = "allow", action = "tools/call", upstream = "" },
  { effect = "allow", action = "tools/cal" },
  { effect = "deny", action = "tools/list", target = "x" },
  { effect = "allow", action = "plumbing" },
]

[[roles]]
name = "a"
grants = [{ effect = "allow", action = "*", upstream = "gh-\\", target = " x" }]

[[roles]]
name = "admin"

[[mappings]]
claim = "realm_access..roles"
value = ""
role = "missing"
"#,
    )
    .unwrap();
    let errors = spec.compile().unwrap_err();
    let got: Vec<(String, String)> = errors
        .iter()
        .map(|e| (e.path().unwrap_or("").to_owned(), e.kind().to_string()))
        .collect();
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "roles[0].grants[0].upstream",
            "roles[0].grants[1].action",
            "roles[0].grants[2].target",
            "roles[0].grants[3].action",
            "roles[1].name",
            "roles[1].grants[0].upstream",
            "roles[1].grants[0].target",
            "roles[2].name",
            "mappings[0].claim",
            "mappings[0].value",
            "mappings[0].role",
            "default_role",
        ],
        "{got:#?}"
    );
    assert!(matches!(errors[0].kind(), PolicyError::EmptyPattern));
    assert!(matches!(
        errors[1].kind(),
        PolicyError::UnknownAction { .. }
    ));
    assert!(matches!(
        errors[4].kind(),
        PolicyError::DuplicateRole { first, .. } if first == "roles[0]"
    ));
    assert!(matches!(errors[7].kind(), PolicyError::ReservedRole { .. }));
    assert!(matches!(errors[10].kind(), PolicyError::UnknownRole { role } if role == "missing"));
    // Messages lead with the path.
    assert!(
        errors[1]
            .to_string()
            .starts_with("roles[0].grants[1].action: unknown action `tools/cal`"),
        "{}",
        errors[1]
    );
}

#[test]
fn unknown_fields_are_rejected() {
    let bad = r#"
[[roles]]
name = "a"
grants = [{ effect = "allow", action = "*", upstreams = "x" }]
"#;
    let err = toml::from_str::<PolicySpec>(bad).unwrap_err().to_string();
    assert!(err.contains("upstreams"), "{err}");
    assert!(toml::from_str::<PolicySpec>("[[roles]]\nname = \"a\"\ncolour = 1\n").is_err());
    assert!(
        toml::from_str::<PolicySpec>(
            "[[roles]]\nname = \"a\"\ngrants = [{ effect = \"maybe\", action = \"*\" }]\n"
        )
        .is_err()
    );
}

#[test]
fn a_policy_round_trips_through_toml() {
    let spec: PolicySpec = toml::from_str(POLICY).unwrap();
    let text = toml::to_string(&spec).unwrap();
    let again: PolicySpec = toml::from_str(&text).unwrap();
    assert_eq!(spec, again);
    let policy = policy();
    let providers: Vec<(usize, &str)> = policy.mapping_providers().collect();
    assert_eq!(
        providers,
        [
            (0, "keycloak"),
            (1, "keycloak"),
            (2, "github"),
            (3, "google"),
            (7, "keycloak")
        ]
    );
}

#[test]
fn default_role_cannot_be_admin() {
    let errors = Policy::compile(&[], &[], Some("admin")).unwrap_err();
    assert_eq!(errors[0].path(), Some("default_role"));
    assert!(matches!(errors[0].kind(), PolicyError::DefaultRoleAdmin));
}

#[test]
fn the_readme_example_policy_compiles_and_behaves() {
    let readme = include_str!("../README.md");
    let toml_block = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a ```toml block");
    let spec: PolicySpec = toml::from_str(toml_block).unwrap();
    let policy = spec.compile().unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(policy.default_role(), Some("member"));
    let who = idp(
        "github",
        UserContext {
            groups: vec!["acme".into(), "acme:platform".into()],
            ..UserContext::default()
        },
    );
    let grants = policy.effective_grants(&policy.effective_roles(&who.subject()));
    assert!(grants.is_allowed(&Request::for_method(
        "tools/call",
        "github",
        Some("create_issue")
    )));
    assert!(!grants.is_allowed(&Request::for_method(
        "tools/call",
        "github",
        Some("delete_repo")
    )));
}

#[test]
fn adversarial_patterns_in_grants_decide_quickly() {
    let spec: PolicySpec = toml::from_str(
        r#"
[[roles]]
name = "r"
grants = [{ effect = "allow", action = "tools/call", target = "a*a*a*a*a*a*a*a*a*a*a*a*b" }]
"#,
    )
    .unwrap();
    let policy = spec.compile().unwrap();
    let grants = policy.effective_grants(&policy.effective_roles(&direct(&["r"]).subject()));
    let long = "a".repeat(50_000);
    let start = std::time::Instant::now();
    assert!(!grants.is_allowed(&Request::new(Action::ToolsCall, "u", Some(&long))));
    let hit = format!("{long}b");
    assert!(grants.is_allowed(&Request::new(Action::ToolsCall, "u", Some(&hit))));
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn holds_any_is_the_list_rule_for_a_request_without_its_item() {
    let spec: PolicySpec = toml::from_str(
        r#"
        [[roles]]
        name = "some"
        grants = [{ effect = "allow", action = "tools/call", upstream = "gh", target = "search_*" },
                  { effect = "allow", action = "prompts/get", upstream = "docs" },
                  { effect = "deny", action = "prompts/get", upstream = "docs", target = "*" }]
        "#,
    )
    .unwrap();
    let policy = spec.compile().unwrap();
    let roles = policy.effective_roles(&Subject {
        roles: &["some".into()],
        ..Subject::default()
    });
    let grants = policy.effective_grants(&roles);
    assert!(grants.holds_any(Action::ToolsCall, "gh"));
    assert!(!grants.holds_any(Action::ToolsCall, "docs"));
    assert!(!grants.holds_any(Action::ResourcesRead, "gh"));
    assert!(
        !grants.holds_any(Action::PromptsGet, "docs"),
        "a whole-upstream deny takes it back"
    );
}

/// A user signed in with two providers holds the roles of both providers' rules; each rule
/// with `provider` still matches only that provider's facts.
#[test]
fn every_linked_provider_counts_for_the_mapping_rules() {
    let policy = policy();
    let github = UserContext {
        groups: vec!["acme:platform".into()],
        ..UserContext::default()
    };
    let both = Who {
        identities: vec![
            identity("github", github.clone()),
            identity("google", claims(json!({"hd": "acme.com"}))),
        ],
        ..Who::default()
    };
    let roles = policy.effective_roles(&both.subject());
    let names: Vec<&str> = roles.names().collect();
    assert!(names.contains(&"gh-team"), "{names:?}");
    assert!(names.contains(&"google"), "{names:?}");
    // The GitHub facts under another provider's name match nothing.
    let misnamed = Who {
        identities: vec![identity("google", github)],
        ..Who::default()
    };
    let roles = policy.effective_roles(&misnamed.subject());
    assert!(!roles.names().any(|n| n == "gh-team"));
}
