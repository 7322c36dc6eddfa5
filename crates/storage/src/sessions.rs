//! Browser sessions (the sign-in cookie), stored by hash.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::pool::with_conn;
use crate::schema::{browser_sessions as bs, users};
use crate::{StorageError, Store, now_ms};

/// A live session and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct SessionRecord {
    pub user_id: String,
    pub expires_at: i64,
    pub user_disabled_at: Option<i64>,
}

impl Store {
    pub async fn create_session(
        &self,
        id_hash: &[u8],
        user_id: &str,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            diesel::insert_into(bs::table)
                .values((
                    bs::id_hash.eq(id_hash),
                    bs::user_id.eq(user_id),
                    bs::expires_at.eq(expires_at),
                    bs::created_at.eq(now),
                    bs::last_seen_at.eq(now),
                ))
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// The session if it exists and has not expired.
    pub async fn find_session(
        &self,
        id_hash: &[u8],
    ) -> Result<Option<SessionRecord>, StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            Ok(bs::table
                .inner_join(users::table)
                .filter(bs::id_hash.eq(id_hash))
                .filter(bs::expires_at.gt(now))
                .select((bs::user_id, bs::expires_at, users::disabled_at))
                .first(conn)
                .await
                .optional()?)
        })
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel::delete(bs::table.filter(bs::id_hash.eq(id_hash)))
                .execute(conn)
                .await?;
        });
        Ok(())
    }
}
