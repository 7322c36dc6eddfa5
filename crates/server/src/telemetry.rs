//! Logs (tracing) and metrics (Prometheus text from an axum route).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global tracing subscriber. `RUST_LOG`, when set, wins over `log.level`.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is not an error worth failing for.
    let _ = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus recorder (metrics has one global recorder; every app in a test
/// process shares it).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; the handle still renders ours.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// Every metric family mcpgate exports, with its `# HELP` text. A family recorded anywhere in
/// the workspace must be here: a test scrapes `/metrics` and fails on a family without help.
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "mcpgate_build_info",
        Kind::Gauge,
        "Always 1; the labels name the running build (version, commit, rustc).",
    ),
    (
        "mcpgate_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by route template, method and status.",
    ),
    (
        "mcpgate_http_request_duration_seconds",
        Kind::Histogram,
        "Time to the response head, by route template, method and status.",
    ),
    (
        "mcpgate_http_connections_refused_total",
        Kind::Counter,
        "Connections closed on arrival because their address already held the per-address maximum.",
    ),
    (
        "mcpgate_upstream_requests_total",
        Kind::Counter,
        "Requests sent to an upstream MCP server, by upstream and outcome (status class, timeout, unreachable).",
    ),
    (
        "mcpgate_upstream_response_seconds",
        Kind::Histogram,
        "Time until an upstream answered with its response head, by upstream.",
    ),
    (
        "mcpgate_upstream_streams_ended_total",
        Kind::Counter,
        "Upstream event streams that ended early (idle or broken), by upstream and reason.",
    ),
    (
        "mcpgate_rbac_decisions_total",
        Kind::Counter,
        "Access decisions on MCP requests, by upstream and decision.",
    ),
    (
        "mcpgate_policy_reloads_total",
        Kind::Counter,
        "Times this replica reloaded the access policy after a change.",
    ),
    (
        "mcpgate_audit_written_total",
        Kind::Counter,
        "Audit events written to the database.",
    ),
    (
        "mcpgate_audit_batches_total",
        Kind::Counter,
        "Audit batches written to the database.",
    ),
    (
        "mcpgate_audit_dropped_total",
        Kind::Counter,
        "Audit events dropped because the audit queue was full.",
    ),
    (
        "mcpgate_audit_failed_total",
        Kind::Counter,
        "Audit events lost because the database refused the write.",
    ),
    (
        "mcpgate_crypto_hash_duration_seconds",
        Kind::Histogram,
        "Time one password hash or verification took on the hashing pool.",
    ),
    (
        "mcpgate_crypto_hash_queue_wait_seconds",
        Kind::Histogram,
        "Time a password hash waited for a hashing permit.",
    ),
    (
        "mcpgate_crypto_hash_permits",
        Kind::Gauge,
        "Password hashes that may run at once.",
    ),
    (
        "mcpgate_crypto_hashes_in_flight",
        Kind::Gauge,
        "Password hashes running now.",
    ),
    (
        "mcpgate_crypto_hash_rejected_total",
        Kind::Counter,
        "Password hashes refused with 503 because the queue wait ran out.",
    ),
    (
        "mcpgate_db_pool_size",
        Kind::Gauge,
        "Open database connections.",
    ),
    (
        "mcpgate_db_pool_idle",
        Kind::Gauge,
        "Idle database connections.",
    ),
    (
        "mcpgate_db_pool_max_size",
        Kind::Gauge,
        "Largest number of database connections the pool opens.",
    ),
    (
        "mcpgate_db_pool_waiting",
        Kind::Gauge,
        "Requests waiting for a database connection.",
    ),
    (
        "mcpgate_db_pool_wait_seconds",
        Kind::Histogram,
        "Time a request waited for a database connection.",
    ),
    (
        "mcpgate_db_checkout_held_seconds",
        Kind::Histogram,
        "Time a database connection was held by one unit of work.",
    ),
    (
        "mcpgate_db_sqlite_locked_retries_total",
        Kind::Counter,
        "SQLite writes retried because the database was locked.",
    ),
    (
        "mcpgate_oauth_clients_registered_total",
        Kind::Counter,
        "OAuth clients registered dynamically (RFC 7591).",
    ),
    (
        "mcpgate_oauth_clients_expired_total",
        Kind::Counter,
        "Dynamically registered clients removed because they were never used.",
    ),
    (
        "mcpgate_oauth_registrations_refused_total",
        Kind::Counter,
        "Dynamic client registrations refused, by reason.",
    ),
    (
        "mcpgate_keys_resealed_total",
        Kind::Counter,
        "Stored secrets moved to the active key by the re-seal job.",
    ),
    (
        "mcpgate_pat_last_used_written_total",
        Kind::Counter,
        "Personal access tokens whose last-used time was written (batched off the request path).",
    ),
    (
        "mcpgate_signins_total",
        Kind::Counter,
        "Sign-in attempts (password, API, identity provider), by outcome.",
    ),
    (
        "mcpgate_signin_lockouts_total",
        Kind::Counter,
        "Sign-in attempts refused by a lock-out budget, by scope.",
    ),
];

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

fn describe() {
    for &(name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
    metrics::gauge!(
        "mcpgate_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => option_env!("BUILD_GIT_COMMIT").unwrap_or("unknown"),
        "rustc" => env!("BUILD_RUSTC_VERSION"),
    )
    .set(1.0);
}

/// Records one request to an upstream: its outcome and, when it answered, how long the
/// response head took. Labels are the configured upstream name and an outcome from a closed
/// set, never anything a client or user sent.
pub fn record_upstream(
    upstream: &str,
    outcome: &'static str,
    elapsed: Option<std::time::Duration>,
) {
    metrics::counter!(
        "mcpgate_upstream_requests_total",
        "upstream" => upstream.to_owned(),
        "outcome" => outcome,
    )
    .increment(1);
    if let Some(elapsed) = elapsed {
        metrics::histogram!("mcpgate_upstream_response_seconds", "upstream" => upstream.to_owned())
            .record(elapsed.as_secs_f64());
    }
}

/// Counts every request and records its latency by route template, method and status.
pub async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("mcpgate_http_requests_total", &labels).increment(1);
    metrics::histogram!("mcpgate_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `metrics::counter!/gauge!/histogram!("mcpgate_…")` in the workspace's sources
    /// names a family of [`FAMILIES`], with the right kind.
    #[test]
    fn every_recorded_family_is_described() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut missing = Vec::new();
        let mut stack = vec![crates];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    for (macro_name, kind) in [
                        ("counter!(", Kind::Counter),
                        ("gauge!(", Kind::Gauge),
                        ("histogram!(", Kind::Histogram),
                    ] {
                        for (at, _) in text.match_indices(macro_name) {
                            let rest = text[at + macro_name.len()..].trim_start();
                            let Some(rest) = rest.strip_prefix('"') else {
                                continue;
                            };
                            let name = rest.split('"').next().unwrap_or_default();
                            let is_name = name.starts_with("mcpgate_")
                                && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                            if !is_name {
                                continue;
                            }
                            if !FAMILIES.iter().any(|&(n, k, _)| n == name && k == kind) {
                                missing.push(format!("{} {name} ({kind:?})", path.display()));
                            }
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "families without # HELP: {missing:#?}");
    }
}
