//! Static upstream secrets set through the admin API. The server seals each value with its key
//! ring before it gets here and opens it after; storage never holds or sees the clear value.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::pool::with_conn;
use crate::schema::upstream_secrets as us;
use crate::{StorageError, Store, now_ms};

/// One upstream's sealed secret, and who set it when.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = us)]
pub struct UpstreamSecret {
    pub upstream: String,
    pub sealed: Vec<u8>,
    pub updated_at: i64,
    pub updated_by: String,
}

impl Store {
    /// Sets or replaces an upstream's sealed secret.
    pub async fn put_upstream_secret(
        &self,
        upstream: &str,
        sealed: &[u8],
        updated_by: &str,
    ) -> Result<(), StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            diesel::insert_into(us::table)
                .values((
                    us::upstream.eq(upstream),
                    us::sealed.eq(sealed),
                    us::updated_at.eq(now),
                    us::updated_by.eq(updated_by),
                ))
                .on_conflict(us::upstream)
                .do_update()
                .set((
                    us::sealed.eq(sealed),
                    us::updated_at.eq(now),
                    us::updated_by.eq(updated_by),
                ))
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    pub async fn upstream_secret(
        &self,
        upstream: &str,
    ) -> Result<Option<UpstreamSecret>, StorageError> {
        with_conn!(self, |conn| {
            Ok(us::table
                .find(upstream)
                .select(UpstreamSecret::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// Removes an upstream's secret; `false` when none was set.
    pub async fn delete_upstream_secret(&self, upstream: &str) -> Result<bool, StorageError> {
        with_conn!(self, |conn| {
            let n = diesel::delete(us::table.find(upstream))
                .execute(conn)
                .await?;
            Ok(n == 1)
        })
    }
}
