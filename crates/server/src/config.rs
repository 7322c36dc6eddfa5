//! Configuration: built-in defaults → a TOML file → `MCPGATE_` environment variables (`__` for
//! nesting). Unknown keys are errors; [`Config::validate`] reports every problem at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use mcpgate_core::{ProviderSettings, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

mod auth;
mod oauth;
mod policy;
pub use auth::{AuthConfig, BootstrapConfig, RateLimitConfig};
pub use oauth::{ClientMetadataConfig, ConfiguredClient, OAuthConfig, RegistrationConfig};
pub use policy::PolicyConfig;

/// The environment variable prefix; `MCPGATE_DATABASE__URL` sets `database.url`.
pub const ENV_PREFIX: &str = "MCPGATE_";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Socket address the gateway listens on.
    pub listen: SocketAddr,
    /// The issuer and base of every URL mcpgate hands out. https, or http on loopback only.
    pub public_url: String,
    pub database: DatabaseConfig,
    pub encryption: EncryptionConfig,
    pub log: LogConfig,
    pub http: HttpConfig,
    /// Sign-in, sessions, password hashing and abuse limits.
    pub auth: AuthConfig,
    /// The first administrator account.
    pub bootstrap: BootstrapConfig,
    /// The OAuth 2.1 authorization server MCP clients use.
    pub oauth: OAuthConfig,
    /// Identity providers (`[[providers]]`), each compiled in by its Cargo feature.
    pub providers: Vec<ProviderSettings>,
    /// Settings shared by every proxied upstream.
    pub proxy: ProxyConfig,
    /// Upstream MCP servers (`[[upstreams]]`), each served at `/mcp/{name}`.
    pub upstreams: Vec<UpstreamConfig>,
    /// RBAC: roles as code, the default role, decision caching and the audit queue.
    pub policy: PolicyConfig,
    /// Ed25519 keys that sign identity assertions for upstreams
    /// (`credentials = { kind = "identity_assertion" }`); their public halves are served at
    /// `/.well-known/jwks.json`. Keep a retired key listed for a minute after rotating.
    pub assertion_keys: Option<mcpgate_credentials::AssertionKeysConfig>,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
}

/// `/metrics` (Prometheus) is open to whoever reaches it unless one of these is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Scrapers must send `Authorization: Bearer <this>`; others get 401.
    pub bearer_token: Option<SecretString>,
    /// Serve `/metrics` on this address only (an admin port a firewall keeps inside), not on
    /// `listen`.
    pub listen: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            database: DatabaseConfig::default(),
            encryption: EncryptionConfig::default(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            bootstrap: BootstrapConfig::default(),
            oauth: OAuthConfig::default(),
            providers: Vec::new(),
            proxy: ProxyConfig::default(),
            upstreams: Vec::new(),
            policy: PolicyConfig::default(),
            assertion_keys: None,
            metrics: MetricsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (embedded default) or `postgres://user@host:port/db`.
    pub url: String,
    /// Upper bound of pooled connections.
    pub max_connections: usize,
    /// How long a request waits for a free connection before it gets 503 + Retry-After.
    pub wait_timeout_ms: u64,
    /// How long opening a connection may take.
    pub connect_timeout_ms: u64,
    /// PostgreSQL `statement_timeout` on every connection.
    pub statement_timeout_ms: u64,
    /// PostgreSQL `idle_in_transaction_session_timeout` on every connection.
    pub idle_in_transaction_timeout_ms: u64,
    /// Apply pending migrations when `serve` starts (`mcpgate migrate` does it explicitly).
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://mcpgate.db".into(),
            max_connections: 16,
            wait_timeout_ms: 3_000,
            connect_timeout_ms: 3_000,
            statement_timeout_ms: 10_000,
            idle_in_transaction_timeout_ms: 5_000,
            migrate_on_start: true,
        }
    }
}

