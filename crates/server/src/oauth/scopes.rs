//! The scopes mcpgate issues, their hierarchy, and which one each MCP method needs.
//!
//! `mcp` lets a client use an upstream fully; `mcp:read` only lists and reads (no
//! `tools/call`). `mcp` includes `mcp:read`. `scopes_supported` stays this minimal, without
//! `offline_access` (MCP 2026-07-28): refresh tokens are issued to every client that may use
//! the refresh grant.

/// Full use of an upstream.
pub const MCP: &str = "mcp";
/// Listing and reading only.
pub const MCP_READ: &str = "mcp:read";

pub const SUPPORTED: &[&str] = &[MCP, MCP_READ];

/// Parses a space-separated scope string, keeping known scopes in a stable order. Unknown
/// scopes are dropped (RFC 6749 §3.3 lets the server issue less than asked); `None` when
/// nothing known remains of a non-empty request.
pub fn grantable(requested: Option<&str>) -> Option<String> {
    let requested = requested.unwrap_or("").trim();
    if requested.is_empty() {
        return Some(MCP.to_owned());
    }
    let asked: Vec<&str> = requested.split_ascii_whitespace().collect();
    let kept: Vec<&str> = SUPPORTED
        .iter()
        .copied()
        .filter(|s| asked.contains(s))
        .collect();
    (!kept.is_empty()).then(|| kept.join(" "))
}

/// Whether the scopes held satisfy `needed` (with the hierarchy: `mcp` ⊇ `mcp:read`).
pub fn satisfies(held: &str, needed: &str) -> bool {
    held.split_ascii_whitespace()
        .any(|s| s == needed || (s == MCP && needed == MCP_READ))
}

/// Whether any of the scopes held satisfies `needed`.
pub fn satisfies_any(held: &[String], needed: &str) -> bool {
    held.iter().any(|s| satisfies(s, needed))
}

/// The scope a method needs (from the MCP method table): reading needs `mcp:read`, anything
/// that acts needs `mcp`.
pub fn for_need(need: mcpgate_rbac::ScopeNeed) -> &'static str {
    match need {
        mcpgate_rbac::ScopeNeed::Read => MCP_READ,
        mcpgate_rbac::ScopeNeed::Use => MCP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_known_scopes_and_defaults_to_mcp() {
        assert_eq!(grantable(None).as_deref(), Some("mcp"));
        assert_eq!(grantable(Some("  ")).as_deref(), Some("mcp"));
        assert_eq!(
            grantable(Some("mcp:read offline_access")).as_deref(),
            Some("mcp:read")
        );
        assert_eq!(
            grantable(Some("mcp:read mcp")).as_deref(),
            Some("mcp mcp:read")
        );
        assert_eq!(grantable(Some("admin")), None);
    }

    #[test]
    fn hierarchy() {
        assert!(satisfies("mcp", MCP_READ));
        assert!(satisfies("mcp", MCP));
        assert!(satisfies("mcp:read", MCP_READ));
        assert!(!satisfies("mcp:read", MCP));
        assert!(!satisfies("", MCP_READ));
        assert!(satisfies_any(&["x".into(), "mcp".into()], MCP));
        assert!(!satisfies_any(&[], MCP_READ));
    }
}
