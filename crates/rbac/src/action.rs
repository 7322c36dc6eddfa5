//! What a grant permits: MCP actions (one per client→server JSON-RPC method, a fallback for
//! methods this build does not know, and protocol plumbing) and admin actions.

use std::fmt;

use crate::PolicyError;

/// One thing a caller may ask to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    ToolsList,
    ToolsCall,
    ResourcesList,
    ResourcesTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    PromptsList,
    PromptsGet,
    CompletionComplete,
    LoggingSetLevel,
    TasksList,
    TasksGet,
    TasksResult,
    TasksCancel,
    /// A JSON-RPC method this build does not know; the target is the method name. Granted
    /// as `other`, so a future method is allowed only where a policy says so.
    OtherMethod,
    /// `initialize`, `ping`, `notifications/*`, `server/discover` and JSON-RPC responses:
    /// not grantable, allowed to anyone holding an MCP grant on the upstream (see
    /// [`EffectiveGrants::decide`](crate::EffectiveGrants::decide)).
    Plumbing,
    AdminUsers,
    AdminTeams,
    AdminRoles,
    AdminUpstreams,
    AdminProviders,
    AdminClients,
    AdminAudit,
}

impl Action {
    /// Every action, in bit order.
    pub const ALL: [Action; 24] = [
        Action::ToolsList,
        Action::ToolsCall,
        Action::ResourcesList,
        Action::ResourcesTemplatesList,
        Action::ResourcesRead,
        Action::ResourcesSubscribe,
        Action::ResourcesUnsubscribe,
        Action::PromptsList,
        Action::PromptsGet,
        Action::CompletionComplete,
        Action::LoggingSetLevel,
        Action::TasksList,
        Action::TasksGet,
        Action::TasksResult,
        Action::TasksCancel,
        Action::OtherMethod,
        Action::Plumbing,
        Action::AdminUsers,
        Action::AdminTeams,
        Action::AdminRoles,
        Action::AdminUpstreams,
        Action::AdminProviders,
        Action::AdminClients,
        Action::AdminAudit,
    ];

    /// The name used in grants (and, for MCP actions, the JSON-RPC method).
    pub const fn name(self) -> &'static str {
        match self {
            Action::ToolsList => "tools/list",
            Action::ToolsCall => "tools/call",
            Action::ResourcesList => "resources/list",
            Action::ResourcesTemplatesList => "resources/templates/list",
            Action::ResourcesRead => "resources/read",
            Action::ResourcesSubscribe => "resources/subscribe",
            Action::ResourcesUnsubscribe => "resources/unsubscribe",
            Action::PromptsList => "prompts/list",
            Action::PromptsGet => "prompts/get",
            Action::CompletionComplete => "completion/complete",
            Action::LoggingSetLevel => "logging/setLevel",
            Action::TasksList => "tasks/list",
            Action::TasksGet => "tasks/get",
            Action::TasksResult => "tasks/result",
            Action::TasksCancel => "tasks/cancel",
            Action::OtherMethod => "other",
            Action::Plumbing => "plumbing",
            Action::AdminUsers => "admin:users",
            Action::AdminTeams => "admin:teams",
            Action::AdminRoles => "admin:roles",
            Action::AdminUpstreams => "admin:upstreams",
            Action::AdminProviders => "admin:providers",
            Action::AdminClients => "admin:clients",
            Action::AdminAudit => "admin:audit",
        }
    }

    /// The action with this exact name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// What a JSON-RPC method from an MCP client asks for. Never an admin action: a client
    /// sending method `admin:users` gets [`Action::OtherMethod`].
    pub fn from_method(method: &str) -> Action {
        match method {
            "initialize" | "ping" | "server/discover" => Action::Plumbing,
            m if m.starts_with("notifications/") => Action::Plumbing,
            m => match Action::from_name(m) {
                Some(a) if a.is_mcp() && a != Action::OtherMethod && a != Action::Plumbing => a,
                _ => Action::OtherMethod,
            },
        }
    }

    /// Whether a request for this action names an item (tool, resource URI, prompt,
    /// completion reference, method) that grants match with their `target` pattern.
    pub const fn takes_target(self) -> bool {
        matches!(
            self,
            Action::ToolsCall
                | Action::ResourcesRead
                | Action::ResourcesSubscribe
                | Action::ResourcesUnsubscribe
                | Action::PromptsGet
                | Action::CompletionComplete
                | Action::OtherMethod
                | Action::Plumbing
        )
    }

    pub const fn is_admin(self) -> bool {
        (self as u32) >= (Action::AdminUsers as u32)
    }

    pub const fn is_mcp(self) -> bool {
        !self.is_admin()
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of actions, as a grant's `action` names them. Membership is one bit test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActionSet(u32);

impl ActionSet {
    /// Every grantable MCP action (what `*` means), `other` included, plumbing not.
    pub const MCP: ActionSet = ActionSet(Action::Plumbing.bit() - 1);
    /// Every admin action (`admin:*`).
    pub const ADMIN: ActionSet = ActionSet(Self::ALL_BITS & !(Action::AdminUsers.bit() - 1));
    /// Everything grantable: what the built-in `admin` role holds.
    pub const ALL: ActionSet = ActionSet(Self::MCP.0 | Self::ADMIN.0);
    const ALL_BITS: u32 = (Action::AdminAudit.bit() << 1) - 1;

    pub const fn empty() -> ActionSet {
        ActionSet(0)
    }

    /// Parses a grant's `action`: an exact action name (`tools/call`, `other`, `admin:users`),
    /// a group (`tools/*`, `resources/*`, `prompts/*`, `completion/*`, `logging/*`,
    /// `tasks/*`), `*` for every MCP action, or `admin:*` for every admin action. `*` does not
    /// include admin actions.
    pub fn parse(action: &str) -> Result<ActionSet, PolicyError> {
        let unknown = || PolicyError::UnknownAction {
            action: action.to_owned(),
        };
        match action {
            "*" => return Ok(ActionSet::MCP),
            "admin:*" => return Ok(ActionSet::ADMIN),
            "plumbing" => {
                return Err(PolicyError::NotGrantable {
                    action: action.to_owned(),
                });
            }
            _ => {}
        }
        if let Some(group) = action.strip_suffix("/*") {
            if !GROUPS.contains(&group) {
                return Err(unknown());
            }
            let set = Action::ALL
                .into_iter()
                .filter(|a| a.is_mcp() && a.name().starts_with(group))
                .filter(|a| a.name().as_bytes().get(group.len()) == Some(&b'/'))
                .fold(ActionSet::empty(), |s, a| s.with(a));
            return Ok(set);
        }
        Action::from_name(action)
            .map(|a| ActionSet::empty().with(a))
            .ok_or_else(unknown)
    }

    #[must_use]
    pub const fn with(self, action: Action) -> ActionSet {
        ActionSet(self.0 | action.bit())
    }

    pub const fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn intersects(self, other: ActionSet) -> bool {
        self.0 & other.0 != 0
    }

    #[must_use]
    pub const fn intersection(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & other.0)
    }

    #[must_use]
    pub const fn union(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 | other.0)
    }

    #[must_use]
    pub const fn difference(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & !other.0)
    }

    /// Whether any action in the set names an item.
    pub fn any_takes_target(self) -> bool {
        self.iter().any(Action::takes_target)
    }

    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

