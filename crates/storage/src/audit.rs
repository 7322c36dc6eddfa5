//! Audit events, written in batches off the request path.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::pool::{Pools, checkout, with_conn};
use crate::schema::audit_events as ae;
use crate::{StorageError, Store};

#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = ae, treat_none_as_default_value = false)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub user_id: Option<String>,
    pub action: String,
    pub upstream: Option<String>,
    pub target: Option<String>,
    /// `allow`, `deny`, or an outcome such as `signed_in`.
    pub decision: String,
    /// JSON with whatever explains the event (the grant that decided, the client, …).
    pub detail: String,
}

impl AuditEvent {
    pub fn new(action: impl Into<String>, decision: impl Into<String>) -> Self {
        Self {
            id: crate::users::new_id(),
            at: crate::now_ms(),
            user_id: None,
            action: action.into(),
            upstream: None,
            target: None,
            decision: decision.into(),
            detail: "{}".into(),
        }
    }
}

impl Store {
    /// Writes a batch in one statement.
    pub async fn insert_audit_events(&self, events: &[AuditEvent]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        match &*self.pools {
            // One multi-row statement.
            Pools::Postgres(pool) => {
                let mut held = checkout(pool, &self.stats).await?;
                diesel::insert_into(ae::table)
                    .values(events)
                    .execute(held.conn())
                    .await?;
            }
            // SQLite has no multi-row insert through diesel; one transaction keeps it to a
            // single commit.
            Pools::Sqlite(pool) => {
                let mut held = checkout(pool, &self.stats).await?;
                held.conn()
                    .transaction::<_, StorageError, _>(async |conn| {
                        for event in events {
                            diesel::insert_into(ae::table)
                                .values(event)
                                .execute(conn)
                                .await?;
                        }
                        Ok(())
                    })
                    .await?;
            }
        }
        Ok(())
    }

    /// The newest events first.
    pub async fn recent_audit_events(&self, limit: i64) -> Result<Vec<AuditEvent>, StorageError> {
        with_conn!(self, |conn| {
            Ok(ae::table
                .order((ae::at.desc(), ae::id.desc()))
                .limit(limit.clamp(1, 1000))
                .select(AuditEvent::as_select())
                .load(conn)
                .await?)
        })
    }
}
