#![doc = include_str!("../README.md")]

mod action;
mod decision;
mod error;
mod mapping;
mod method;
mod pattern;
mod policy;
mod spec;

pub use action::{Action, ActionSet};
pub use decision::{
    DecidedBy, Decision, EffectiveGrants, Grant, Item, ListFilter, Reason, Request,
};
pub use error::PolicyError;
pub use method::{ListKind, McpMethod, STATELESS_REVISION, ScopeNeed, TargetField, UnknownItem};
pub use pattern::Pattern;
pub use policy::{ADMIN_ROLE, Identity, Policy, RoleEntry, RoleSet, RoleSource, Subject};
pub use spec::{Effect, GrantSpec, MappingRule, PolicySpec, RoleSpec};
