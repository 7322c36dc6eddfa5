//! Embedded migrations, one folder per backend.

use diesel_async::AsyncMigrationHarness;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::pool::{Pools, get_object};
use crate::{StorageError, Store};

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

impl Store {
    /// Applies every pending migration, then re-keys emails stored under an older
    /// normalisation ([`Store::rekey_emails`]: SQL cannot compute NFKC on SQLite); returns
    /// how many migrations ran (0 when up to date).
    ///
    /// diesel's harness is synchronous and uses `block_in_place`, so this must run on a
    /// multi-threaded tokio runtime.
    pub async fn migrate(&self) -> Result<usize, StorageError> {
        let applied = match &*self.pools {
            Pools::Postgres(pool) => run(
                AsyncMigrationHarness::new(get_object(pool).await?),
                POSTGRES,
            )?,
            Pools::Sqlite(pool) => {
                run(AsyncMigrationHarness::new(get_object(pool).await?), SQLITE)?
            }
        };
        let rekeyed = self.rekey_emails().await?;
        if rekeyed > 0 {
            tracing::info!(
                rekeyed,
                "user email keys brought up to the current normalisation"
            );
        }
        Ok(applied)
    }
}

impl Store {
    /// The names of the migrations `migrate` would apply, applying none (`mcpgate doctor`).
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StorageError> {
        match &*self.pools {
            Pools::Postgres(pool) => pending(
                AsyncMigrationHarness::new(get_object(pool).await?),
                POSTGRES,
            ),
            Pools::Sqlite(pool) => {
                pending(AsyncMigrationHarness::new(get_object(pool).await?), SQLITE)
            }
        }
    }
}

impl Store {
    /// Applies pending migrations up to and including the one whose name starts with
    /// `last` (a version such as `2026-12-08-000301`): the schema an earlier release left, for
    /// upgrade tests. Returns how many ran.
    pub async fn migrate_through(&self, last: &str) -> Result<usize, StorageError> {
        match &*self.pools {
            Pools::Postgres(pool) => through(
                AsyncMigrationHarness::new(get_object(pool).await?),
                POSTGRES,
                last,
            ),
            Pools::Sqlite(pool) => through(
                AsyncMigrationHarness::new(get_object(pool).await?),
                SQLITE,
                last,
            ),
        }
    }
}

fn through<H: MigrationHarness<B>, B: diesel::backend::Backend>(
    mut harness: H,
    migrations: EmbeddedMigrations,
    last: &str,
) -> Result<usize, StorageError> {
    let pending = harness
        .pending_migrations(migrations)
        .map_err(|e| StorageError::Migration(e.to_string()))?;
    let mut ran = 0;
    for next in pending {
        let name = next.name().to_string();
        if name.as_str() > last && !name.starts_with(last) {
            break;
        }
        harness
            .run_migration(next.as_ref())
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        ran += 1;
    }
    Ok(ran)
}

fn pending<H: MigrationHarness<B>, B: diesel::backend::Backend>(
    mut harness: H,
    migrations: EmbeddedMigrations,
) -> Result<Vec<String>, StorageError> {
    harness
        .pending_migrations(migrations)
        .map(|v| v.iter().map(|m| m.name().to_string()).collect())
        .map_err(|e| StorageError::Migration(e.to_string()))
}

fn run<H: MigrationHarness<B>, B: diesel::backend::Backend>(
    mut harness: H,
    migrations: EmbeddedMigrations,
) -> Result<usize, StorageError> {
    harness
        .run_pending_migrations(migrations)
        .map(|v| v.len())
        .map_err(|e| StorageError::Migration(e.to_string()))
}
