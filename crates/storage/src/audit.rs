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

/// Which audit events to read: every filter is optional and they combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub upstream: Option<String>,
    /// A tool (or other item) name, or an action (`tools/call`, `signin`, `admin.role.put`).
    pub tool: Option<String>,
    pub decision: Option<String>,
    /// From this time (ms, inclusive).
    pub since: Option<i64>,
    /// Before this time (ms, exclusive).
    pub until: Option<i64>,
    /// The cursor: events older than this `(at, id)` (the last of the previous page).
    pub before: Option<(i64, String)>,
    /// At most this many (clamped to 1..=1000).
    pub limit: i64,
}

impl Store {
    /// Audit events matching `query`, newest first (`at`, then `id`, descending: a stable
    /// order the cursor continues).
    pub async fn query_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, StorageError> {
        with_conn!(self, |conn| {
            let mut q = ae::table.into_boxed();
            if let Some(user) = &query.user_id {
                q = q.filter(ae::user_id.eq(user));
            }
            if let Some(upstream) = &query.upstream {
                q = q.filter(ae::upstream.eq(upstream));
            }
            if let Some(tool) = &query.tool {
                q = q.filter(ae::target.eq(tool).or(ae::action.eq(tool)));
            }
            if let Some(decision) = &query.decision {
                q = q.filter(ae::decision.eq(decision));
            }
            if let Some(since) = query.since {
                q = q.filter(ae::at.ge(since));
            }
            if let Some(until) = query.until {
                q = q.filter(ae::at.lt(until));
            }
            if let Some((at, id)) = &query.before {
                q = q.filter(ae::at.lt(*at).or(ae::at.eq(*at).and(ae::id.lt(id))));
            }
            Ok(q.order((ae::at.desc(), ae::id.desc()))
                .limit(query.limit.clamp(1, 1000))
                .select(AuditEvent::as_select())
                .load(conn)
                .await?)
        })
    }
}
