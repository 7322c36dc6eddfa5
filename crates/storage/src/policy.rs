//! The stored policy and the policy version. Reads come in two shapes: the whole policy (roles,
//! grants, mappings; read when the version moves) and one user's access (direct roles, team
//! roles, the admin flag; read on a cache miss). Both are one short query block.
//!
//! The version is bumped by every change to roles, grants, memberships or mappings (in the
//! same transaction, see `roles.rs`), so caches keyed by it see the change on the next
//! request. On PostgreSQL the bump also sends `NOTIFY mcpgate_policy` (delivered on commit),
//! which [`Store::policy_changes`] turns into a stream of versions for other replicas.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::pool::with_conn;
use crate::schema::{
    policy_version as pv, role_grants as rg, role_mappings as rm, roles, team_members as tm,
    team_roles as tr, user_roles as ur, users,
};
use crate::{Backend, StorageError, Store};

/// The PostgreSQL channel policy changes are announced on; the payload is the new version.
pub(crate) const CHANNEL: &str = "mcpgate_policy";

/// One grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    /// `allow` or `deny`.
    pub effect: String,
    pub action: String,
    pub upstream: String,
    pub target: String,
}

/// One role with its grants in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRole {
    pub name: String,
    pub description: String,
    pub grants: Vec<StoredGrant>,
}

/// One claim → role mapping rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMapping {
    pub id: String,
    pub provider: Option<String>,
    pub claim: String,
    pub value: String,
    pub role: String,
}

/// The roles and mapping rules kept in the database, at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredPolicy {
    pub version: i64,
    /// By name.
    pub roles: Vec<StoredRole>,
    /// Oldest first.
    pub mappings: Vec<StoredMapping>,
}

/// What one user holds, as stored: the input of an RBAC decision besides the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAccess {
    /// False when no such user is stored (a principal from elsewhere: default role only).
    pub exists: bool,
    pub is_admin: bool,
    pub disabled: bool,
    /// Roles given directly.
    pub roles: Vec<String>,
    /// Roles of the user's teams (deduplicated).
    pub team_roles: Vec<String>,
}

impl Store {
    pub async fn policy_version(&self) -> Result<i64, StorageError> {
        with_conn!(self, |conn| {
            Ok(pv::table.find(1).select(pv::version).first(conn).await?)
        })
    }

    /// Bumps the version (and notifies other replicas); returns the new one.
    pub async fn bump_policy_version(&self) -> Result<i64, StorageError> {
        let notify = self.backend() == Backend::Postgres;
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    Ok(crate::roles::bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Every stored role with its grants, every mapping rule, and the version they belong to,
    /// read in one transaction (a consistent snapshot).
    pub async fn load_policy(&self) -> Result<StoredPolicy, StorageError> {
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let version: i64 = pv::table.find(1).select(pv::version).first(conn).await?;
                    let role_rows: Vec<(String, String, String)> = roles::table
                        .order(roles::name)
                        .select((roles::id, roles::name, roles::description))
                        .load(conn)
                        .await?;
                    let grant_rows: Vec<(String, String, String, String, String)> = rg::table
                        .order((rg::role_id, rg::position))
                        .select((
                            rg::role_id,
                            rg::effect,
                            rg::action,
                            rg::upstream_pattern,
                            rg::target_pattern,
                        ))
                        .load(conn)
                        .await?;
                    let mapping_rows: Vec<(String, Option<String>, String, String, String)> =
                        rm::table
                            .inner_join(roles::table)
                            .order((rm::created_at, rm::id))
                            .select((
                                rm::id,
                                rm::provider_id,
                                rm::claim_path,
                                rm::claim_value,
                                roles::name,
                            ))
                            .load(conn)
                            .await?;
                    Ok(assemble(version, role_rows, grant_rows, mapping_rows))
                })
                .await
            }
        )
    }

    /// One user's admin flag, direct roles and team roles, in one short query block.
    pub async fn user_access(&self, user_id: &str) -> Result<UserAccess, StorageError> {
        with_conn!(self, |conn| {
            let user: Option<(bool, Option<i64>)> = users::table
                .find(user_id)
                .select((users::is_admin, users::disabled_at))
                .first(conn)
                .await
                .optional()?;
            let Some((is_admin, disabled_at)) = user else {
                // (The unit of work's own value: `with_conn!` is this function's tail.)
                return Ok(Ok(UserAccess::default()));
            };
            let direct: Vec<String> = ur::table
                .inner_join(roles::table)
                .filter(ur::user_id.eq(user_id))
                .order(roles::name)
                .select(roles::name)
                .load(conn)
                .await?;
            let team: Vec<String> = tr::table
                .inner_join(roles::table)
                .filter(
                    tr::team_id.eq_any(
                        tm::table
                            .filter(tm::user_id.eq(user_id))
                            .select(tm::team_id),
                    ),
                )
                .select(roles::name)
                .distinct()
                .order(roles::name)
                .load(conn)
                .await?;
            Ok(UserAccess {
                exists: true,
                is_admin,
                disabled: disabled_at.is_some(),
                roles: direct,
                team_roles: team,
            })
        })
    }

    /// Policy versions announced by any replica (this one included), for dropping caches.
    ///
    /// On PostgreSQL a task holds one plain connection outside the pool (so it never takes a
    /// pooled connection from requests), `LISTEN`s, and reconnects after a failure; after a
    /// reconnect it re-reads the version, since notifications sent meanwhile are lost. The
    /// task ends when every receiver is dropped. On SQLite (one process) the receiver never
    /// changes: changes made here are seen through the caller's own bookkeeping, and a TTL
    /// bounds what another process changed.
    pub fn policy_changes(&self) -> watch::Receiver<i64> {
        let (tx, rx) = watch::channel(0);
        if let Some(url) = self.postgres_url() {
            let url = url.to_owned();
            tokio::spawn(async move { listen(url, tx).await });
        }
        rx
    }
}

