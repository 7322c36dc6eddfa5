//! The `mcpgate` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "mcpgate",
    version,
    about = "The authorization gateway for MCP servers"
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
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a fresh encryption key ring as TOML, ready to paste or append into a config file.
    Generate,
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Keys {
            command: KeysCommand::Generate,
        } => keys_generate(),
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

fn keys_generate() -> ExitCode {
    let id = match mcpgate_crypto::keys::random_bytes::<4>() {
        Ok(b) => format!(
            "k{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
        Err(e) => {
            eprintln!("mcpgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    match mcpgate_crypto::keys::generate_key_b64() {
        Ok(key) => {
            println!(
                "# mcpgate encryption key ring: keep it secret. To rotate, add a new key and\n\
                 # make it active; keep old keys until every value is re-sealed.\n\
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
