//! The pools behind [`Store`], and the one way to borrow a connection: the `with_conn!` macro,
//! private to this crate, which checks a connection out, runs a block, and returns it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool::Runtime;
use deadpool::managed::{Manager, Object, Pool, PoolError, TimeoutType};
use diesel::SqliteConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;

use crate::StorageError;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to reach the database and how the pool behaves.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://…` (`postgresql://` too).
    pub url: String,
    pub max_connections: usize,
    /// How long a unit of work waits for a free connection before `Busy`.
    pub wait_timeout: Duration,
    /// How long opening a new connection may take before `Unavailable`.
    pub connect_timeout: Duration,
    /// PostgreSQL `statement_timeout` on every connection.
    pub statement_timeout: Duration,
    /// PostgreSQL `idle_in_transaction_session_timeout` on every connection.
    pub idle_in_transaction_timeout: Duration,
}

impl StoreOptions {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            wait_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(5),
        }
    }
}

/// A snapshot of the pool, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

pub(crate) type PgManager = AsyncDieselConnectionManager<AsyncPgConnection>;
pub(crate) type SqliteManager = AsyncDieselConnectionManager<SqliteConn>;

pub(crate) struct Stats {
    pub(crate) wait: crate::hist::Histogram,
    pub(crate) held: crate::hist::Histogram,
    /// The longest one unit of work may take: `statement_timeout` and a little, so the
    /// server's own limit normally answers first and this one only catches a database that
    /// stopped answering altogether.
    pub(crate) unit_timeout: Duration,
}

pub(crate) enum Pools {
    Postgres(Pool<PgManager>),
    Sqlite(Pool<SqliteManager>),
}

/// mcpgate's storage: units of work over a bounded pool. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pools: Arc<Pools>,
    pub(crate) stats: Arc<Stats>,
    /// For the one connection outside the pool: the policy change listener.
    url: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("pool", &self.pool_status())
            .finish()
    }
}

/// Checks out a connection, binds it to `$conn` for `$body`, and gives it back when the block
/// ends. The only place in mcpgate that touches a pooled connection.
///
/// `$body` runs inside an async block bounded in time ([`bounded`]): `?` in it works as
/// anywhere, but a `return` leaves only the unit of work — write the body as an expression
/// (`if … { Ok(a) } else { Ok(b) }`) instead of returning early.
macro_rules! with_conn {
    ($store:expr, |$conn:ident| $body:expr) => {{
        match &*$store.pools {
            $crate::pool::Pools::Postgres(pool) => {
                let mut held = $crate::pool::checkout(pool, &$store.stats).await?;
                let outcome = {
                    let $conn: &mut diesel_async::AsyncPgConnection = held.conn();
                    $crate::pool::bounded(&$store.stats, async {
                        Ok::<_, $crate::StorageError>($body)
                    })
                    .await
                };
                held.settle(outcome)?
            }
            $crate::pool::Pools::Sqlite(pool) => {
                let mut held = $crate::pool::checkout(pool, &$store.stats).await?;
                let outcome = {
                    let $conn: &mut $crate::pool::SqliteConn = held.conn();
                    $crate::pool::bounded(&$store.stats, async {
                        Ok::<_, $crate::StorageError>($body)
                    })
                    .await
                };
                held.settle(outcome)?
            }
        }
    }};
    // A transaction (`$body` evaluates to its `Result`). SQLite answers "database is locked"
    // at once, without waiting, when a transaction that has read tries to write while another
    // connection wrote in between (busy_timeout cannot help: waiting could deadlock). The
    // transaction rolled back, so it is run again after a short backoff, with the connection
    // back in the pool while it waits (a pool of one would otherwise stall everyone else).
    ($store:expr, transaction |$conn:ident| $body:expr) => {{
        match &*$store.pools {
            $crate::pool::Pools::Postgres(pool) => {
                let mut held = $crate::pool::checkout(pool, &$store.stats).await?;
                let outcome = {
                    let $conn: &mut diesel_async::AsyncPgConnection = held.conn();
                    $crate::pool::bounded(&$store.stats, async {
                        Ok::<_, $crate::StorageError>($body)
                    })
                    .await
                };
                held.settle(outcome)?
            }
            $crate::pool::Pools::Sqlite(pool) => {
                let mut attempt: u32 = 0;
                loop {
                    let result = {
                        let mut held = $crate::pool::checkout(pool, &$store.stats).await?;
                        let outcome = {
                            let $conn: &mut $crate::pool::SqliteConn = held.conn();
                            $crate::pool::bounded(&$store.stats, async {
                                Ok::<_, $crate::StorageError>($body)
                            })
                            .await
                        };
                        held.settle(outcome)?
                    };
                    match result {
                        Err(e)
                            if $crate::pool::sqlite_locked(&e)
                                && attempt < $crate::pool::LOCKED_RETRIES =>
                        {
                            attempt += 1;
                            $crate::pool::locked_backoff(attempt).await;
                        }
                        other => break other,
                    }
                }
            }
        }
    }};
}

