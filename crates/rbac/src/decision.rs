//! Deciding one request over a set of compiled grants.
//!
//! The rule, in order:
//! 1. A request for an action that names an item but carries none is denied.
//! 2. Protocol plumbing ([`Action::Plumbing`]) is allowed when some allow grant covers an MCP
//!    action on the upstream that no whole-upstream deny (target `*`) takes back.
//! 3. The first deny grant that matches decides: denied. Deny wins, across roles too.
//! 4. Otherwise the first allow grant that matches decides: allowed.
//! 5. Otherwise denied: nothing is allowed by default.
//!
//! A grant matches when its action set holds the action, its upstream pattern matches the
//! upstream and its target pattern matches the target. A request without a target (the list
//! methods, `logging/setLevel`, admin actions) is matched by an allow grant whatever its
//! target (`allow tools/* target=search_*` lets the caller list, and the list is then
//! filtered to `search_*`), and by a deny grant only when the deny's target is `*`: denying
//! some tools hides them, it does not deny the list.

use std::fmt;
use std::sync::Arc;

use crate::{Action, ActionSet, Effect, Pattern};

/// One compiled grant, as held by a role.
#[derive(Debug)]
pub struct Grant {
    pub(crate) role: Arc<str>,
    pub(crate) index: usize,
    pub(crate) effect: Effect,
    pub(crate) action: Box<str>,
    pub(crate) actions: ActionSet,
    pub(crate) upstream: Pattern,
    pub(crate) target: Pattern,
}

impl Grant {
    /// The role holding this grant.
    pub fn role(&self) -> &str {
        &self.role
    }
    /// The grant's index in the role's `grants`.
    pub fn index(&self) -> usize {
        self.index
    }
    pub fn effect(&self) -> Effect {
        self.effect
    }
    /// The action as written (`tools/*`).
    pub fn action(&self) -> &str {
        &self.action
    }
    pub fn actions(&self) -> ActionSet {
        self.actions
    }
    pub fn upstream(&self) -> &Pattern {
        &self.upstream
    }
    pub fn target(&self) -> &Pattern {
        &self.target
    }

    #[inline]
    fn matches(&self, action: Action, upstream: &str, target: Option<&str>) -> bool {
        self.actions.contains(action)
            && self.upstream.matches(upstream)
            && match target {
                Some(t) => self.target.matches(t),
                None => self.effect == Effect::Allow || self.target.is_any(),
            }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} upstream={:?} target={:?}",
            self.effect,
            self.action,
            self.upstream.as_str(),
            self.target.as_str()
        )
    }
}

/// What is being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub action: Action,
    /// The upstream's configured name; for admin actions the upstream concerned, or "".
    pub upstream: &'a str,
    /// The item for actions that name one (tool name, resource URI, prompt name, completion
    /// reference, method name for `other` and plumbing); ignored for the others.
    pub target: Option<&'a str>,
}

impl<'a> Request<'a> {
    pub fn new(action: Action, upstream: &'a str, target: Option<&'a str>) -> Self {
        Request {
            action,
            upstream,
            target,
        }
    }

    /// The request for one JSON-RPC message from an MCP client to `upstream`.
    ///
    /// `name` is what the params name: `params.name` for `tools/call` and `prompts/get`,
    /// `params.uri` for `resources/read`, `resources/subscribe` and `resources/unsubscribe`,
    /// `params.ref.name` or `params.ref.uri` for `completion/complete` (the `Mcp-Name` header
    /// in the 2026 transport). For plumbing and unknown methods the target is the method.
    /// A JSON-RPC response (no method) is plumbing: pass `Action::Plumbing` to [`Request::new`].
    pub fn for_method(method: &'a str, upstream: &'a str, name: Option<&'a str>) -> Self {
        let action = Action::from_method(method);
        let target = match action {
            Action::Plumbing | Action::OtherMethod => Some(method),
            a if a.takes_target() => name,
            _ => None,
        };
        Request::new(action, upstream, target)
    }
}

/// A list item whose visibility follows the call that would use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A `tools/list` entry, by name: visible iff `tools/call` on it is allowed.
    Tool,
    /// A `resources/list` entry, by URI: visible iff `resources/read` on it is allowed.
    Resource,
    /// A `resources/templates/list` entry, by URI template: visible iff `resources/read` on
    /// the template string is allowed.
    ResourceTemplate,
    /// A `prompts/list` entry, by name: visible iff `prompts/get` on it is allowed.
    Prompt,
}

