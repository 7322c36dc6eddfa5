//! The MCP method table: for each client→server JSON-RPC method, everything the gateway needs
//! to know to authenticate, decide and answer it — the action it asks for, the scope it needs,
//! where it names its item, whether 2026-07-28 repeats that name in `Mcp-Name`, which list it
//! returns, the protocol revisions that have it, and how a server says "no such item".
//!
//! One table, so the proxy never matches method strings of its own.

use crate::{Action, Item};

/// Where a request names the item a grant's `target` is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetField {
    /// The method names no item.
    None,
    /// `params.name` (tools, prompts).
    Name,
    /// `params.uri` (resources).
    Uri,
    /// `params.ref.name` or `params.ref.uri` (completion).
    CompletionRef,
    /// The method name itself (unknown methods and plumbing).
    Method,
}

/// What the caller's token must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeNeed {
    /// Listing and reading.
    Read,
    /// Anything that acts (calls a tool, changes state).
    Use,
}

/// How a server answers a request for an item it does not have, per the MCP specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownItem {
    /// `-32602` "Unknown tool".
    Tool,
    /// `-32602` "Unknown prompt".
    Prompt,
    /// 2025 revisions: `-32002` "Resource not found"; 2026-07-28 (SEP-2164): `-32602`; both
    /// with `data.uri`.
    Resource,
    /// `-32601` "Method not found".
    Method,
}

/// A list result: the kind of item, the result field holding the array, the key naming an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListKind {
    pub item: Item,
    pub field: &'static str,
    pub key: &'static str,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpMethod {
    pub action: Action,
    pub scope: ScopeNeed,
    pub target: TargetField,
    /// 2026-07-28 requests carry the target in `Mcp-Name` too.
    pub name_header: bool,
    pub list: Option<ListKind>,
    /// The first revision without the method (`None`: still in the newest).
    pub removed_in: Option<&'static str>,
    /// The first revision with the method (`None`: in every revision mcpgate knows).
    pub added_in: Option<&'static str>,
    pub unknown: UnknownItem,
}

/// The stateless revision: the first without `initialize`, sessions and subscriptions.
pub const STATELESS_REVISION: &str = "2026-07-28";

const fn row(action: Action, scope: ScopeNeed, target: TargetField) -> McpMethod {
    McpMethod {
        action,
        scope,
        target,
        name_header: false,
        list: None,
        removed_in: None,
        added_in: None,
        unknown: UnknownItem::Method,
    }
}

const fn list(action: Action, item: Item, field: &'static str, key: &'static str) -> McpMethod {
    McpMethod {
        list: Some(ListKind { item, field, key }),
        ..row(action, ScopeNeed::Read, TargetField::None)
    }
}

impl McpMethod {
    /// The row for a JSON-RPC method; methods the table does not know are
    /// [`Action::OtherMethod`] (granted as `other`, target = the method) and need `Use`,
    /// notifications are plumbing.
    pub fn of(method: &str) -> McpMethod {
        use Action as A;
        use ScopeNeed::{Read, Use};
        use TargetField as T;
        let stateless = Some(STATELESS_REVISION);
        match method {
            "initialize" => McpMethod {
                removed_in: stateless,
                ..row(A::Plumbing, Read, T::Method)
            },
            "ping" => row(A::Plumbing, Read, T::Method),
            "server/discover" => McpMethod {
                added_in: stateless,
                ..row(A::Plumbing, Read, T::Method)
            },
            "tools/list" => list(A::ToolsList, Item::Tool, "tools", "name"),
            "resources/list" => list(A::ResourcesList, Item::Resource, "resources", "uri"),
            "resources/templates/list" => list(
                A::ResourcesTemplatesList,
                Item::ResourceTemplate,
                "resourceTemplates",
                "uriTemplate",
            ),
            "prompts/list" => list(A::PromptsList, Item::Prompt, "prompts", "name"),
            "tools/call" => McpMethod {
                name_header: true,
                unknown: UnknownItem::Tool,
                ..row(A::ToolsCall, Use, T::Name)
            },
            "prompts/get" => McpMethod {
                name_header: true,
                unknown: UnknownItem::Prompt,
                ..row(A::PromptsGet, Read, T::Name)
            },
            "resources/read" => McpMethod {
                name_header: true,
                unknown: UnknownItem::Resource,
                ..row(A::ResourcesRead, Read, T::Uri)
            },
            "resources/subscribe" => McpMethod {
                removed_in: stateless,
                unknown: UnknownItem::Resource,
                ..row(A::ResourcesSubscribe, Read, T::Uri)
            },
            "resources/unsubscribe" => McpMethod {
                removed_in: stateless,
                unknown: UnknownItem::Resource,
                ..row(A::ResourcesUnsubscribe, Read, T::Uri)
            },
            "completion/complete" => row(A::CompletionComplete, Read, T::CompletionRef),
            "logging/setLevel" => McpMethod {
                removed_in: stateless,
                ..row(A::LoggingSetLevel, Use, T::None)
            },
            "tasks/list" => row(A::TasksList, Read, T::None),
            "tasks/get" => row(A::TasksGet, Read, T::None),
            "tasks/result" => row(A::TasksResult, Read, T::None),
            "tasks/cancel" => row(A::TasksCancel, Use, T::None),
            m if m.starts_with("notifications/") => row(A::Plumbing, Read, T::Method),
            _ => row(A::OtherMethod, Use, T::Method),
        }
    }

    /// Whether requests of this method name an item grants are matched against.
    pub fn names_an_item(&self) -> bool {
        matches!(
            self.target,
            TargetField::Name | TargetField::Uri | TargetField::CompletionRef
        )
    }

    /// Whether the method exists in a protocol revision (date-shaped revisions compare as
    /// strings).
    pub fn exists_in(&self, revision: &str) -> bool {
        self.removed_in.is_none_or(|r| revision < r) && self.added_in.is_none_or(|a| revision >= a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_the_actions() {
        for m in [
            "tools/call",
            "tools/list",
            "resources/read",
            "resources/templates/list",
            "prompts/get",
            "completion/complete",
            "logging/setLevel",
            "initialize",
            "notifications/initialized",
            "server/discover",
            "sampling/createMessage",
        ] {
            assert_eq!(McpMethod::of(m).action, Action::from_method(m), "{m}");
        }
    }

    #[test]
    fn revisions() {
        let subscribe = McpMethod::of("resources/subscribe");
        assert!(subscribe.exists_in("2025-11-25"));
        assert!(!subscribe.exists_in("2026-07-28"));
        let discover = McpMethod::of("server/discover");
        assert!(!discover.exists_in("2025-11-25"));
        assert!(discover.exists_in("2026-07-28"));
        assert!(McpMethod::of("tools/call").exists_in("2024-11-05"));
    }

    #[test]
    fn scopes_and_names() {
        assert_eq!(McpMethod::of("tools/call").scope, ScopeNeed::Use);
        assert_eq!(McpMethod::of("tools/list").scope, ScopeNeed::Read);
        assert_eq!(McpMethod::of("frob").scope, ScopeNeed::Use);
        assert_eq!(
            McpMethod::of("notifications/cancelled").scope,
            ScopeNeed::Read
        );
        assert!(McpMethod::of("resources/read").name_header);
        assert!(!McpMethod::of("resources/subscribe").name_header);
        assert!(McpMethod::of("completion/complete").names_an_item());
        assert!(!McpMethod::of("frob").names_an_item());
    }
}
