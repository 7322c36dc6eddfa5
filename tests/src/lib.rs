#![doc = include_str!("../README.md")]

pub mod conformance;
pub mod faults;
pub mod fixtures;

use std::net::SocketAddr;
use std::sync::Arc;

use mcpgate_core::SecretString;
use mcpgate_server::{AppState, Config};
use mcpgate_storage::testing::{TempDir, TempPostgres, temp_sqlite};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A base64 key for tests (32 zero-to-31 bytes). Tests only.
pub const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The database a test runs against; dropping it removes it.
pub enum TestDb {
    Sqlite(String, TempDir),
    Postgres(TempPostgres),
}

impl TestDb {
    pub fn sqlite() -> anyhow::Result<Self> {
        let (url, dir) = temp_sqlite()?;
        Ok(Self::Sqlite(url, dir))
    }

    /// `None` when PostgreSQL tests are not configured (a SKIPPED line is printed).
    pub async fn postgres(test: &str) -> anyhow::Result<Option<Self>> {
        match TempPostgres::create(test).await {
            None => Ok(None),
            Some(db) => Ok(Some(Self::Postgres(db?))),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite(url, _) => url,
            Self::Postgres(db) => &db.url,
        }
    }

    /// A Store of the test's own on the same database, to look behind the API.
    pub async fn store(&self) -> anyhow::Result<mcpgate_storage::Store> {
        Ok(
            mcpgate_storage::Store::connect(&mcpgate_storage::StoreOptions::new(self.url()))
                .await?,
        )
    }
}

/// A valid configuration for tests: loopback, the given database, a test key ring.
pub fn test_config(database_url: &str) -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    };
    config.database.url = database_url.to_owned();
    config.encryption.active_key = Some("test".into());
    config
        .encryption
        .keys
        .insert("test".into(), SecretString::new(TEST_KEY));
    // Cheap hashes keep tests fast; the pool, the policy and the code paths are the same.
    config.auth.hashing.m_cost_kib = 1024;
    config.auth.hashing.t_cost = 1;
    // mcpgate denies every MCP call no role allows. Tests about transport and OAuth run with
    // a default role that allows everything; RBAC tests replace `config.policy`.
    config.policy.default_role = Some("everyone".into());
    config.policy.roles = vec![mcpgate_rbac::RoleSpec {
        name: "everyone".into(),
        description: "tests: every MCP action on every upstream".into(),
        grants: vec![mcpgate_rbac::GrantSpec {
            effect: mcpgate_rbac::Effect::Allow,
            action: "*".into(),
            upstream: "*".into(),
            target: "*".into(),
        }],
    }];
    config
}

/// mcpgate serving in this process on a free loopback port.
pub struct TestServer {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        Self::start_with(config, |state| state).await
    }

    /// Like [`TestServer::start`], with the application state adjusted first (an injected
    /// authenticator, say). `public_url` is the server's own loopback address.
    pub async fn start_with(
        mut config: Config,
        customize: impl FnOnce(AppState) -> AppState,
    ) -> anyhow::Result<Self> {
        // reqwest is built without a default TLS provider: install ring before any client.
        mcpgate_server::tls::ensure_provider();
        // A fixed port in the config is kept (a test that must know its URL in advance);
        // so is a public_url other than the default (replicas behind one address).
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        config.listen = addr;
        if config.public_url == Config::default().public_url {
            config.public_url = format!("http://{addr}");
        }
        let state = customize(AppState::new(config).await?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(mcpgate_server::serve::serve_app(state, listener, async {
            let _ = stopped.await;
        }));
        let server = Self {
            base: format!("http://{addr}"),
            stop: Some(stop),
            task,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        anyhow::bail!("mcpgate did not become healthy")
    }

    /// Serves with [`TestTokens`] as the authenticator.
    pub async fn start_with_tokens(config: Config, tokens: TestTokens) -> anyhow::Result<Self> {
        Self::start_with(config, |state| state.with_authenticator(Arc::new(tokens))).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful stop; returns what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

/// An authenticator for tests: fixed tokens, each naming a user, valid for every resource
/// (the principal carries the resource it was presented at).
#[derive(Debug, Clone, Default)]
pub struct TestTokens(std::collections::HashMap<String, String>);

impl TestTokens {
    /// `(token, user id)` pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(t, u)| (t.to_owned(), u.to_owned()))
                .collect(),
        )
    }
}

#[async_trait::async_trait]
impl mcpgate_server::auth::Authenticator for TestTokens {
    async fn authenticate(
        &self,
        token: &str,
        resource: &str,
    ) -> Result<mcpgate_core::Principal, mcpgate_server::auth::AuthError> {
        match self.0.get(token) {
            Some(user) => Ok(mcpgate_core::Principal {
                user_id: user.clone(),
                client_id: "test-client".into(),
                scopes: vec!["mcp".into()],
                resource: resource.to_owned(),
            }),
            None => Err(mcpgate_server::auth::AuthError::InvalidToken(
                "not a test token".into(),
            )),
        }
    }

    fn challenge_scope(&self, _resource: &str) -> Option<String> {
        Some("mcp".into())
    }
}
