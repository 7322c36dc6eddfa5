//! The view models: plain data the templates show. Every string is escaped when rendered.

use serde::Serialize;

use crate::{RenderError, render};

/// A sign-in method at an identity provider.
#[derive(Debug, Clone, Serialize)]
pub struct Provider {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct LoginView {
    pub providers: Vec<Provider>,
    pub error: Option<String>,
    pub email: String,
    pub csrf: String,
    pub return_to: String,
}

impl LoginView {
    pub fn render(&self) -> Result<String, RenderError> {
        render("login.html", self)
    }
}

/// An error or notice page: what happened, in words, and a way back.
#[derive(Debug, Serialize)]
pub struct MessageView {
    pub title: String,
    pub text: String,
    /// The HTTP status shown as "Error 404"; `None` for a notice.
    pub status: Option<u16>,
    pub back_href: String,
    pub back_text: String,
}

impl MessageView {
    /// A page whose way back is the sign-in page.
    pub fn new(status: Option<u16>, title: &str, text: &str) -> Self {
        Self {
            title: title.to_owned(),
            text: text.to_owned(),
            status,
            back_href: "/login".into(),
            back_text: "Back to sign-in".into(),
        }
    }

    pub fn render(&self) -> Result<String, RenderError> {
        render("message.html", self)
    }
}

#[derive(Debug, Serialize)]
pub struct ScopeLine {
    /// What the scope lets the client do, in words.
    pub text: String,
    pub scope: String,
}

#[derive(Debug, Serialize)]
pub struct HiddenField {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct ConsentView {
    pub client_name: String,
    /// `dcr`, `cimd` or `configured`.
    pub registration: String,
    /// For `cimd`: the host publishing the client's metadata document.
    pub client_host: String,
    /// "Signed in as" or "Sign in with".
    pub who_label: String,
    pub who: String,
    /// Whether allowing leads on to an identity provider's sign-in.
    pub federating: bool,
    pub resource: String,
    pub redirect_host: String,
    pub scopes: Vec<ScopeLine>,
    pub notice: Option<String>,
    /// The client redirects only to loopback addresses.
    pub loopback: bool,
    pub action: String,
    pub fields: Vec<HiddenField>,
}

impl ConsentView {
    pub fn render(&self) -> Result<String, RenderError> {
        render("consent.html", self)
    }
}

/// A link in the top navigation.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub href: String,
    pub label: String,
}

/// The top navigation of every signed-in page: links (the admin pages for administrators),
/// the current page, and the sign-out form's CSRF token. Other pages reuse it by embedding a
/// [`Chrome`] and extending `signed_in.html`.
#[derive(Debug, Clone, Serialize)]
pub struct Nav {
    pub links: Vec<Link>,
    pub current: String,
    pub logout_csrf: String,
}

/// The admin pages, in navigation order: (path, label).
pub const ADMIN_PAGES: &[(&str, &str)] = &[
    ("/admin/users", "Users"),
    ("/admin/roles", "Roles"),
    ("/admin/teams", "Teams"),
    ("/admin/upstreams", "Upstreams"),
    ("/admin/clients", "Clients"),
    ("/admin/audit", "Audit"),
    ("/admin/explain", "Access"),
    ("/admin/dashboard", "Dashboard"),
];

impl Nav {
    pub fn new(is_admin: bool, current: &str, logout_csrf: String) -> Self {
        let mut links = vec![
            Link {
                href: "/".into(),
                label: "Home".into(),
            },
            Link {
                href: "/me/tokens".into(),
                label: "Tokens".into(),
            },
        ];
        if is_admin {
            links.extend(ADMIN_PAGES.iter().map(|(href, label)| Link {
                href: (*href).into(),
                label: (*label).into(),
            }));
        }
        Self {
            links,
            current: current.to_owned(),
            logout_csrf,
        }
    }
}

/// What every signed-in page carries around its content.
#[derive(Debug, Clone, Serialize)]
pub struct Chrome {
    pub nav: Nav,
    /// A line confirming what the last form did.
    pub flash: Option<String>,
    /// A line saying why the last form failed.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct ConsentRow {
    pub client_id: String,
    pub client_name: String,
    pub scopes: String,
    pub granted_at: String,
}

#[derive(Debug, Serialize)]
pub struct SessionRow {
    /// Opaque: names the session to end, never the cookie value.
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    pub current: bool,
}

#[derive(Debug, Serialize)]
pub struct HomeView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub name: String,
    pub email: String,
    pub csrf: String,
    pub endpoints: Vec<Endpoint>,
    pub consents: Vec<ConsentRow>,
    pub sessions: Vec<SessionRow>,
    /// Whether the person has a password here (not only an identity provider's sign-in).
    pub local_account: bool,
}

