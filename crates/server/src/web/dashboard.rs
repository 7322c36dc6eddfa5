//! `/admin/dashboard`: requests, denials, upstream latency and errors, sign-ins, drawn from
//! the same counters `/metrics` exports. A background task samples them every
//! [`INTERVAL`] into a ring of [`KEEP`] points (this replica's, in memory); the page plots the
//! differences between samples as small server-rendered SVG lines.

use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use mcpgate_pages::{DashboardView, Plot};

use super::signed_in::{admin, chrome, respond};
use crate::app::AppState;

pub const INTERVAL: Duration = Duration::from_secs(10);
/// Ten minutes of samples.
const KEEP: usize = 60;

/// Counter totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    requests: f64,
    denials: f64,
    upstream_requests: f64,
    upstream_errors: f64,
    upstream_seconds: f64,
    signins: f64,
    signin_failures: f64,
}

static SAMPLES: LazyLock<Mutex<VecDeque<Totals>>> =
    LazyLock::new(|| Mutex::new(VecDeque::with_capacity(KEEP + 1)));

/// Sums every series of `name` whose labels contain `label` (all when empty) in Prometheus
/// text.
fn sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest),
                None => (series, ""),
            };
            (metric == name && labels.contains(label)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

fn totals(text: &str) -> Totals {
    Totals {
        requests: sum(text, "mcpgate_http_requests_total", ""),
        denials: sum(text, "mcpgate_rbac_decisions_total", "decision=\"deny\""),
        upstream_requests: sum(text, "mcpgate_upstream_response_seconds_count", ""),
        upstream_errors: ["5xx", "timeout", "unreachable"]
            .iter()
            .map(|o| {
                sum(
                    text,
                    "mcpgate_upstream_requests_total",
                    &format!("outcome=\"{o}\""),
                )
            })
            .sum(),
        upstream_seconds: sum(text, "mcpgate_upstream_response_seconds_sum", ""),
        signins: sum(text, "mcpgate_signins_total", "outcome=\"ok\""),
        signin_failures: sum(text, "mcpgate_signins_total", "outcome=\"failed\""),
    }
}

fn now() -> Totals {
    totals(&crate::telemetry::prometheus().render())
}

/// Takes a sample now (the sampler, every [`INTERVAL`]).
pub fn sample() {
    let t = now();
    if let Ok(mut samples) = SAMPLES.lock() {
        samples.push_back(t);
        while samples.len() > KEEP {
            samples.pop_front();
        }
    }
}

/// Samples every [`INTERVAL`] until aborted.
pub fn spawn_sampler() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sample();
        }
    })
}

/// Per-interval series from consecutive samples (a counter that went down, a restart of the
/// recorder, counts as zero).
fn series(samples: &[Totals], f: impl Fn(&Totals, &Totals) -> f64) -> Vec<f64> {
    samples
        .windows(2)
        .map(|w| f(&w[0], &w[1]).max(0.0))
        .collect()
}

fn plots(samples: &[Totals]) -> Vec<Plot> {
    let per_sec = INTERVAL.as_secs_f64();
    let requests = series(samples, |a, b| (b.requests - a.requests) / per_sec);
    let denials = series(samples, |a, b| b.denials - a.denials);
    let latency = series(samples, |a, b| {
        let n = b.upstream_requests - a.upstream_requests;
        if n > 0.0 {
            1000.0 * (b.upstream_seconds - a.upstream_seconds) / n
        } else {
            0.0
        }
    });
    let errors = series(samples, |a, b| b.upstream_errors - a.upstream_errors);
    let signins = series(samples, |a, b| b.signins - a.signins);
    let failures = series(samples, |a, b| b.signin_failures - a.signin_failures);
    let every = format!("per {} s", INTERVAL.as_secs());
    vec![
        Plot::new("Requests", "per second", &requests, 1),
        Plot::new("Denied MCP calls", &every, &denials, 0),
        Plot::new("Upstream latency", "ms (mean)", &latency, 0),
        Plot::new("Upstream errors", &every, &errors, 0),
        Plot::new("Sign-ins", &every, &signins, 0),
        Plot::new("Failed sign-ins", &every, &failures, 0),
    ]
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let _ = query;
    let person = match admin(&state, &jar, "/admin/dashboard").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (jar, chrome, _) = match chrome(&state, jar, &person, "/admin/dashboard", "admin", None) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // The stored samples and, as the last point, now.
    let mut samples: Vec<Totals> = SAMPLES
        .lock()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    samples.push(now());
    let view = DashboardView {
        chrome,
        interval_secs: INTERVAL.as_secs(),
        window: format!("{} minutes", KEEP as u64 * INTERVAL.as_secs() / 60),
        plots: plots(&samples),
    };
    respond(jar, view.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE mcpgate_http_requests_total counter
mcpgate_http_requests_total{route=\"/healthz\",status=\"200\"} 3
mcpgate_http_requests_total{route=\"/mcp/{name}\",status=\"403\"} 2
mcpgate_rbac_decisions_total{decision=\"deny\"} 4
mcpgate_rbac_decisions_total{decision=\"allow\"} 9
mcpgate_upstream_response_seconds_sum{upstream=\"demo\"} 0.5
mcpgate_upstream_response_seconds_count{upstream=\"demo\"} 5
mcpgate_upstream_requests_total{upstream=\"demo\",outcome=\"2xx\"} 5
mcpgate_upstream_requests_total{upstream=\"demo\",outcome=\"timeout\"} 2
mcpgate_upstream_requests_total{upstream=\"demo\",outcome=\"5xx\"} 1
mcpgate_signins_total{outcome=\"failed\"} 1
";

    #[test]
    fn counters_are_read_from_the_exposition() {
        let t = totals(TEXT);
        assert_eq!(t.requests, 5.0);
        assert_eq!(t.denials, 4.0);
        assert_eq!(t.upstream_requests, 5.0);
        assert_eq!(t.upstream_errors, 3.0);
        assert_eq!(t.signin_failures, 1.0);
        assert_eq!(t.signins, 0.0);
    }

    #[test]
    fn plots_show_differences_between_samples() {
        let a = totals(TEXT);
        let mut b = a;
        b.requests += 20.0;
        b.upstream_requests += 2.0;
        b.upstream_seconds += 0.1;
        let plots = plots(&[a, b]);
        assert_eq!(plots[0].latest, "2.0", "20 requests in 10 s");
        assert_eq!(plots[2].latest, "50", "0.1 s over 2 requests");
    }
}