impl Item {
    /// The action that decides this item's visibility.
    pub fn action(self) -> Action {
        match self {
            Item::Tool => Action::ToolsCall,
            Item::Resource | Item::ResourceTemplate => Action::ResourcesRead,
            Item::Prompt => Action::PromptsGet,
        }
    }
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An allow grant matched and no deny grant did.
    Allowed,
    /// A deny grant matched.
    Denied,
    /// No grant matched: denied by default.
    NoMatchingGrant,
    /// The action names an item but the request carried none.
    MissingTarget,
    /// Protocol plumbing, allowed by an MCP grant on the upstream.
    Plumbing,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Allowed => "allowed by a grant",
            Reason::Denied => "denied by a grant",
            Reason::NoMatchingGrant => "no grant allows it (denied by default)",
            Reason::MissingTarget => "the request does not name the item it acts on",
            Reason::Plumbing => "protocol plumbing, allowed by a grant on the upstream",
        })
    }
}

/// The grant that decided.
#[derive(Debug, Clone)]
pub struct DecidedBy {
    pub role: Arc<str>,
    /// The grant's index in the role's `grants`.
    pub grant_index: usize,
    pub effect: Effect,
    pub grant: Arc<Grant>,
}

/// The outcome of one request.
#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
    /// None when no grant decided (default deny, missing target).
    pub decided_by: Option<DecidedBy>,
    pub reason: Reason,
}

/// For audit logs and for explaining a denial to an admin:
/// `denied by role `dev` grant #1: deny tools/call upstream="gh-prod" target="delete_*"`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed { "allowed" } else { "denied" };
        match (&self.decided_by, self.reason) {
            (Some(by), reason) => write!(
                f,
                "{verdict}{} by role `{}` grant #{}: {}",
                if reason == Reason::Plumbing {
                    " as protocol plumbing"
                } else {
                    ""
                },
                by.role,
                by.grant_index,
                by.grant
            ),
            (None, reason) => write!(f, "{verdict}: {reason}"),
        }
    }
}

/// The outcome before anything is cloned.
pub(crate) struct Outcome<'g> {
    allowed: bool,
    grant: Option<&'g Arc<Grant>>,
    reason: Reason,
}

impl Outcome<'_> {
    pub(crate) fn allowed(&self) -> bool {
        self.allowed
    }

    pub(crate) fn into_decision(self) -> Decision {
        Decision {
            allowed: self.allowed,
            decided_by: self.grant.map(|g| DecidedBy {
                role: Arc::clone(&g.role),
                grant_index: g.index,
                effect: g.effect,
                grant: Arc::clone(g),
            }),
            reason: self.reason,
        }
    }
}

/// The decision rule (module docs) over deny grants and allow grants.
pub(crate) fn evaluate<'g, D, A>(denies: D, allows: A, request: &Request<'_>) -> Outcome<'g>
where
    D: Iterator<Item = &'g Arc<Grant>> + Clone,
    A: Iterator<Item = &'g Arc<Grant>> + Clone,
{
    let action = request.action;
    let upstream = request.upstream;
    if action == Action::Plumbing {
        return plumbing(denies, allows, upstream);
    }
    let target = match (action.takes_target(), request.target) {
        (true, Some(t)) => Some(t),
        (true, None) => {
            return Outcome {
                allowed: false,
                grant: None,
                reason: Reason::MissingTarget,
            };
        }
        (false, _) => None,
    };
    if let Some(g) = denies.clone().find(|g| g.matches(action, upstream, target)) {
        return Outcome {
            allowed: false,
            grant: Some(g),
            reason: Reason::Denied,
        };
    }
    match allows.clone().find(|g| g.matches(action, upstream, target)) {
        Some(g) => Outcome {
            allowed: true,
            grant: Some(g),
            reason: Reason::Allowed,
        },
        None => Outcome {
            allowed: false,
            grant: None,
            reason: Reason::NoMatchingGrant,
        },
    }
}

/// Plumbing (`initialize`, `ping`, notifications, `server/discover`, responses) carries no
/// data of its own: anyone who may do *something* on the upstream may do it, nobody else.
fn plumbing<'g, D, A>(denies: D, allows: A, upstream: &str) -> Outcome<'g>
where
    D: Iterator<Item = &'g Arc<Grant>> + Clone,
    A: Iterator<Item = &'g Arc<Grant>> + Clone,
{
    let taken_back = denies
        .clone()
        .filter(|g| g.target.is_any() && g.upstream.matches(upstream))
        .fold(ActionSet::empty(), |s, g| s.union(g.actions));
    let usable = |g: &&Arc<Grant>| {
        g.upstream.matches(upstream)
            && !g
                .actions
                .intersection(ActionSet::MCP)
                .difference(taken_back)
                .is_empty()
    };
    if let Some(g) = allows.clone().find(usable) {
        return Outcome {
            allowed: true,
            grant: Some(g),
            reason: Reason::Plumbing,
        };
    }
    // Say which deny took everything back, if one did.
    let any_allow = allows
        .clone()
        .any(|g| g.upstream.matches(upstream) && g.actions.intersects(ActionSet::MCP));
    let deny = denies
        .clone()
        .find(|g| any_allow && g.target.is_any() && g.upstream.matches(upstream));
    Outcome {
        allowed: false,
        grant: deny,
        reason: if deny.is_some() {
            Reason::Denied
        } else {
            Reason::NoMatchingGrant
        },
    }
}

