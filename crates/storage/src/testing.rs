//! Test support (feature `testing`): each test gets its own database.
//!
//! PostgreSQL tests run when `MCPGATE_TEST_DATABASE_URL` is set (`cargo xtask test` sets it
//! when PostgreSQL is reachable, and fails in CI when it is not); without it they print a
//! visible SKIPPED line and return.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::StorageError;

pub const ENV: &str = "MCPGATE_TEST_DATABASE_URL";

/// A PostgreSQL database created for one test and dropped (forcibly) when this value drops.
#[derive(Debug)]
pub struct TempPostgres {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TempPostgres {
    /// `None` (with a notice on stderr) when no test PostgreSQL is configured.
    pub async fn create(test: &str) -> Option<Result<Self, StorageError>> {
        let Ok(admin_url) = std::env::var(ENV) else {
            eprintln!("SKIPPED {test} on PostgreSQL: {ENV} is not set");
            return None;
        };
        Some(Self::create_at(admin_url).await)
    }

    /// Creates a database on the server at `admin_url` (for benchmarks, which run outside the
    /// test harness).
    pub async fn create_at_url(admin_url: &str) -> Result<Self, StorageError> {
        Self::create_at(admin_url.to_owned()).await
    }

    async fn create_at(admin_url: String) -> Result<Self, StorageError> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("mcpgate_test_{}", &suffix[..16]);
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let url = match admin_url.rfind('/') {
            Some(i) if !admin_url[..i].ends_with('/') => format!("{}/{name}", &admin_url[..i]),
            _ => format!("{}/{name}", admin_url.trim_end_matches('/')),
        };
        Ok(Self {
            url,
            admin_url,
            name,
        })
    }
}

impl TempPostgres {
    /// Simulates the database going down (`false`: new connections refused, open ones
    /// terminated) and coming back (`true`).
    pub async fn set_available(&self, available: bool) -> Result<(), StorageError> {
        let mut admin = AsyncPgConnection::establish(&self.admin_url)
            .await
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        let name = &self.name;
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {available}"
            ))
            .await?;
        if !available {
            admin
                .batch_execute(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ))
                .await?;
        }
        Ok(())
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A SQLite database URL in a fresh temporary folder (kept alive by the returned guard).
pub fn temp_sqlite() -> std::io::Result<(String, TempDir)> {
    let dir = TempDir::new()?;
    let url = format!("sqlite://{}", dir.path.join("mcpgate.db").display());
    Ok((url, dir))
}

/// A temporary folder removed on drop.
#[derive(Debug)]
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let path =
            std::env::temp_dir().join(format!("mcpgate-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A unit of work that holds its connection for `duration` — a stand-in for a slow query —
/// so tests can exhaust the pool. Test support only.
pub async fn hold_connection(
    store: &crate::Store,
    duration: std::time::Duration,
) -> Result<(), StorageError> {
    crate::pool::with_conn!(store, |conn| {
        let _ = &conn;
        tokio::time::sleep(duration).await;
    });
    Ok(())
}

/// PostgreSQL only: the session's `statement_timeout`, `idle_in_transaction_session_timeout`
/// and `application_name`, as the server reports them.
pub async fn session_settings(store: &crate::Store) -> Result<Vec<String>, StorageError> {
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let mut out = Vec::new();
    for name in [
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "application_name",
    ] {
        let rows: Vec<Setting> = crate::pool::with_conn!(store, |conn| {
            diesel::sql_query(format!("SELECT current_setting('{name}') AS value"))
                .load(conn)
                .await?
        });
        out.extend(rows.into_iter().map(|r| r.value));
    }
    Ok(out)
}

impl crate::Store {
    /// Overwrites a user's stored email key, as an older mcpgate wrote it (trimmed and
    /// lower-cased only), to test that such rows are re-keyed.
    pub async fn set_email_key_for_tests(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<(), StorageError> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;

        use crate::pool::with_conn;
        use crate::schema::users;
        with_conn!(self, |conn| {
            diesel::update(users::table.find(user_id))
                .set(users::email_normalized.eq(key))
                .execute(conn)
                .await?;
        });
        Ok(())
    }
}
