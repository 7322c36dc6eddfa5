//! The crate's one error enum: everything that can be wrong with a policy, found at load time.

/// A problem in a policy. [`Policy::compile`](crate::Policy::compile) reports every problem
/// at once, each wrapped in [`PolicyError::At`] with the path of the offending field
/// (`roles[2].grants[0].upstream`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A problem located at a field of the policy.
    #[error("{path}: {source}")]
    At {
        path: String,
        #[source]
        source: Box<PolicyError>,
    },
    #[error("empty pattern (write \"*\" to match anything)")]
    EmptyPattern,
    #[error("pattern `{pattern}` has leading or trailing whitespace")]
    PatternWhitespace { pattern: String },
    #[error("pattern `{pattern}` contains a control character")]
    PatternControl { pattern: String },
    #[error("pattern `{pattern}` ends with a lone `\\` (escape a backslash as `\\\\`)")]
    TrailingEscape { pattern: String },
    #[error("pattern `{pattern}` has an unknown escape `\\{found}` (only `\\*`, `\\?` and `\\\\`)")]
    UnknownEscape { pattern: String, found: char },
    #[error(
        "unknown action `{action}`; expected one of: {}",
        crate::action::grammar()
    )]
    UnknownAction { action: String },
    #[error(
        "action `{action}` cannot be granted: protocol plumbing is allowed to anyone holding \
         an MCP grant on the upstream"
    )]
    NotGrantable { action: String },
    #[error("action `{action}` takes no target, so target must be \"*\" (found `{target}`)")]
    TargetWithoutTargetAction { action: String, target: String },
    #[error("role name `{name}` is empty, padded with whitespace or has control characters")]
    BadRoleName { name: String },
    #[error("`{name}` is a built-in role and cannot be redefined")]
    ReservedRole { name: String },
    #[error("duplicate role name `{name}` (first defined at {first})")]
    DuplicateRole { name: String, first: String },
    #[error("unknown role `{role}`")]
    UnknownRole { role: String },
    #[error("the default role cannot be `admin`: every signed-in user would be an administrator")]
    DefaultRoleAdmin,
    #[error("bad claim `{claim}`: {reason}")]
    BadClaim { claim: String, reason: &'static str },
    #[error("provider id is empty (leave `provider` out to match every provider)")]
    EmptyProvider,
}

impl PolicyError {
    /// Locates this error at `path`.
    pub fn at(self, path: impl Into<String>) -> Self {
        PolicyError::At {
            path: path.into(),
            source: Box::new(self),
        }
    }

    /// The path of the offending field, when the error was located.
    pub fn path(&self) -> Option<&str> {
        match self {
            PolicyError::At { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The error without its location.
    pub fn kind(&self) -> &PolicyError {
        match self {
            PolicyError::At { source, .. } => source.kind(),
            other => other,
        }
    }
}
