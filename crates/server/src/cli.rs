//! The `mcpgate` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

const AFTER_HELP: &str = "\
Configuration, lowest to highest precedence:
  1. built-in defaults: listen 127.0.0.1:8080, public_url http://127.0.0.1:8080,
     database sqlite://mcpgate.db (in the working directory), no key ring
  2. the TOML file of --config or MCPGATE_CONFIG (mcpgate.example.toml lists every key)
  3. environment variables MCPGATE_<KEY>, `__` between nested keys:
     MCPGATE_LISTEN, MCPGATE_PUBLIC_URL, MCPGATE_DATABASE__URL, MCPGATE_ENCRYPTION__KEYS__K1
Every problem is reported at once, with its path (upstreams[0].url) and where it came from.

Examples:
  mcpgate keys generate >> mcpgate.toml        a key ring for a new deployment
  mcpgate --config mcpgate.toml check-config   validate, print the effective config
  mcpgate --config mcpgate.toml doctor         database, keys, providers, upstreams, clock
  mcpgate --config mcpgate.toml serve          run the gateway
  MCPGATE_DATABASE__URL=postgres://mcpgate@db/mcpgate mcpgate --config mcpgate.toml migrate
  mcpgate --config mcpgate.toml keys rotate    new active key; old values re-sealed at start";

