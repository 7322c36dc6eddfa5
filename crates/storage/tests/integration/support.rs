use mcpgate_storage::testing::{TempDir, TempPostgres, temp_sqlite};
use mcpgate_storage::{GrantTokens, NewUser, Store, StoreOptions, User};

/// A migrated database for one test, on one backend.
pub struct Fixture {
    pub store: Store,
    pub url: String,
    _sqlite: Option<TempDir>,
    _postgres: Option<TempPostgres>,
}

impl Fixture {
    pub async fn sqlite() -> Self {
        let (url, dir) = temp_sqlite().unwrap();
        let store = migrated(&url).await;
        Self {
            store,
            url,
            _sqlite: Some(dir),
            _postgres: None,
        }
    }

    pub async fn postgres(test: &str) -> Option<Self> {
        let db = TempPostgres::create(test).await?.unwrap();
        let url = db.url.clone();
        let store = migrated(&url).await;
        Some(Self {
            store,
            url,
            _sqlite: None,
            _postgres: Some(db),
        })
    }

    /// Another Store with its own pool on the same database: a second replica.
    pub async fn replica(&self) -> Store {
        Store::connect(&StoreOptions::new(&self.url)).await.unwrap()
    }

    pub async fn user(&self, email: &str) -> User {
        self.store
            .create_user(&NewUser {
                email: email.into(),
                ..Default::default()
            })
            .await
            .unwrap()
    }
}

async fn migrated(url: &str) -> Store {
    let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
    store.migrate().await.unwrap();
    store
}

pub fn tokens(tag: &str) -> GrantTokens {
    GrantTokens {
        access_token: format!("sealed-access-{tag}").into_bytes(),
        refresh_token: Some(format!("sealed-refresh-{tag}").into_bytes()),
        id_token: None,
        expires_at: Some(1_000),
        refresh_expires_at: None,
        scopes: "openid email".into(),
    }
}

/// Runs `$body(fixture)` as two tests: on SQLite and on PostgreSQL.
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                $body(crate::support::Fixture::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if let Some(f) =
                    crate::support::Fixture::postgres(concat!(stringify!($name), "::postgres"))
                        .await
                {
                    $body(f).await;
                }
            }
        }
    };
}