impl HomeView {
    pub fn render(&self) -> Result<String, RenderError> {
        render("home.html", self)
    }
}

#[derive(Debug, Serialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
}

#[derive(Debug, Serialize)]
pub struct UsersView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub csrf: String,
    pub query: String,
    pub users: Vec<UserRow>,
    pub next_after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct GrantRow {
    pub effect: String,
    pub action: String,
    pub upstream: String,
    pub target: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RoleRow {
    pub name: String,
    pub description: String,
    /// `builtin`, `config` or `database` (only these can be changed here).
    pub source: String,
    pub grants: Vec<GrantRow>,
}

#[derive(Debug, Serialize)]
pub struct RolesView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub csrf: String,
    pub roles: Vec<RoleRow>,
}

#[derive(Debug, Serialize)]
pub struct TeamRow {
    pub name: String,
    pub members: Vec<String>,
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MappingRow {
    pub id: Option<String>,
    pub provider: Option<String>,
    pub claim: String,
    pub value: String,
    pub role: String,
    pub source: String,
}

#[derive(Debug, Serialize)]
pub struct TeamsView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub csrf: String,
    pub teams: Vec<TeamRow>,
    /// Role names to pick from.
    pub roles: Vec<String>,
    pub mappings: Vec<MappingRow>,
}

#[derive(Debug, Serialize)]
pub struct UpstreamRow {
    pub name: String,
    /// mcpgate's MCP endpoint for it.
    pub endpoint: String,
    pub url: String,
    pub credential: String,
    pub reachable: Option<bool>,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UpstreamsView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub upstreams: Vec<UpstreamRow>,
}

#[derive(Debug, Serialize)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    pub registration: String,
    pub redirect_uris: Vec<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
pub struct ClientsView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub csrf: String,
    pub clients: Vec<ClientRow>,
    pub next_after: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct AuditFilters {
    pub user: String,
    pub upstream: String,
    pub tool: String,
    pub decision: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), as `datetime-local` inputs send it.
    pub since: String,
    pub until: String,
}

