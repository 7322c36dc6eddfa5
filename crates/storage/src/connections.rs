//! Each user's own connections to upstreams (`user_oauth` grants, `user_secret` values), sealed
//! by the server before they get here. A `user_oauth` grant is refreshed under the same kind
//! of lease as provider grants: a short `UPDATE … WHERE lease expired` claims it, the network
//! call runs with no connection held, the result is written back with a version compare.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::pool::with_conn;
use crate::schema::user_connections as uc;
use crate::{LeaseClaim, StorageError, Store, now_ms};

/// One user's connection to one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = uc)]
pub struct ConnectedAccount {
    pub user_id: String,
    pub upstream: String,
    /// `user_oauth` or `user_secret`.
    pub kind: String,
    pub sealed: Vec<u8>,
    pub version: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub connected_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// Connects (or reconnects) `user_id` to `upstream`: a new grant or secret replaces the
    /// old one, bumps the version and frees any lease. Returns the new version.
    pub async fn put_user_connection(
        &self,
        user_id: &str,
        upstream: &str,
        kind: &str,
        sealed: &[u8],
    ) -> Result<i64, StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            diesel::insert_into(uc::table)
                .values((
                    uc::user_id.eq(user_id),
                    uc::upstream.eq(upstream),
                    uc::kind.eq(kind),
                    uc::sealed.eq(sealed),
                    uc::version.eq(1_i64),
                    uc::connected_at.eq(now),
                    uc::updated_at.eq(now),
                ))
                .on_conflict((uc::user_id, uc::upstream))
                .do_update()
                .set((
                    uc::kind.eq(kind),
                    uc::sealed.eq(sealed),
                    uc::version.eq(uc::version + 1_i64),
                    uc::lease_owner.eq(None::<String>),
                    uc::lease_until.eq(None::<i64>),
                    uc::connected_at.eq(now),
                    uc::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            // No RETURNING (SQLite builds without it): one more short read on the checkout.
            Ok(uc::table
                .find((user_id, upstream))
                .select(uc::version)
                .first(conn)
                .await?)
        })
    }

    pub async fn connected_account(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<Option<ConnectedAccount>, StorageError> {
        with_conn!(self, |conn| {
            Ok(uc::table
                .find((user_id, upstream))
                .select(ConnectedAccount::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// The user's connections, by upstream name (at most `limit`).
    pub async fn list_connected_accounts(
        &self,
        user_id: &str,
        limit: i64,
    ) -> Result<Vec<ConnectedAccount>, StorageError> {
        with_conn!(self, |conn| {
            Ok(uc::table
                .filter(uc::user_id.eq(user_id))
                .order(uc::upstream.asc())
                .limit(limit)
                .select(ConnectedAccount::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Disconnects; `false` when there was no connection.
    pub async fn delete_user_connection(
        &self,
        user_id: &str,
        upstream: &str,
    ) -> Result<bool, StorageError> {
        with_conn!(self, |conn| {
            let n = diesel::delete(uc::table.find((user_id, upstream)))
                .execute(conn)
                .await?;
            Ok(n == 1)
        })
    }

    /// Takes the right to refresh the connection for `ttl`, if it is still at `version` and
    /// nobody else holds an unexpired lease.
    pub async fn claim_connection_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        owner: &str,
        version: i64,
        ttl: Duration,
    ) -> Result<LeaseClaim, StorageError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        with_conn!(self, |conn| {
            let claimed = diesel::update(
                uc::table
                    .find((user_id, upstream))
                    .filter(uc::version.eq(version))
                    .filter(uc::lease_until.is_null().or(uc::lease_until.le(now))),
            )
            .set((uc::lease_owner.eq(owner), uc::lease_until.eq(until)))
            .execute(conn)
            .await?;
            if claimed == 1 {
                return Ok(Ok(LeaseClaim::Claimed { version })); // the unit of work's value: `with_conn!` is the tail
            }
            let row: Option<(i64, Option<i64>)> = uc::table
                .find((user_id, upstream))
                .select((uc::version, uc::lease_until))
                .first(conn)
                .await
                .optional()?;
            Ok(match row {
                None => LeaseClaim::Gone,
                Some((current, _)) if current != version => {
                    LeaseClaim::Changed { version: current }
                }
                Some((_, Some(until))) => LeaseClaim::HeldByOther { until },
                Some((_, None)) => LeaseClaim::HeldByOther { until: now },
            })
        })
    }

    /// Writes the refreshed (sealed) grant if `owner` still holds the lease and the
    /// connection is still at `version`; bumps the version and frees the lease. `Conflict`
    /// when the lease was lost or the version moved: nothing is written.
    pub async fn complete_connection_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        owner: &str,
        version: i64,
        sealed: &[u8],
    ) -> Result<i64, StorageError> {
        let now = now_ms();
        let changed = with_conn!(self, |conn| {
            diesel::update(
                uc::table
                    .find((user_id, upstream))
                    .filter(uc::version.eq(version))
                    .filter(uc::lease_owner.eq(owner)),
            )
            .set((
                uc::sealed.eq(sealed),
                uc::version.eq(version + 1),
                uc::lease_owner.eq(None::<String>),
                uc::lease_until.eq(None::<i64>),
                uc::updated_at.eq(now),
            ))
            .execute(conn)
            .await?
        });
        if changed == 1 {
            Ok(version + 1)
        } else {
            Err(StorageError::Conflict(
                "the refresh lease was lost or the connection changed".into(),
            ))
        }
    }

    /// Gives the lease back after a failed refresh (only if `owner` still holds it).
    pub async fn release_connection_refresh(
        &self,
        user_id: &str,
        upstream: &str,
        owner: &str,
    ) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel::update(
                uc::table
                    .find((user_id, upstream))
                    .filter(uc::lease_owner.eq(owner)),
            )
            .set((
                uc::lease_owner.eq(None::<String>),
                uc::lease_until.eq(None::<i64>),
            ))
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}