#[derive(Debug, Parser)]
#[command(
    name = "mcpgate",
    version,
    about = "The authorization gateway for MCP servers",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Configuration file (TOML). `MCPGATE_*` environment variables override it.
    #[arg(long, global = true, env = "MCPGATE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration, print it with secrets redacted, and exit (non-zero on errors).
    CheckConfig,
    /// Check the configuration, the database and its migrations, the key ring, each
    /// identity provider and upstream, and the clock; print a table with a fix for each
    /// failure. Exits 1 when a check failed, 2 when the configuration cannot be loaded.
    Doctor,
    /// Ask a running mcpgate whether it is ready (`GET /readyz`): exit 0 if it is, 1 if not.
    /// For container health checks: the image has no curl.
    Probe {
        /// The readiness URL; default: `/readyz` on the configured listen address.
        #[arg(long)]
        url: Option<String>,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Tokens for scripts and agents.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Sign in through the browser for one MCP endpoint (loopback redirect, PKCE) and write
    /// a token file (access and refresh token, mode 0600) for scripts.
    Login {
        /// The MCP endpoint, e.g. https://gateway.example.com/mcp/github.
        url: String,
        /// Where to write the token file.
        #[arg(long, default_value = "mcpgate-token.json")]
        out: PathBuf,
        /// Scopes to ask for (`mcp`, `mcp:read`); the server's default otherwise.
        #[arg(long)]
        scope: Option<String>,
        /// Only print the sign-in URL; do not try to open a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Create a personal access token through the API and print it (shown once).
    Create {
        /// The gateway's public URL.
        #[arg(long, env = "MCPGATE_URL")]
        url: String,
        /// A token that may use the API: a personal access token with the `api` scope, or an
        /// API token from `POST /api/v1/login`.
        #[arg(long, env = "MCPGATE_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long)]
        name: String,
        /// An upstream the new token may call (repeat for more).
        #[arg(long = "upstream", required = true)]
        upstreams: Vec<String>,
        /// Subset of `mcp mcp:read api` (default `mcp api`).
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Print the whole JSON answer instead of the token alone.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a fresh encryption key ring as TOML, ready to paste or append into a config file.
    Generate,
    /// Add a new key to the ring and make it active. With `--config FILE`, the file is edited
    /// in place (comments kept); otherwise the lines to add are printed. Values sealed before
    /// stay readable with the old key; `mcpgate serve` re-seals them in the background.
    Rotate,
    /// How many stored values each key sealed: a key may be removed once it seals none.
    Status,
    /// Re-seal every stored value under the active key now, printing progress.
    Reseal,
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Keys {
            command: KeysCommand::Generate,
        } => keys_generate(),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => keys_rotate(cli.config.as_deref()),
        Command::Keys {
            command: KeysCommand::Status,
        } => keys_status(cli.config.as_deref()).await,
        Command::Keys {
            command: KeysCommand::Reseal,
        } => keys_reseal(cli.config.as_deref()).await,
        Command::Token { command } => token(command).await,
        Command::Doctor => doctor(cli.config.as_deref()).await,
        Command::Probe { url } => probe(cli.config.as_deref(), url).await,
        Command::CheckConfig => match load(cli.config.as_deref()) {
            Some(config) => match toml::to_string_pretty(&config) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mcpgate: cannot print the configuration: {e}");
                    ExitCode::FAILURE
                }
            },
            None => ExitCode::from(2),
        },
        Command::Migrate => {
            let Some(config) = load(cli.config.as_deref()) else {
                return ExitCode::from(2);
            };
            crate::telemetry::init_logging(&config.log);
            match migrate(&config).await {
                Ok(applied) => {
                    println!("migrations applied: {applied}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mcpgate: migration failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            let Some(config) = load(cli.config.as_deref()) else {
                return ExitCode::from(2);
            };
            crate::telemetry::init_logging(&config.log);
            match serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "mcpgate stopped with an error");
                    eprintln!("mcpgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Loads the configuration or prints every problem to stderr.
fn load(path: Option<&std::path::Path>) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config),
        Err(errors) => {
            print_errors(&errors);
            None
        }
    }
}

fn print_errors(errors: &[ConfigError]) {
    eprintln!(
        "mcpgate: the configuration has {} problem{}:",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        eprintln!("  - {e}");
    }
}

async fn migrate(config: &Config) -> anyhow::Result<usize> {
    let store = mcpgate_storage::Store::connect(&config.database.store_options()).await?;
    Ok(store.migrate().await?)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    crate::serve::serve(config, listener, crate::serve::shutdown_signal()).await
}

async fn token(command: TokenCommand) -> ExitCode {
    use crate::token_cli;
    match command {
        TokenCommand::Login {
            url,
            out,
            scope,
            no_browser,
        } => {
            let open = |authorize: &str| {
                eprintln!("Open this URL to sign in:\n\n  {authorize}\n");
                if !no_browser {
                    token_cli::open_browser(authorize);
                }
            };
            match token_cli::login(&url, scope.as_deref(), open).await {
                Ok(tokens) => match token_cli::write_token_file(&out, &tokens) {
                    Ok(()) => {
                        println!(
                            "Token for {} written to {} (expires in {} s; refresh token included).",
                            tokens.resource,
                            out.display(),
                            tokens.expires_at - mcpgate_storage::now_ms() / 1000
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("mcpgate: {e:#}");
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("mcpgate: sign-in failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        TokenCommand::Create {
            url,
            token,
            name,
            upstreams,
            scope,
            expires_in_days,
            json,
        } => {
            let request = token_cli::CreateRequest {
                name,
                upstreams,
                scope,
                expires_in_days,
            };
            match token_cli::create(&url, &token, &request).await {
                Ok(answer) if json => {
                    println!("{answer:#}");
                    ExitCode::SUCCESS
                }
                Ok(answer) => match answer["token"].as_str() {
                    Some(t) => {
                        println!("{t}");
                        ExitCode::SUCCESS
                    }
                    None => {
                        eprintln!("mcpgate: the API answered without a token: {answer}");
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("mcpgate: token create failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn doctor(path: Option<&std::path::Path>) -> ExitCode {
    let checks = match Config::load(path) {
        Ok(config) => crate::doctor::run(&config).await,
        Err(errors) => {
            print!(
                "{}",
                crate::doctor::render(&crate::doctor::config_failures(&errors))
            );
            return ExitCode::from(2);
        }
    };
    print!("{}", crate::doctor::render(&checks));
    if crate::doctor::failed(&checks) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn probe(path: Option<&std::path::Path>, url: Option<String>) -> ExitCode {
    let url = match url {
        Some(url) => url,
        None => {
            let Some(config) = load(path) else {
                return ExitCode::from(2);
            };
            let mut addr = config.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}/readyz")
        }
    };
    crate::tls::ensure_provider();
    let answer = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
    {
        Ok(client) => client.get(&url).send().await,
        Err(e) => {
            eprintln!("mcpgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    match answer {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("mcpgate: {url} answered {}", r.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("mcpgate: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A new key id (`k` + 8 hex digits) and key (base64 of 32 random bytes).
fn new_key() -> Result<(String, String), String> {
    let id = mcpgate_crypto::keys::random_bytes::<4>()
        .map(|b| {
            format!(
                "k{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            )
        })
        .map_err(|e| e.to_string())?;
    let key = mcpgate_crypto::keys::generate_key_b64().map_err(|e| e.to_string())?;
    Ok((id, key))
}

fn keys_rotate(path: Option<&std::path::Path>) -> ExitCode {
    let (id, key) = match new_key() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("mcpgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(path) = path else {
        println!(
            "# Add this key to [encryption.keys] and make it active; keep the old keys until\n\
             # `mcpgate keys status` shows they seal nothing (see `mcpgate keys --help`).\n\
             [encryption]\nactive_key = \"{id}\"\n\n[encryption.keys]\n{id} = \"{key}\"\n\n\
             # or as environment variables:\n\
             # MCPGATE_ENCRYPTION__ACTIVE_KEY={id}\n# MCPGATE_ENCRYPTION__KEYS__{}=…",
            id.to_uppercase()
        );
        return ExitCode::SUCCESS;
    };
    match crate::keys::rotate_file(path, &id, &key) {
        Ok(old) => {
            println!(
                "{}: key {id} added and active{}.\nRestart (or roll) every replica with this \
                 file: the first start re-seals stored values in the background. Remove the old \
                 key once `mcpgate keys status` shows it seals nothing.",
                path.display(),
                old.map(|o| format!(" (was {o})")).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mcpgate: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

async fn keys_status(path: Option<&std::path::Path>) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::from(2);
    };
    let store = match mcpgate_storage::Store::connect(&config.database.store_options()).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("mcpgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::keys::count(&store).await {
        Ok(counts) => {
            print!("{}", crate::keys::render_status(&config, &counts));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mcpgate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn keys_reseal(path: Option<&std::path::Path>) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::from(2);
    };
    let result = async {
        let ring = crate::app::secret_box(&config)?;
        let store = mcpgate_storage::Store::connect(&config.database.store_options()).await?;
        let report = crate::keys::reseal(
            &store,
            &ring,
            crate::keys::BATCH,
            crate::keys::PAUSE,
            |table, so_far| {
                println!(
                    "{}: {} scanned, {} re-sealed",
                    table.name(),
                    so_far.scanned,
                    so_far.resealed
                )
            },
        )
        .await?;
        anyhow::Ok(report)
    }
    .await;
    match result {
        Ok(report) => {
            println!(
                "done: {} value(s) scanned, {} re-sealed under {:?}, {} changed meanwhile, {} do not open",
                report.scanned,
                report.resealed,
                config.encryption.active_key.as_deref().unwrap_or_default(),
                report.changed,
                report.failed
            );
            if report.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("mcpgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn keys_generate() -> ExitCode {
    match new_key() {
        Ok((id, key)) => {
            println!(
                "# mcpgate encryption key ring: keep it secret. To rotate: `mcpgate keys rotate`.\n\
                 [encryption]\nactive_key = \"{id}\"\n\n[encryption.keys]\n{id} = \"{key}\""
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mcpgate: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_states_the_real_defaults() {
        let defaults = Config::default();
        assert!(AFTER_HELP.contains(&format!("listen {}", defaults.listen)));
        assert!(AFTER_HELP.contains(&format!("public_url {}", defaults.public_url)));
        assert!(AFTER_HELP.contains(&format!("database {}", defaults.database.url)));
        assert!(defaults.encryption.keys.is_empty() && AFTER_HELP.contains("no key ring"));
    }
}