impl DatabaseConfig {
    pub fn store_options(&self) -> mcpgate_storage::StoreOptions {
        mcpgate_storage::StoreOptions {
            url: self.url.clone(),
            max_connections: self.max_connections,
            wait_timeout: Duration::from_millis(self.wait_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            idle_in_transaction_timeout: Duration::from_millis(self.idle_in_transaction_timeout_ms),
        }
    }
}

/// The sealing key ring: every key can open, `active_key` seals.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    /// Id of the key that seals new values.
    pub active_key: Option<String>,
    /// Key id → base64 of 32 random bytes. Generate with `mcpgate keys generate`.
    pub keys: BTreeMap<String, SecretString>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per event, for log pipelines.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter (`info`, `mcpgate_server=debug,info`, …). `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Longest time to produce a response's head (streams may run longer).
    pub request_timeout_secs: u64,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish.
    pub shutdown_grace_secs: u64,
    /// A connection must deliver a request's complete headers within this long, or it is
    /// closed (slowloris: clients that trickle header bytes to hold connections open).
    pub header_read_timeout_secs: u64,
    /// Open connections one client address may hold; more are closed as they arrive. 0: no
    /// cap. Behind a reverse proxy every connection comes from the proxy's address: raise this
    /// to what the proxy may open, or set 0 and cap per client at the proxy.
    pub max_connections_per_address: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout_secs: 30,
            body_limit_bytes: 4 * 1024 * 1024,
            shutdown_grace_secs: 30,
            header_read_timeout_secs: 10,
            max_connections_per_address: 256,
        }
    }
}

/// The MCP proxy: one pooled HTTP client shared by all upstreams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Browser origins allowed to call `/mcp/*` besides the origin of `public_url`, which is
    /// always allowed. A request with any other `Origin` gets 403 (DNS-rebinding defence).
    pub allowed_origins: Vec<String>,
    /// `Host` values (`host` or `host:port`) `/mcp/*` answers for besides the authority of
    /// `public_url` (and, when that is a loopback address, the other loopback names on its
    /// port). Any other `Host` gets 421: a DNS-rebinding page sends no `Origin` on some
    /// requests, but it cannot choose the `Host`. Add the names a reverse proxy in front of
    /// mcpgate forwards, if it does not pass the public name through.
    pub allowed_hosts: Vec<String>,
    /// Opening a TCP connection to an upstream may take this long (then 502).
    pub connect_timeout_ms: u64,
    /// Idle pooled upstream connections are closed after this long.
    pub pool_idle_timeout_secs: u64,
    /// Idle pooled connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
    /// Longest silence inside a streamed upstream response (SSE) before mcpgate ends it; an
    /// upstream may set its own. A request still waiting for its answer gets a JSON-RPC error
    /// event (`-32002`) and the end of the stream; so does one whose upstream connection
    /// breaks (`-32001`). MCP servers send SSE keep-alives well within this on long-lived
    /// streams.
    pub idle_timeout_secs: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            connect_timeout_ms: 2_000,
            pool_idle_timeout_secs: 90,
            pool_max_idle_per_host: 256,
            idle_timeout_secs: 60,
        }
    }
}

/// One upstream MCP server, reached over Streamable HTTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// URL-safe slug (`[a-z0-9-]`, 1–63 characters): the upstream is served at `/mcp/{name}`.
    pub name: String,
    /// The upstream's Streamable HTTP endpoint (http or https).
    pub url: String,
    /// Longest wait for the upstream's response head (then 504). Streams may run longer.
    #[serde(default = "default_upstream_response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// This upstream's `proxy.idle_timeout_secs` (longest silence inside a streamed
    /// response), when it needs another than the gateway's.
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// How mcpgate authenticates to the upstream (never with the client's own token): one
    /// table `{ kind = … }` or a list of them (`mcpgate_credentials` documents every kind).
    #[serde(default)]
    pub credentials: mcpgate_credentials::UpstreamCredentialsConfig,
}

fn default_upstream_response_timeout_ms() -> u64 {
    25_000
}

/// One problem in the configuration, with its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The figment that [`Config::load`] extracts: defaults, then the file, then the environment.
pub fn figment(file: Option<&Path>) -> Figment {
    let mut figment = Figment::new();
    if let Some(path) = file {
        figment = figment.merge(Toml::file_exact(path));
    }
    // MCPGATE_CONFIG names the file and MCPGATE_TEST_* belong to the test harness: neither is
    // a setting.
    figment.merge(Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
        let key = key.as_str().to_ascii_lowercase();
        key != "config" && !key.starts_with("test_")
    }))
}

/// Figment's errors as [`ConfigError`]s: `upstreams[0].url` paths, and the file or
/// environment variable the bad value came from.
fn extraction_errors(figment: &Figment, error: figment::Error) -> Vec<ConfigError> {
    error
        .into_iter()
        .map(|e| {
            let path = config_path(&e.path);
            let source = figment
                .find_metadata(&e.path.join("."))
                .map(|m| match &m.source {
                    Some(figment::Source::File(file)) => format!(" (in {})", file.display()),
                    _ => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            ConfigError::new(path, format!("{}{source}", e.kind))
        })
        .collect()
}

/// `["upstreams", "0", "url"]` → `upstreams[0].url`; the whole file when empty.
fn config_path(path: &[String]) -> String {
    if path.is_empty() {
        return "(config)".to_owned();
    }
    let mut out = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// Takes the value at `path` out of `data`; `false` when there is none (nothing to retry).
fn remove_path(data: &mut figment::value::Dict, path: &[String]) -> bool {
    use figment::value::Value;
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut here: &mut Value = match parents.first() {
        None => return data.remove(last).is_some(),
        Some(first) => match data.get_mut(first) {
            Some(v) => v,
            None => return false,
        },
    };
    for part in parents.iter().skip(1) {
        here = match here {
            Value::Dict(_, dict) => match dict.get_mut(part) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(_, items) => {
                match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(v) => v,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match here {
        Value::Dict(_, dict) => dict.remove(last).is_some(),
        Value::Array(_, items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

impl Config {
    /// Loads and validates. Extraction errors (unknown key, wrong type, unreadable file) and
    /// every validation problem come back together.
    pub fn load(file: Option<&Path>) -> Result<Self, Vec<ConfigError>> {
        Self::from_figment(figment(file))
    }

    pub fn from_figment(figment: Figment) -> Result<Self, Vec<ConfigError>> {
        // serde stops at the first problem. To report them all at once, each bad key is
        // recorded (with the file or variable it came from) and taken out, and the rest is
        // read again, until it reads; then the later checks run on what is left.
        let mut data: figment::value::Dict = match figment.extract() {
            Ok(data) => data,
            Err(e) => return Err(extraction_errors(&figment, e)),
        };
        let mut errors = Vec::new();
        for _ in 0..64 {
            let attempt = Figment::from(figment::providers::Serialized::defaults(&data));
            match attempt.extract::<Config>() {
                Ok(config) => {
                    if let Err(more) = config.validate() {
                        errors.extend(more.into_iter().map(|mut e| {
                            let key = e.path.replace('[', ".").replace(']', "");
                            if let Some(source) =
                                figment.find_metadata(&key).and_then(|m| match &m.source {
                                    Some(figment::Source::File(file)) => {
                                        Some(format!(" (in {})", file.display()))
                                    }
                                    _ if m.name.contains("environment") => {
                                        Some(format!(" (from {})", m.name))
                                    }
                                    _ => None,
                                })
                            {
                                e.message.push_str(&source);
                            }
                            e
                        }));
                    }
                    return if errors.is_empty() {
                        Ok(config)
                    } else {
                        Err(errors)
                    };
                }
                Err(e) => {
                    let mut removed = false;
                    for one in e {
                        let found = extraction_errors(&figment, one.clone());
                        errors.extend(found);
                        removed |= remove_path(&mut data, &one.path);
                    }
                    if !removed {
                        return Err(errors);
                    }
                }
            }
        }
        Err(errors)
    }

    /// Whether every URL mcpgate hands out is https (then cookies are `Secure` and `__Host-`).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The issuer: `public_url` without a trailing slash, one string everywhere.
    pub fn issuer(&self) -> String {
        self.public_url.trim_end_matches('/').to_owned()
    }

    /// Checks everything the types cannot, and reports every problem at once.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        validate_public_url(&self.public_url, &mut errors);
        self.validate_database(&mut errors);
        self.validate_encryption(&mut errors);
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            errors.push(ConfigError::new(
                "log.level",
                format!("not a log filter: {e}"),
            ));
        }
        if self.http.body_limit_bytes == 0 {
            errors.push(ConfigError::new(
                "http.body_limit_bytes",
                "must be at least 1",
            ));
        }
        if self.http.header_read_timeout_secs == 0 {
            errors.push(ConfigError::new(
                "http.header_read_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.http.request_timeout_secs == 0 {
            errors.push(ConfigError::new(
                "http.request_timeout_secs",
                "must be at least 1",
            ));
        }
        if self
            .metrics
            .bearer_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            errors.push(ConfigError::new(
                "metrics.bearer_token",
                "must be at least 16 characters (a random value, e.g. `openssl rand -hex 32`)",
            ));
        }
        if self.metrics.listen.is_some_and(|a| a == self.listen) {
            errors.push(ConfigError::new(
                "metrics.listen",
                "must differ from `listen` (leave it unset to serve /metrics there)",
            ));
        }
        self.auth.validate(&mut errors);
        self.bootstrap.validate(&mut errors);
        self.oauth.validate(&mut errors);
        self.validate_proxy(&mut errors);
        self.policy.validate(&mut errors);
        if let Err(provider_errors) = mcpgate_providers::Registry::build(&self.providers) {
            errors.extend(
                provider_errors
                    .into_iter()
                    .map(|e| ConfigError::new(e.path, e.message)),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn validate_proxy(&self, errors: &mut Vec<ConfigError>) {
        for (i, origin) in self.proxy.allowed_origins.iter().enumerate() {
            if crate::proxy::origin::normalize(origin).is_none() {
                errors.push(ConfigError::new(
                    format!("proxy.allowed_origins[{i}]"),
                    "must be an origin: scheme://host[:port], no path",
                ));
            }
        }
        for (i, host) in self.proxy.allowed_hosts.iter().enumerate() {
            if crate::proxy::origin::normalize_host(host).is_none() {
                errors.push(ConfigError::new(
                    format!("proxy.allowed_hosts[{i}]"),
                    "must be a host name or address, with an optional :port",
                ));
            }
        }
        if self.proxy.connect_timeout_ms == 0 {
            errors.push(ConfigError::new(
                "proxy.connect_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.proxy.idle_timeout_secs == 0 {
            errors.push(ConfigError::new(
                "proxy.idle_timeout_secs",
                "must be at least 1",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, upstream) in self.upstreams.iter().enumerate() {
            let path = |key: &str| format!("upstreams[{i}].{key}");
            let slug_ok = !upstream.name.is_empty()
                && upstream.name.len() <= 63
                && upstream
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !upstream.name.starts_with('-');
            if !slug_ok {
                errors.push(ConfigError::new(
                    path("name"),
                    "must be a slug of 1 to 63 characters a-z, 0-9 and '-', not starting with '-'",
                ));
            } else if !seen.insert(upstream.name.as_str()) {
                errors.push(ConfigError::new(
                    path("name"),
                    format!("{:?} is used by an earlier upstream", upstream.name),
                ));
            }
            match Url::parse(&upstream.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
                Ok(_) => errors.push(ConfigError::new(path("url"), "must be an http(s) URL")),
                Err(e) => errors.push(ConfigError::new(path("url"), format!("not a URL: {e}"))),
            }
            if upstream.response_timeout_ms == 0 {
                errors.push(ConfigError::new(
                    path("response_timeout_ms"),
                    "must be at least 1",
                ));
            }
            if upstream.idle_timeout_secs == Some(0) {
                errors.push(ConfigError::new(
                    path("idle_timeout_secs"),
                    "must be at least 1",
                ));
            }
            errors.extend(
                upstream
                    .credentials
                    .validate(&format!("upstreams[{i}].credentials"))
                    .into_iter()
                    .map(|e| ConfigError::new(e.path, e.message)),
            );
        }
    }

    fn validate_database(&self, errors: &mut Vec<ConfigError>) {
        let db = &self.database;
        let url = db.url.as_str();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                errors.push(ConfigError::new(
                    "database.url",
                    "sqlite:// needs a file path",
                ));
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if Url::parse(url).is_err() {
                errors.push(ConfigError::new(
                    "database.url",
                    "not a valid postgres:// URL",
                ));
            }
        } else {
            errors.push(ConfigError::new(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if db.max_connections == 0 {
            errors.push(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if db.wait_timeout_ms == 0 {
            errors.push(ConfigError::new(
                "database.wait_timeout_ms",
                "must be at least 1",
            ));
        }
    }

    fn validate_encryption(&self, errors: &mut Vec<ConfigError>) {
        let enc = &self.encryption;
        if enc.keys.is_empty() {
            errors.push(ConfigError::new(
                "encryption.keys",
                "no key configured: generate a key ring with `mcpgate keys generate`",
            ));
        }
        for (id, key) in &enc.keys {
            if let Err(message) = mcpgate_crypto::keys::decode_key_b64(key.expose()) {
                errors.push(ConfigError::new(format!("encryption.keys.{id}"), message));
            }
        }
        match &enc.active_key {
            Some(id) if !enc.keys.contains_key(id) => errors.push(ConfigError::new(
                "encryption.active_key",
                format!("{id:?} is not one of encryption.keys"),
            )),
            None if !enc.keys.is_empty() => errors.push(ConfigError::new(
                "encryption.active_key",
                "must name the key that seals new values",
            )),
            _ => {}
        }
    }
}

fn validate_public_url(value: &str, errors: &mut Vec<ConfigError>) {
    let url = match Url::parse(value) {
        Ok(url) => url,
        Err(e) => {
            errors.push(ConfigError::new("public_url", format!("not a URL: {e}")));
            return;
        }
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => errors.push(ConfigError::new(
            "public_url",
            "must be https: plain http is allowed only on a loopback address (OAuth 2.1 and MCP \
             require TLS for the authorization server)",
        )),
        other => errors.push(ConfigError::new(
            "public_url",
            format!("scheme {other:?} is not http(s)"),
        )),
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        errors.push(ConfigError::new(
            "public_url",
            "must be an origin without a path, query or fragment (mcpgate serves at the root)",
        ));
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error, which is figment's to size"
)]
mod tests {
    use super::*;
    use figment::Jail;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn paths(errors: Vec<ConfigError>) -> Vec<String> {
        errors.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn three_mistakes_are_all_reported_with_their_paths() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "mcpgate.toml",
                &format!(
                    r#"
                    public_url = "http://gateway.example.com"
                    [encryption]
                    active_key = "k1"
                    keys = {{ k1 = "{KEY}", k2 = "c2hvcnQ=" }}
                    [[providers]]
                    id = "corp"
                    kind = "myspace"
                    client_id = "x"
                    "#
                ),
            )?;
            let errors = Config::load(Some(Path::new("mcpgate.toml")))
                .err()
                .unwrap_or_default();
            assert_eq!(
                paths(errors),
                ["public_url", "encryption.keys.k2", "providers[0].kind"]
            );
            Ok(())
        });
    }

    #[test]
    fn parse_problems_and_later_checks_are_reported_together() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "mcpgate.toml",
                "listn = \"127.0.0.1:9000\"\npublic_url = \"ftp://x\"\n[database]\nmax_connections = \"many\"\n[[upstreams]]\nname = \"Bad Name\"\nurl = \"not a url\"\n",
            )?;
            let errors = Config::load(Some(Path::new("mcpgate.toml")))
                .err()
                .unwrap_or_default();
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            for expected in [
                "database.max_connections",
                "listn",
                "public_url",
                "upstreams[0].name",
                "upstreams[0].url",
            ] {
                assert!(paths.contains(&expected), "{expected} missing: {errors:?}");
            }
            let wrong_type = &errors[paths
                .iter()
                .position(|p| *p == "database.max_connections")
                .unwrap_or(0)];
            assert!(
                wrong_type.message.contains("\"many\"")
                    && wrong_type.message.contains("mcpgate.toml"),
                "{wrong_type:?}"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors_with_their_path() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "mcpgate.toml",
                "[database]\nurl = \"sqlite://x.db\"\npool = 3\n",
            )?;
            let errors = Config::load(Some(Path::new("mcpgate.toml")))
                .err()
                .unwrap_or_default();
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, ["database.pool", "encryption.keys"], "{errors:?}");
            assert!(errors[0].message.contains("pool"), "{}", errors[0].message);
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file_and_nests_with_double_underscore() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "mcpgate.toml",
                &format!(
                    "listen = \"127.0.0.1:9000\"\n[encryption]\nactive_key = \"k1\"\nkeys = {{ k1 = \"{KEY}\" }}\n"
                ),
            )?;
            jail.set_env("MCPGATE_LISTEN", "127.0.0.1:9100");
            jail.set_env("MCPGATE_PUBLIC_URL", "https://gw.example.com/");
            jail.set_env(
                "MCPGATE_DATABASE__URL",
                "postgres://postgres@127.0.0.1:5432/x",
            );
            jail.set_env("MCPGATE_DATABASE__MAX_CONNECTIONS", "4");
            jail.set_env("MCPGATE_CONFIG", "mcpgate.toml");
            jail.set_env("MCPGATE_TEST_DATABASE_URL", "postgres://ignored");
            let config =
                Config::load(Some(Path::new("mcpgate.toml"))).map_err(|e| format!("{e:?}"))?;
            assert_eq!(config.listen.port(), 9100);
            assert_eq!(config.issuer(), "https://gw.example.com");
            assert_eq!(config.database.url, "postgres://postgres@127.0.0.1:5432/x");
            assert_eq!(config.database.max_connections, 4);
            Ok(())
        });
    }

    #[test]
    fn missing_keys_and_bad_database_url_are_reported() {
        let config = Config {
            database: DatabaseConfig {
                url: "mysql://x".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            paths(config.validate().err().unwrap_or_default()),
            ["database.url", "encryption.keys"]
        );
    }

    #[test]
    fn secrets_are_redacted_when_printed() {
        let mut config = Config::default();
        config
            .encryption
            .keys
            .insert("k1".into(), SecretString::new(KEY));
        let printed = toml::to_string(&config).unwrap_or_default();
        assert!(!printed.contains(KEY));
        assert!(printed.contains(mcpgate_core::secret::REDACTED));
        assert!(!format!("{config:?}").contains(KEY));
    }

    #[test]
    fn upstream_mistakes_are_reported_with_their_paths() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "mcpgate.toml",
                &format!(
                    r#"
                    [encryption]
                    active_key = "k1"
                    keys = {{ k1 = "{KEY}" }}
                    [proxy]
                    allowed_origins = ["https://ok.example.com", "https://x.example.com/path"]
                    idle_timeout_secs = 0
                    [[upstreams]]
                    name = "Bad Name"
                    url = "ftp://x"
                    [[upstreams]]
                    name = "dup"
                    url = "http://127.0.0.1:1/mcp"
                    [[upstreams]]
                    name = "dup"
                    url = "http://127.0.0.1:2/mcp"
                    response_timeout_ms = 0
                    "#
                ),
            )?;
            let errors = Config::load(Some(Path::new("mcpgate.toml")))
                .err()
                .unwrap_or_default();
            assert_eq!(
                paths(errors),
                [
                    "proxy.allowed_origins[1]",
                    "proxy.idle_timeout_secs",
                    "upstreams[0].name",
                    "upstreams[0].url",
                    "upstreams[2].name",
                    "upstreams[2].response_timeout_ms"
                ]
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_upstream_keys_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "mcpgate.toml",
                "[[upstreams]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/\"\ntimeout = 3\n",
            )?;
            let errors = Config::load(Some(Path::new("mcpgate.toml")))
                .err()
                .unwrap_or_default();
            // The later checks run too (this file has no key ring).
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(
                paths,
                ["upstreams[0].timeout", "encryption.keys"],
                "{errors:?}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_example_config_loads() {
        let example = include_str!("../../../mcpgate.example.toml");
        Jail::expect_with(|jail| {
            jail.create_file("mcpgate.toml", example)?;
            std::fs::create_dir_all(jail.directory().join("secrets")).map_err(|e| e.to_string())?;
            jail.create_file("secrets/keycloak-client-secret", "kc-secret\n")?;
            jail.create_file("secrets/okta-client-secret", "okta-secret\n")?;
            // The example ships no key (a published key is no key): supply one as an operator
            // would, through the environment.
            jail.set_env("MCPGATE_ENCRYPTION__ACTIVE_KEY", "k1");
            jail.set_env("MCPGATE_ENCRYPTION__KEYS__K1", KEY);
            let config =
                Config::load(Some(Path::new("mcpgate.toml"))).map_err(|e| format!("{e:?}"))?;
            assert_eq!(config.providers.len(), 2);
            assert_eq!(config.upstreams.len(), 1);
            assert_eq!(config.upstreams[0].name, "everything");
            assert_eq!(config.proxy.allowed_origins, ["https://app.example.com"]);
            assert_eq!(config.policy.default_role.as_deref(), Some("member"));
            assert_eq!(config.policy.roles.len(), 2);
            Ok(())
        });
    }

    #[test]
    fn a_policy_that_does_not_compile_is_a_config_error_at_its_path() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "mcpgate.toml",
                "[policy]\ndefault_role = \"ghost\"\n[[policy.roles]]\nname = \"r\"\n\
                 grants = [{ effect = \"allow\", action = \"tools/explode\" }]\n",
            )?;
            jail.set_env("MCPGATE_ENCRYPTION__ACTIVE_KEY", "k1");
            jail.set_env("MCPGATE_ENCRYPTION__KEYS__K1", KEY);
            let errors = Config::load(Some(Path::new("mcpgate.toml")))
                .err()
                .unwrap_or_default();
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            assert!(
                paths.contains(&"policy.roles[0].grants[0].action"),
                "{errors:?}"
            );
            assert!(paths.contains(&"policy.default_role"), "{errors:?}");
            Ok(())
        });
    }
}