#[derive(Debug, Serialize)]
pub struct AuditRow {
    pub at: String,
    pub user: Option<String>,
    pub action: String,
    pub upstream: Option<String>,
    pub target: Option<String>,
    pub decision: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct AuditView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub filters: AuditFilters,
    pub events: Vec<AuditRow>,
    /// The filters as a query string (already encoded), for the export links.
    pub export_query: String,
    /// The query string of the next (older) page, if any.
    pub next_query: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ExplainForm {
    pub user: String,
    pub upstream: String,
    pub tool: String,
}

#[derive(Debug, Serialize)]
pub struct HeldRoleRow {
    pub name: String,
    /// Why the user holds it, in words ("directly", "team", "mapping groups=dev → dev").
    pub because: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DecisionRow {
    pub allowed: bool,
    /// The deciding grant, as the policy engine words it.
    pub explanation: String,
}

#[derive(Debug, Serialize)]
pub struct ExplainResult {
    pub user: String,
    pub disabled: bool,
    pub roles: Vec<HeldRoleRow>,
    pub unknown_roles: Vec<String>,
    pub decision: Option<DecisionRow>,
}

#[derive(Debug, Serialize)]
pub struct ExplainView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub form: ExplainForm,
    pub result: Option<ExplainResult>,
}

/// One small line plot: the values over time, drawn as an SVG polyline in a 300×80 box.
#[derive(Debug, Serialize)]
pub struct Plot {
    pub title: String,
    pub unit: String,
    pub latest: String,
    pub peak: Option<String>,
    /// The polyline's points (numbers only), empty without samples.
    pub points: String,
    /// The values in words, for screen readers.
    pub summary: String,
}

impl Plot {
    /// A plot of `values` (oldest first); `decimals` for the shown numbers.
    pub fn new(title: &str, unit: &str, values: &[f64], decimals: usize) -> Self {
        let finite: Vec<f64> = values
            .iter()
            .map(|v| if v.is_finite() { v.max(0.0) } else { 0.0 })
            .collect();
        let max = finite.iter().copied().fold(0.0_f64, f64::max);
        let n = finite.len();
        let points = if n == 0 {
            String::new()
        } else {
            finite
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let x = if n == 1 {
                        300.0
                    } else {
                        300.0 * i as f64 / (n - 1) as f64
                    };
                    let y = if max > 0.0 {
                        78.0 - 74.0 * v / max
                    } else {
                        78.0
                    };
                    format!("{x:.1},{y:.1}")
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let show = |v: f64| format!("{v:.decimals$}");
        Self {
            title: title.to_owned(),
            unit: unit.to_owned(),
            latest: finite
                .last()
                .copied()
                .map(show)
                .unwrap_or_else(|| "–".into()),
            peak: (n > 1).then(|| show(max)),
            summary: format!(
                "{n} samples, latest {}, peak {}",
                finite.last().copied().map(show).unwrap_or_default(),
                show(max)
            ),
            points,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DashboardView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub interval_secs: u64,
    /// How long the plots cover, in words.
    pub window: String,
    pub plots: Vec<Plot>,
}

macro_rules! renders {
    ($($view:ty => $template:literal),* $(,)?) => {$(
        impl $view {
            pub fn render(&self) -> Result<String, RenderError> {
                render($template, self)
            }
        }
    )*};
}

renders! {
    UsersView => "admin/users.html",
    RolesView => "admin/roles.html",
    TeamsView => "admin/teams.html",
    UpstreamsView => "admin/upstreams.html",
    ClientsView => "admin/clients.html",
    AuditView => "admin/audit.html",
    ExplainView => "admin/explain.html",
    DashboardView => "admin/dashboard.html",
}

#[derive(Debug, Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub upstreams: String,
    pub scope: String,
    pub status: String,
    pub last_used: String,
    pub active: bool,
}

#[derive(Debug, Serialize)]
pub struct ScopeChoice {
    pub value: String,
    pub label: String,
}

/// `/me/tokens`: the person's personal access tokens and the form for a new one.
#[derive(Debug, Serialize)]
pub struct TokensView {
    #[serde(flatten)]
    pub chrome: Chrome,
    pub tokens: Vec<TokenRow>,
    /// A token just created: shown this once.
    pub created: Option<String>,
    pub create_csrf: String,
    pub revoke_csrf: String,
    pub upstreams: Vec<String>,
    pub scopes: Vec<ScopeChoice>,
    pub max_days: u32,
    pub default_days: u32,
}

impl TokensView {
    pub fn render(&self) -> Result<String, RenderError> {
        render("tokens.html", self)
    }
}

/// `/connect/{upstream}`: what connecting means, and the form that starts it (an upstream OAuth
/// sign-in, or a key entered here for `secret`).
#[derive(Debug, Serialize)]
pub struct ConnectView {
    pub title: String,
    pub name: String,
    pub upstream: String,
    pub who: String,
    pub csrf: String,
    pub elicitation: String,
    pub secret: bool,
}

impl ConnectView {
    pub fn render(&self) -> Result<String, RenderError> {
        render("connect.html", self)
    }
}

#[derive(Debug, Serialize)]
pub struct ConnectionRow {
    pub name: String,
    pub upstream: String,
    pub connected: bool,
}

/// `/me/connections`.
#[derive(Debug, Serialize)]
pub struct ConnectionsView {
    pub title: String,
    pub who: String,
    pub csrf: String,
    pub connections: Vec<ConnectionRow>,
}

impl ConnectionsView {
    pub fn render(&self) -> Result<String, RenderError> {
        render("connections.html", self)
    }
}
