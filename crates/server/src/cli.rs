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
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Token { command } => token(command).await,
        Command::Keys {
            command: KeysCommand::Generate,
        } => keys_generate(),
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