/// Runs one unit of work with the store's time limit: a database that stops answering (a
/// frozen server, a dropped route) costs a request at most this long, never a hang.
pub(crate) async fn bounded<T>(
    stats: &Stats,
    work: impl std::future::Future<Output = Result<T, StorageError>>,
) -> Result<T, StorageError> {
    match tokio::time::timeout(stats.unit_timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(StorageError::Unavailable(
            "the database did not answer in time".into(),
        )),
    }
}

pub(crate) use with_conn;

/// How often a SQLite unit of work refused with "database is locked" is run again.
pub(crate) const LOCKED_RETRIES: u32 = 50;

/// Whether SQLite refused a unit of work because another connection was writing.
pub(crate) fn sqlite_locked(e: &crate::StorageError) -> bool {
    matches!(e, crate::StorageError::Query(m) if m.contains("database is locked"))
}

/// 1, 2, 4 … ms up to 32 ms, plus a random jitter drawn per call, so writers that collided
/// (tasks of one process included) do not collide again.
pub(crate) async fn locked_backoff(attempt: u32) {
    metrics::counter!("mcpgate_db_sqlite_locked_retries_total").increment(1);
    tokio::time::sleep(locked_backoff_delay(attempt)).await;
}

pub(crate) fn locked_backoff_delay(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(5);
    Duration::from_millis(base + fastrand::u64(0..base))
}

/// A checked-out connection that records how long it was held when it goes back.
pub(crate) struct Held<'s, M: Manager> {
    /// `None` only once discarded.
    object: Option<Object<M>>,
    since: Instant,
    stats: &'s Stats,
}

impl<M: Manager> Held<'_, M> {
    pub(crate) fn conn(&mut self) -> &mut Object<M> {
        self.object
            .as_mut()
            .unwrap_or_else(|| unreachable!("a connection is used after it was discarded"))
    }

    /// The unit of work's value; a connection that timed out or broke is closed instead of
    /// going back to the pool (it may be mid-query, or dead).
    pub(crate) fn settle<T>(
        &mut self,
        outcome: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Err(StorageError::Unavailable(_)) = &outcome
            && let Some(object) = self.object.take()
        {
            drop(Object::take(object));
        }
        outcome
    }
}

impl<M: Manager> Drop for Held<'_, M> {
    fn drop(&mut self) {
        let held = self.since.elapsed();
        self.stats.held.record(held);
        metrics::histogram!("mcpgate_db_checkout_held_seconds").record(held.as_secs_f64());
    }
}

pub(crate) async fn checkout<'s, M: Manager>(
    pool: &Pool<M>,
    stats: &'s Stats,
) -> Result<Held<'s, M>, StorageError>
where
    M::Error: std::fmt::Display,
{
    let started = Instant::now();
    let object = get_object(pool).await;
    stats.wait.record(started.elapsed());
    Ok(Held {
        object: Some(object?),
        since: Instant::now(),
        stats,
    })
}

/// Takes a connection from the pool, mapping a wait timeout to `Busy`.
pub(crate) async fn get_object<M: Manager>(pool: &Pool<M>) -> Result<Object<M>, StorageError>
where
    M::Error: std::fmt::Display,
{
    let started = Instant::now();
    let object = pool.get().await.map_err(|e| match e {
        PoolError::Timeout(TimeoutType::Wait) => StorageError::Busy,
        PoolError::Timeout(_) => StorageError::Unavailable("connecting timed out".into()),
        PoolError::Backend(e) => StorageError::Unavailable(e.to_string()),
        PoolError::Closed => StorageError::Unavailable("the pool is closed".into()),
        PoolError::NoRuntimeSpecified => {
            StorageError::Config("no runtime for pool timeouts".into())
        }
        PoolError::PostCreateHook(e) => StorageError::Unavailable(e.to_string()),
    });
    metrics::histogram!("mcpgate_db_pool_wait_seconds").record(started.elapsed().as_secs_f64());
    object
}

impl Store {
    /// Builds the pool for the URL's backend. Connections are opened lazily; use
    /// [`Store::ping`] to check the database is there.
    pub async fn connect(options: &StoreOptions) -> Result<Self, StorageError> {
        let pools = if let Some(path) = options.url.strip_prefix("sqlite://") {
            Pools::Sqlite(sqlite_pool(path, options)?)
        } else if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://")
        {
            Pools::Postgres(postgres_pool(options)?)
        } else {
            return Err(StorageError::Config(
                "database.url must start with sqlite:// or postgres://".into(),
            ));
        };
        Ok(Self {
            url: Arc::from(options.url.as_str()),
            pools: Arc::new(pools),
            stats: Arc::new(Stats {
                wait: crate::hist::Histogram::new(),
                held: crate::hist::Histogram::new(),
                unit_timeout: options.statement_timeout + Duration::from_secs(2),
            }),
        })
    }

