//! `mcpgate doctor`: checks what a deployment needs before it can serve — the configuration,
//! the database and its migrations, the key ring, each identity provider's endpoints, each
//! upstream's reachability and credential kind, and the clock — and prints one table with a
//! fix for every failure. Exits non-zero when anything failed (warnings do not fail).
//!
//! It changes nothing: migrations are counted, not applied; nothing is written.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use mcpgate_core::AuthorizationRequest;
use mcpgate_crypto::Place;

use crate::config::{Config, ConfigError};

/// Each network check waits at most this long.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A clock further off than this from the providers' and upstreams' fails the check: token
/// lifetimes (`exp`, `iat`) are checked to within a minute.
const MAX_SKEW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to do about a warning or failure.
    pub fix: String,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: String::new(),
        }
    }
    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: fix.into(),
        }
    }
    fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Warn,
            detail: detail.into(),
            fix: fix.into(),
        }
    }
}

/// The configuration could not be loaded: one failed row per problem.
pub fn config_failures(errors: &[ConfigError]) -> Vec<Check> {
    errors
        .iter()
        .map(|e| {
            Check::fail(
                "config",
                format!("{}: {}", e.path, e.message),
                format!(
                    "correct `{}` in the configuration file or its MCPGATE_ variable",
                    e.path
                ),
            )
        })
        .collect()
}

/// Runs every check on a loaded configuration.
pub async fn run(config: &Config) -> Vec<Check> {
    crate::tls::ensure_provider();
    let mut checks = vec![Check::ok(
        "config",
        format!(
            "valid; {} provider(s), {} upstream(s), public URL {}",
            config.providers.len(),
            config.upstreams.len(),
            config.issuer()
        ),
    )];
    checks.extend(database(config).await);
    checks.push(key_ring(config));
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            checks.push(Check::fail(
                "http client",
                e.to_string(),
                "the TLS set-up failed; report this",
            ));
            return checks;
        }
    };
    let mut dates = Vec::new();
    checks.extend(providers(config, &client, &mut dates).await);
    checks.extend(upstreams(config, &client, &mut dates).await);
    checks.push(clock(&dates));
    checks
}

async fn database(config: &Config) -> Vec<Check> {
    let fix_connect = "check database.url, that the database is running and reachable from \
                       here, and the credentials";
    let store = match mcpgate_storage::Store::connect(&config.database.store_options()).await {
        Ok(store) => store,
        Err(e) => return vec![Check::fail("database", e.to_string(), fix_connect)],
    };
    let backend = if config.database.url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    match tokio::time::timeout(TIMEOUT, store.ping()).await {
        Err(_) => return vec![Check::fail("database", "no answer within 5 s", fix_connect)],
        Ok(Err(e)) => return vec![Check::fail("database", e.to_string(), fix_connect)],
        Ok(Ok(())) => {}
    }
    let mut checks = vec![Check::ok("database", format!("{backend} answers"))];
    checks.push(match store.pending_migrations().await {
        Ok(pending) if pending.is_empty() => Check::ok("migrations", "up to date"),
        Ok(pending) if config.database.migrate_on_start => Check::warn(
            "migrations",
            format!("{} pending: {}", pending.len(), pending.join(", ")),
            "they are applied when `mcpgate serve` starts (database.migrate_on_start)",
        ),
        Ok(pending) => Check::fail(
            "migrations",
            format!("{} pending: {}", pending.len(), pending.join(", ")),
            "run `mcpgate migrate` (database.migrate_on_start is off)",
        ),
        Err(e) => Check::fail(
            "migrations",
            e.to_string(),
            "the schema is not one this version knows: restore it or upgrade mcpgate",
        ),
    });
    checks
}

fn key_ring(config: &Config) -> Check {
    let fix = "run `mcpgate keys generate` and put the ring under [encryption]";
    match crate::app::secret_box(config) {
        Err(e) => Check::fail("key ring", format!("{e:#}"), fix),
        Ok(ring) => {
            let place = Place::new("doctor", "probe", "1");
            let works = ring
                .seal(b"probe", &place)
                .and_then(|sealed| ring.open(&sealed, &place))
                .is_ok_and(|opened| opened.as_slice() == b"probe");
            if works {
                Check::ok(
                    "key ring",
                    format!(
                        "{} key(s), active {:?}",
                        config.encryption.keys.len(),
                        ring.active_key_id()
                    ),
                )
            } else {
                Check::fail(
                    "key ring",
                    "a value sealed with the active key does not open",
                    fix,
                )
            }
        }
    }
}

async fn providers(
    config: &Config,
    client: &reqwest::Client,
    dates: &mut Vec<SystemTime>,
) -> Vec<Check> {
    let registry = match mcpgate_providers::Registry::build(&config.providers) {
        Ok(registry) => registry,
        Err(errors) => {
            return errors
                .iter()
                .map(|e| {
                    Check::fail(
                        "provider",
                        format!("{}: {}", e.path, e.message),
                        format!("correct `{}`", e.path),
                    )
                })
                .collect();
        }
    };
    let mut checks = Vec::new();
    for provider in registry.iter() {
        let name = format!("provider {}", provider.id());
        let request = AuthorizationRequest {
            redirect_uri: format!("{}/callback/{}", config.issuer(), provider.id()),
            state: "doctor".into(),
            nonce: "doctor".into(),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            login_hint: None,
        };
        let url = match tokio::time::timeout(TIMEOUT, provider.authorization_url(&request)).await {
            Err(_) => {
                checks.push(Check::fail(
                    name,
                    "discovery took longer than 5 s",
                    "check the provider's issuer URL and that it is reachable from here",
                ));
                continue;
            }
            Ok(Err(e)) => {
                checks.push(Check::fail(
                    name,
                    e.to_string(),
                    "check the provider's issuer/options and that it is reachable from here",
                ));
                continue;
            }
            Ok(Ok(url)) => url,
        };
        let mut endpoint = url;
        endpoint.set_query(None);
        let endpoint = endpoint.to_string();
        checks.push(match client.get(&endpoint).send().await {
            Ok(response) => {
                dates.extend(date_of(&response));
                if response.status().is_server_error() {
                    Check::fail(
                        name,
                        format!("{endpoint} answers {}", response.status()),
                        "the provider is failing; check its status",
                    )
                } else {
                    Check::ok(
                        name,
                        format!("{} endpoints found; {endpoint} answers", provider.kind()),
                    )
                }
            }
            Err(e) => Check::fail(
                name,
                format!("{endpoint}: {}", without_url(&e)),
                "check DNS, proxies and firewalls between here and the provider",
            ),
        });
    }
    checks
}