/// The grants of one user's role set, flattened, deny grants first: what the server caches
/// per user. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone, Default)]
pub struct EffectiveGrants {
    inner: Arc<Flattened>,
}

#[derive(Debug, Default)]
struct Flattened {
    grants: Vec<Arc<Grant>>,
    first_allow: usize,
    roles: Vec<Arc<str>>,
}

impl EffectiveGrants {
    /// From the grants of the given roles (in role order).
    pub(crate) fn new(roles: Vec<Arc<str>>, grants: impl IntoIterator<Item = Arc<Grant>>) -> Self {
        let (mut flat, allows): (Vec<_>, Vec<_>) =
            grants.into_iter().partition(|g| g.effect == Effect::Deny);
        let first_allow = flat.len();
        flat.extend(allows);
        EffectiveGrants {
            inner: Arc::new(Flattened {
                grants: flat,
                first_allow,
                roles,
            }),
        }
    }

    /// Decides one request, naming the grant that decided. See the module docs for the rule.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        self.outcome(request).into_decision()
    }

    /// [`decide`](Self::decide) without building the explanation.
    pub fn is_allowed(&self, request: &Request<'_>) -> bool {
        self.outcome(request).allowed()
    }

    /// Whether a list entry is shown: exactly when the call that would use it is allowed.
    pub fn visible(&self, item: Item, upstream: &str, name: &str) -> bool {
        self.is_allowed(&Request::new(item.action(), upstream, Some(name)))
    }

    /// [`visible`](Self::visible) for a whole list: the grants that can decide items of
    /// this kind on this upstream are picked once, then each item only meets their targets.
    pub fn list_filter(&self, item: Item, upstream: &str) -> ListFilter<'_> {
        let action = item.action();
        let relevant = |g: &&Arc<Grant>| g.actions.contains(action) && g.upstream.matches(upstream);
        let (denies, allows) = self.inner.grants.split_at(self.inner.first_allow);
        ListFilter {
            denies: denies.iter().filter(relevant).map(|g| &**g).collect(),
            allows: allows.iter().filter(relevant).map(|g| &**g).collect(),
        }
    }

    /// Whether some item of this action's kind on the upstream is allowed: an allow grant
    /// covers the action there and no whole-upstream deny (target `*`) takes it back. For a
    /// request that names no item although its action needs one: nothing can be acted on
    /// without a name, so the upstream may refuse it itself, but only for a caller who holds
    /// the action at all.
    pub fn holds_any(&self, action: Action, upstream: &str) -> bool {
        let (denies, allows) = self.inner.grants.split_at(self.inner.first_allow);
        let covers = |g: &&Arc<Grant>| g.actions.contains(action) && g.upstream.matches(upstream);
        !denies.iter().filter(covers).any(|g| g.target.is_any())
            && allows.iter().any(|g| covers(&g))
    }

    /// The grants, deny grants first.
    pub fn grants(&self) -> &[Arc<Grant>] {
        &self.inner.grants
    }

    /// The roles these grants come from.
    pub fn roles(&self) -> &[Arc<str>] {
        &self.inner.roles
    }

    fn outcome(&self, request: &Request<'_>) -> Outcome<'_> {
        let (denies, allows) = self.inner.grants.split_at(self.inner.first_allow);
        evaluate(denies.iter(), allows.iter(), request)
    }
}

/// Decides visibility of the items of one list; from [`EffectiveGrants::list_filter`].
#[derive(Debug, Clone)]
pub struct ListFilter<'g> {
    denies: Vec<&'g Grant>,
    allows: Vec<&'g Grant>,
}

impl ListFilter<'_> {
    /// Whether the item named `name` is shown: same answer as [`EffectiveGrants::visible`].
    pub fn visible(&self, name: &str) -> bool {
        !self.denies.iter().any(|g| g.target.matches(name))
            && self.allows.iter().any(|g| g.target.matches(name))
    }
}