fn assemble(
    version: i64,
    role_rows: Vec<(String, String, String)>,
    grant_rows: Vec<(String, String, String, String, String)>,
    mapping_rows: Vec<(String, Option<String>, String, String, String)>,
) -> StoredPolicy {
    let mut by_id = std::collections::HashMap::with_capacity(role_rows.len());
    let mut roles: Vec<StoredRole> = Vec::with_capacity(role_rows.len());
    for (id, name, description) in role_rows {
        by_id.insert(id, roles.len());
        roles.push(StoredRole {
            name,
            description,
            grants: Vec::new(),
        });
    }
    for (role_id, effect, action, upstream, target) in grant_rows {
        if let Some(&i) = by_id.get(&role_id) {
            roles[i].grants.push(StoredGrant {
                effect,
                action,
                upstream,
                target,
            });
        }
    }
    let mappings = mapping_rows
        .into_iter()
        .map(|(id, provider, claim, value, role)| StoredMapping {
            id,
            provider,
            claim,
            value,
            role,
        })
        .collect();
    StoredPolicy {
        version,
        roles,
        mappings,
    }
}

const RECONNECT_AFTER: Duration = Duration::from_secs(1);

async fn listen(url: String, tx: watch::Sender<i64>) {
    loop {
        tokio::select! {
            () = tx.closed() => return,
            result = listen_once(&url, &tx) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "policy change listener lost its connection; reconnecting");
                }
            }
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
    }
}

async fn listen_once(url: &str, tx: &watch::Sender<i64>) -> Result<(), StorageError> {
    let mut conn = tokio::time::timeout(Duration::from_secs(5), AsyncPgConnection::establish(url))
        .await
        .map_err(|_| StorageError::Unavailable("connecting timed out".into()))?
        .map_err(|e| StorageError::Unavailable(e.to_string()))?;
    conn.batch_execute(&format!(
        "SET application_name = 'mcpgate-listener'; LISTEN {CHANNEL}"
    ))
    .await?;
    // Whatever changed while we were not listening.
    let version: i64 = pv::table
        .find(1)
        .select(pv::version)
        .first(&mut conn)
        .await?;
    tx.send_replace(version);
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    while let Some(notification) = notifications.next().await {
        let notification = notification?;
        if let Ok(version) = notification.payload.parse::<i64>() {
            tx.send_if_modified(|current| {
                let newer = version > *current;
                if newer {
                    *current = version;
                }
                newer
            });
        }
    }
    Err(StorageError::Unavailable(
        "the notification stream ended".into(),
    ))
}

/// One server connection as PostgreSQL sees it (`pg_stat_activity`), for load tests and
/// diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Activity {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub state: Option<String>,
    /// Time in the current state.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub in_state_ms: i64,
}

impl Store {
    /// The other connections named `application_name` (PostgreSQL only; empty on SQLite).
    pub async fn connection_activity(
        &self,
        application_name: &str,
    ) -> Result<Vec<Activity>, StorageError> {
        if self.backend() != Backend::Postgres {
            return Ok(Vec::new());
        }
        with_conn!(self, |conn| {
            Ok(diesel::sql_query(
                "SELECT state, COALESCE((EXTRACT(EPOCH FROM clock_timestamp() - state_change) \
                 * 1000)::bigint, 0) AS in_state_ms FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
            )
            .bind::<diesel::sql_types::Text, _>(application_name)
            .load::<Activity>(conn)
            .await?)
        })
    }
}