async fn upstreams(
    config: &Config,
    client: &reqwest::Client,
    dates: &mut Vec<SystemTime>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for upstream in &config.upstreams {
        let name = format!("upstream {}", upstream.name);
        let kinds: Vec<&str> = upstream.credentials.entries().map(|c| c.kind()).collect();
        let kinds = if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(" + ")
        };
        // Any HTTP answer (401 and 405 included: no credentials are sent) means reachable.
        checks.push(match client.get(&upstream.url).send().await {
            Ok(response) => {
                dates.extend(date_of(&response));
                let status = response.status();
                if status.is_server_error() {
                    Check::warn(
                        name,
                        format!("{} answers {status}; credentials: {kinds}", upstream.url),
                        "the upstream reports an error; check its logs",
                    )
                } else {
                    Check::ok(
                        name,
                        format!(
                            "{} answers {}; credentials: {kinds}",
                            upstream.url,
                            status.as_u16()
                        ),
                    )
                }
            }
            Err(e) => Check::fail(
                name,
                format!(
                    "{}: {}; credentials: {kinds}",
                    upstream.url,
                    without_url(&e)
                ),
                "start the upstream, or correct upstreams[].url",
            ),
        });
    }
    checks
}

fn clock(dates: &[SystemTime]) -> Check {
    let now = SystemTime::now();
    let worst = dates
        .iter()
        .map(|d| match now.duration_since(*d) {
            Ok(behind) => behind,
            Err(ahead) => ahead.duration(),
        })
        .max();
    match worst {
        None => Check::warn(
            "clock",
            "not measured (no provider or upstream sent a Date header)",
            "keep the clock synchronised (NTP): token lifetimes are checked to the minute",
        ),
        // `Date` has whole seconds: up to 1 s is no skew at all.
        Some(skew) if skew <= MAX_SKEW => Check::ok(
            "clock",
            format!(
                "within {} s of {} server(s)",
                skew.as_secs().max(1),
                dates.len()
            ),
        ),
        Some(skew) => Check::fail(
            "clock",
            format!("{} s off a provider's or upstream's clock", skew.as_secs()),
            "synchronise the clock (NTP): tokens would be refused as expired or not yet valid",
        ),
    }
}

fn date_of(response: &reqwest::Response) -> Option<SystemTime> {
    let value = response
        .headers()
        .get(reqwest::header::DATE)?
        .to_str()
        .ok()?;
    httpdate::parse_http_date(value).ok()
}

/// reqwest errors name the URL (the row already does) and hide the cause in their sources.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(at) = text.find(" for url (") {
        text.truncate(at);
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// The report as a table: CHECK, STATUS, DETAIL, FIX.
pub fn render(checks: &[Check]) -> String {
    let width =
        |f: fn(&Check) -> usize, title: usize| checks.iter().map(f).max().unwrap_or(0).max(title);
    let name_w = width(|c| c.name.chars().count(), 5);
    let mut out = String::new();
    let _ = writeln!(out, "{:<name_w$}  {:<6}  DETAIL", "CHECK", "STATUS");
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let _ = writeln!(out, "{:<name_w$}  {status:<6}  {}", c.name, c.detail);
        if !c.fix.is_empty() {
            let _ = writeln!(out, "{:<name_w$}  {:<6}  fix: {}", "", "", c.fix);
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    let _ = writeln!(
        out,
        "\n{} check(s): {failed} failed, {warned} warning(s)",
        checks.len()
    );
    out
}

/// Whether the report fails the command.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_beyond_a_minute_fails_and_none_measured_warns() {
        let now = SystemTime::now();
        assert_eq!(clock(&[now]).status, Status::Ok);
        assert_eq!(clock(&[now - Duration::from_secs(30)]).status, Status::Ok);
        assert_eq!(
            clock(&[now + Duration::from_secs(120)]).status,
            Status::Fail
        );
        assert_eq!(
            clock(&[now - Duration::from_secs(3600)]).status,
            Status::Fail
        );
        assert_eq!(clock(&[]).status, Status::Warn);
    }

    #[test]
    fn the_table_shows_a_fix_under_each_failure() {
        let text = render(&[
            Check::ok("database", "SQLite answers"),
            Check::fail("upstream x", "refused", "start it"),
        ]);
        assert!(text.contains("upstream x  FAIL    refused\n"), "{text}");
        assert!(text.contains("fix: start it"), "{text}");
        assert!(
            text.contains("2 check(s): 1 failed, 0 warning(s)"),
            "{text}"
        );
        assert!(failed(&[Check::fail("a", "b", "c")]));
        assert!(!failed(&[Check::warn("a", "b", "c")]));
    }
}