    pub(crate) fn postgres_url(&self) -> Option<&str> {
        (self.backend() == Backend::Postgres).then_some(&*self.url)
    }

    pub fn backend(&self) -> Backend {
        match &*self.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Wait and hold times of pool checkouts since start (or the last reset).
    pub fn checkout_stats(&self) -> crate::CheckoutStats {
        let s = &self.stats;
        crate::CheckoutStats {
            checkouts: s.held.count(),
            wait_p50: s.wait.quantile(0.5),
            wait_p99: s.wait.quantile(0.99),
            wait_max: s.wait.max(),
            held_p50: s.held.quantile(0.5),
            held_p99: s.held.quantile(0.99),
            held_max: s.held.max(),
        }
    }

    pub fn reset_checkout_stats(&self) {
        self.stats.wait.reset();
        self.stats.held.reset();
    }

    /// One trivial round trip: is the database reachable with a free connection?
    pub async fn ping(&self) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), conn).await?;
            Ok(())
        })
    }

    pub fn pool_status(&self) -> PoolStatus {
        let status = match &*self.pools {
            Pools::Postgres(pool) => pool.status(),
            Pools::Sqlite(pool) => pool.status(),
        };
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }

    /// Publishes the pool gauges (size, idle, waiting). Called by the metrics endpoint.
    pub fn record_pool_metrics(&self) {
        let s = self.pool_status();
        metrics::gauge!("mcpgate_db_pool_max_size").set(s.max_size as f64);
        metrics::gauge!("mcpgate_db_pool_size").set(s.size as f64);
        metrics::gauge!("mcpgate_db_pool_idle").set(s.available as f64);
        metrics::gauge!("mcpgate_db_pool_waiting").set(s.waiting as f64);
    }

    /// Closes the pool: later calls fail with `Unavailable`.
    pub fn close(&self) {
        match &*self.pools {
            Pools::Postgres(pool) => pool.close(),
            Pools::Sqlite(pool) => pool.close(),
        }
    }
}

fn postgres_pool(options: &StoreOptions) -> Result<Pool<PgManager>, StorageError> {
    // Server-side safety nets on every connection: even a bug that left a transaction open
    // could not pin a connection for longer than these.
    let setup = format!(
        "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}; \
         SET application_name = 'mcpgate'",
        options.statement_timeout.as_millis(),
        options.idle_in_transaction_timeout.as_millis(),
    );
    let connect_timeout = options.connect_timeout;
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // Recycling checks for an open transaction and a broken flag, without the default extra
    // `SELECT 1` round trip per checkout; a connection that died since shows up as one
    // `Unavailable` (503) and is then dropped by the pool.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let setup = setup.clone();
        let url = url.to_owned();
        async move {
            let connect = async {
                let mut conn = AsyncPgConnection::establish(&url).await?;
                conn.batch_execute(&setup)
                    .await
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(conn)
            };
            tokio::time::timeout(connect_timeout, connect)
                .await
                .unwrap_or_else(|_| {
                    Err(diesel::ConnectionError::BadConnection(
                        "connect timed out".into(),
                    ))
                })
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(&options.url, config);
    build_pool(manager, options)
}

fn sqlite_pool(path: &str, options: &StoreOptions) -> Result<Pool<SqliteManager>, StorageError> {
    if path.is_empty() {
        return Err(StorageError::Config("sqlite:// needs a file path".into()));
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    let busy_ms = options.wait_timeout.as_millis();
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move {
            let mut conn = SqliteConn::establish(&url).await?;
            // WAL lets readers run beside the one writer; busy_timeout makes a writer wait for
            // the lock instead of failing at once (set first: switching to WAL takes a lock
            // too, and must wait for it, not fail); foreign keys are off by default in SQLite.
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
            ))
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path, config);
    build_pool(manager, options)
}

fn build_pool<M: Manager>(manager: M, options: &StoreOptions) -> Result<Pool<M>, StorageError> {
    Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StorageError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locked_backoff_jitter_is_drawn_per_call() {
        // Tasks of one process that collided must not wait exactly as long as each other.
        let delays: std::collections::BTreeSet<Duration> =
            (0..64).map(|_| locked_backoff_delay(5)).collect();
        assert!(delays.len() > 1, "{delays:?}");
        assert!(
            delays.iter().all(|d| (32..64).contains(&d.as_millis())),
            "{delays:?}"
        );
    }
}
