//! The policy version: bumped by every change to roles, grants, memberships or mappings, so
//! caches keyed by it see the change on the next request.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::pool::with_conn;
use crate::schema::policy_version as pv;
use crate::{StorageError, Store};

impl Store {
    pub async fn policy_version(&self) -> Result<i64, StorageError> {
        with_conn!(self, |conn| {
            Ok(pv::table.find(1).select(pv::version).first(conn).await?)
        })
    }

    /// Bumps the version; returns the new one.
    pub async fn bump_policy_version(&self) -> Result<i64, StorageError> {
        with_conn!(self, |conn| {
            conn.transaction::<_, StorageError, _>(async |conn| {
                diesel::update(pv::table.find(1))
                    .set(pv::version.eq(pv::version + 1))
                    .execute(conn)
                    .await?;
                Ok(pv::table.find(1).select(pv::version).first(conn).await?)
            })
            .await
        })
    }
}