const GROUPS: [&str; 6] = [
    "tools",
    "resources",
    "prompts",
    "completion",
    "logging",
    "tasks",
];

/// The accepted action forms, for error messages.
pub(crate) fn grammar() -> String {
    let mut names: Vec<&str> = Action::ALL
        .into_iter()
        .filter(|a| *a != Action::Plumbing)
        .map(Action::name)
        .collect();
    names.extend(["*", "admin:*"]);
    let groups = GROUPS.map(|g| format!("{g}/*")).join(", ");
    format!("{}, {groups}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
        }
    }

    #[test]
    fn star_is_every_mcp_action_but_not_admin_or_plumbing() {
        let all = ActionSet::parse("*").unwrap();
        for a in Action::ALL {
            assert_eq!(all.contains(a), a.is_mcp() && a != Action::Plumbing, "{a}");
        }
        let admin = ActionSet::parse("admin:*").unwrap();
        for a in Action::ALL {
            assert_eq!(admin.contains(a), a.is_admin(), "{a}");
        }
        assert_eq!(ActionSet::ALL, all.union(admin));
    }

    #[test]
    fn groups_cover_their_methods() {
        let r = ActionSet::parse("resources/*").unwrap();
        let names: Vec<_> = r.iter().map(Action::name).collect();
        assert_eq!(
            names,
            [
                "resources/list",
                "resources/templates/list",
                "resources/read",
                "resources/subscribe",
                "resources/unsubscribe"
            ]
        );
        let t = ActionSet::parse("tools/*").unwrap();
        assert!(t.contains(Action::ToolsCall) && t.contains(Action::ToolsList));
        assert!(!t.contains(Action::TasksList));
    }

    #[test]
    fn unknown_and_plumbing_are_errors() {
        for bad in [
            "tool/call",
            "tools/c*",
            "admin:everything",
            "bogus/*",
            "",
            "Tools/call",
        ] {
            assert!(
                matches!(
                    ActionSet::parse(bad),
                    Err(PolicyError::UnknownAction { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            ActionSet::parse("plumbing"),
            Err(PolicyError::NotGrantable { .. })
        ));
        let msg = ActionSet::parse("nope").unwrap_err().to_string();
        assert!(
            msg.contains("tools/call") && msg.contains("admin:*"),
            "{msg}"
        );
    }

    #[test]
    fn methods_map_to_actions() {
        assert_eq!(Action::from_method("tools/call"), Action::ToolsCall);
        assert_eq!(
            Action::from_method("resources/templates/list"),
            Action::ResourcesTemplatesList
        );
        assert_eq!(
            Action::from_method("logging/setLevel"),
            Action::LoggingSetLevel
        );
        for p in [
            "initialize",
            "ping",
            "notifications/initialized",
            "notifications/cancelled",
            "server/discover",
        ] {
            assert_eq!(Action::from_method(p), Action::Plumbing, "{p}");
        }
        for o in [
            "admin:users",
            "other",
            "plumbing",
            "sampling/createMessage",
            "tools/frob",
        ] {
            assert_eq!(Action::from_method(o), Action::OtherMethod, "{o}");
        }
    }
}
