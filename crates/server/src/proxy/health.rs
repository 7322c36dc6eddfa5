//! What this replica last saw of each upstream: whether its last request got an answer, the
//! last failure and when, and request counts. Fed by every request the proxy sends (step 6),
//! read by the admin API and pages. Keyed by configured upstream name (bounded by the
//! configuration); one short lock per request.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use mcpgate_storage::now_ms;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// Whether the last request got an HTTP answer; `None` before the first request.
    pub reachable: Option<bool>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub requests: u64,
    pub failures: u64,
}

static HEALTH: LazyLock<Mutex<HashMap<String, Health>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Longest failure text kept.
const MAX_ERROR: usize = 300;

/// Records one request's outcome (its metrics are `telemetry::record_upstream`'s).
pub fn record(upstream: &str, error: Option<&str>) {
    let Ok(mut map) = HEALTH.lock() else {
        return;
    };
    let health = map.entry(upstream.to_owned()).or_default();
    health.requests += 1;
    let now = now_ms();
    match error {
        None => {
            health.reachable = Some(true);
            health.last_seen_at = Some(now);
        }
        Some(e) => {
            let mut end = e.len().min(MAX_ERROR);
            while !e.is_char_boundary(end) {
                end -= 1;
            }
            health.reachable = Some(false);
            health.failures += 1;
            health.last_error = Some(e[..end].to_owned());
            health.last_error_at = Some(now);
        }
    }
}

/// What this replica saw of `upstream` (all `None` before its first request).
pub fn of(upstream: &str) -> Health {
    HEALTH
        .lock()
        .ok()
        .and_then(|map| map.get(upstream).cloned())
        .unwrap_or_default()
}
