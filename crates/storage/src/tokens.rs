//! Tokens mcpgate issues, stored only as hashes: access tokens, and refresh tokens in families
//! so the reuse of a rotated one revokes everything descended from the same authorization.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::pool::with_conn;
use crate::schema::{access_tokens as at, refresh_tokens as rt, token_families as tf, users};
use crate::{StorageError, Store, now_ms};

/// Inside a transaction: marks the family revoked and revokes its access tokens. A macro so
/// the same statements compile for either backend's connection.
macro_rules! revoke_family_in {
    ($conn:expr, $family_id:expr, $now:expr) => {{
        diesel::update(
            tf::table
                .filter(tf::id.eq($family_id))
                .filter(tf::revoked_at.is_null()),
        )
        .set(tf::revoked_at.eq($now))
        .execute($conn)
        .await?;
        diesel::update(
            at::table
                .filter(at::family_id.eq($family_id))
                .filter(at::revoked_at.is_null()),
        )
        .set(at::revoked_at.eq($now))
        .execute($conn)
        .await?;
    }};
}

/// What an access-token lookup yields: enough to build a principal with no second read.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AccessTokenRecord {
    pub kind: String,
    pub family_id: Option<String>,
    pub user_id: String,
    pub client_id: Option<String>,
    pub resource: Option<String>,
    pub scopes: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub user_disabled_at: Option<i64>,
    pub family_revoked_at: Option<i64>,
}

impl AccessTokenRecord {
    /// Usable now: not expired, not revoked, its user enabled, its family alive.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.expires_at > now_ms
            && self.revoked_at.is_none()
            && self.user_disabled_at.is_none()
            && self.family_revoked_at.is_none()
    }
}

/// A new access token (its hash; the token itself is never stored).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = at)]
pub struct NewAccessToken {
    pub token_hash: Vec<u8>,
    /// `oauth` (bound to an upstream resource) or `api` (admin API and scripts).
    pub kind: String,
    pub family_id: Option<String>,
    pub user_id: String,
    pub client_id: Option<String>,
    pub resource: Option<String>,
    pub scopes: String,
    pub expires_at: i64,
    pub created_at: i64,
}

/// A new token family: the lineage of one authorization.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = tf)]
pub struct NewTokenFamily {
    pub id: String,
    pub user_id: String,
    pub client_id: Option<String>,
    pub resource: Option<String>,
    pub scopes: String,
    /// The family's absolute end: sliding refreshes never pass it.
    pub expires_at: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = rt)]
pub struct NewRefreshToken {
    pub token_hash: Vec<u8>,
    pub family_id: String,
    pub user_id: String,
    pub expires_at: i64,
    pub created_at: i64,
}

/// The family a presented refresh token belongs to, as `rotate_refresh_token` found it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct FamilyRecord {
    pub id: String,
    pub user_id: String,
    pub client_id: Option<String>,
    pub resource: Option<String>,
    pub scopes: String,
    pub expires_at: i64,
}

/// What rotation reads about a refresh token before spending it: rotated_at, expires_at,
/// the sealed successor, the family's revoked_at, the user's disabled_at, and the family.
type SpendCheck = (
    Option<i64>,
    i64,
    Option<Vec<u8>>,
    Option<i64>,
    Option<i64>,
    FamilyRecord,
);

/// What a rotation stores in place of the spent refresh token.
#[derive(Debug, Clone)]
pub struct Successors {
    pub refresh: NewRefreshToken,
    pub access: NewAccessToken,
    /// The new pair as the caller sealed it (never in the clear), kept on the spent token so a
    /// retry within the grace period gets the same pair back; `None` keeps nothing.
    pub sealed: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old token is spent; the new refresh and access tokens are stored.
    Rotated(FamilyRecord),
    /// The token was spent moments ago (within the grace period): a retry or a concurrent
    /// request of the same client, not theft. Nothing changed; `sealed` is the successor pair
    /// the first spend stored, as the caller sealed it.
    Retried {
        family: FamilyRecord,
        sealed: Vec<u8>,
    },
    /// The token had already been rotated: reuse. The whole family is now revoked.
    Reused,
    /// Unknown, expired, revoked, or its user disabled.
    Invalid,
    /// The caller declined the family (another client, another resource): nothing spent.
    Refused(FamilyRecord),
}

impl Store {
    pub async fn insert_access_token(&self, token: &NewAccessToken) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel::insert_into(at::table)
                .values(token)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// One short read by hash, with the user's and family's state joined in.
    pub async fn find_access_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<AccessTokenRecord>, StorageError> {
        with_conn!(self, |conn| {
            Ok(at::table
                .inner_join(users::table)
                .left_join(tf::table)
                .filter(at::token_hash.eq(token_hash))
                .select((
                    at::kind,
                    at::family_id,
                    at::user_id,
                    at::client_id,
                    at::resource,
                    at::scopes,
                    at::expires_at,
                    at::revoked_at,
                    users::disabled_at,
                    tf::revoked_at.nullable(),
                ))
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// Revokes one access token. `false` when there was none to revoke.
    pub async fn revoke_access_token(&self, token_hash: &[u8]) -> Result<bool, StorageError> {
        let now = now_ms();
        let changed = with_conn!(self, |conn| {
            diesel::update(
                at::table
                    .filter(at::token_hash.eq(token_hash))
                    .filter(at::revoked_at.is_null()),
            )
            .set(at::revoked_at.eq(now))
            .execute(conn)
            .await?
        });
        Ok(changed > 0)
    }

    /// Starts a family with its first refresh token and access token, in one transaction.
    pub async fn create_token_family(
        &self,
        family: &NewTokenFamily,
        refresh: &NewRefreshToken,
        access: &NewAccessToken,
    ) -> Result<(), StorageError> {
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    diesel::insert_into(tf::table)
                        .values(family)
                        .execute(conn)
                        .await?;
                    diesel::insert_into(rt::table)
                        .values(refresh)
                        .execute(conn)
                        .await?;
                    diesel::insert_into(at::table)
                        .values(access)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
                .await
            }
        )
    }

    /// Spends a refresh token and stores its successors, in one short transaction. Reuse of an
    /// already-rotated token revokes the whole family (OAuth 2.1 §4.3.1), except within
    /// `grace` of the spend: then the successor pair stored with the spent token is handed back
    /// ([`RotateOutcome::Retried`]), so a network retry or two requests sent at once are not
    /// taken for theft. `make_successors` receives the family and returns the new tokens, or
    /// `None` to refuse (the token is then not spent).
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &[u8],
        grace: std::time::Duration,
        make_successors: impl FnOnce(&FamilyRecord) -> Option<Successors> + Send,
    ) -> Result<RotateOutcome, StorageError> {
        let now = now_ms();
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        // Not retried on "database is locked": it writes first, so SQLite's busy_timeout
        // covers it (and `make_successors` runs once).
        with_conn!(self, |conn| {
            conn.transaction::<_, StorageError, _>(async |conn| {
                // Write first: the spend takes the database's write lock before anything is
                // read. (SQLite cannot upgrade a read transaction to a write one while another
                // writer is active: it fails at once instead of waiting.) The rotated_at guard
                // makes a concurrent second spend update nothing; on PostgreSQL it waits for
                // the first spend to commit, so it then reads the successor that one stored.
                let spent = diesel::update(
                    rt::table
                        .filter(rt::token_hash.eq(old_hash))
                        .filter(rt::rotated_at.is_null()),
                )
                .set(rt::rotated_at.eq(now))
                .execute(conn)
                .await?;
                let found: Option<SpendCheck> = rt::table
                    .inner_join(tf::table)
                    .inner_join(users::table)
                    .filter(rt::token_hash.eq(old_hash))
                    .select((
                        rt::rotated_at,
                        rt::expires_at,
                        rt::successor,
                        tf::revoked_at,
                        users::disabled_at,
                        (
                            tf::id,
                            tf::user_id,
                            tf::client_id,
                            tf::resource,
                            tf::scopes,
                            tf::expires_at,
                        ),
                    ))
                    .first(conn)
                    .await
                    .optional()?;
                let Some((rotated_at, expires_at, successor, revoked_at, disabled_at, family)) =
                    found
                else {
                    return Ok(RotateOutcome::Invalid);
                };
                let alive =
                    revoked_at.is_none() && disabled_at.is_none() && family.expires_at > now;
                if spent != 1 {
                    let within_grace = rotated_at
                        .is_some_and(|at| now.saturating_sub(at) <= grace_ms && grace_ms > 0);
                    if let Some(sealed) = successor
                        && within_grace
                        && alive
                    {
                        return Ok(RotateOutcome::Retried { family, sealed });
                    }
                    // Already rotated: reuse.
                    revoke_family_in!(conn, &family.id, now);
                    return Ok(RotateOutcome::Reused);
                }
                let unspend = async |conn: &mut _| {
                    diesel::update(rt::table.filter(rt::token_hash.eq(old_hash)))
                        .set(rt::rotated_at.eq(None::<i64>))
                        .execute(conn)
                        .await
                };
                if !alive || expires_at <= now {
                    unspend(conn).await?;
                    return Ok(RotateOutcome::Invalid);
                }
                let Some(next) = make_successors(&family) else {
                    unspend(conn).await?;
                    return Ok(RotateOutcome::Refused(family));
                };
                if grace_ms > 0
                    && let Some(sealed) = &next.sealed
                {
                    diesel::update(rt::table.filter(rt::token_hash.eq(old_hash)))
                        .set(rt::successor.eq(sealed))
                        .execute(conn)
                        .await?;
                }
                diesel::insert_into(rt::table)
                    .values(&next.refresh)
                    .execute(conn)
                    .await?;
                diesel::insert_into(at::table)
                    .values(&next.access)
                    .execute(conn)
                    .await?;
                Ok(RotateOutcome::Rotated(family))
            })
            .await
        })
    }

    /// Forgets the sealed successors of refresh tokens spent more than `grace` ago: they are
    /// kept only for the grace period. Returns how many were dropped. (A retry after the grace
    /// is reuse whether or not the sweep has run yet.)
    pub async fn forget_refresh_successors(
        &self,
        grace: std::time::Duration,
    ) -> Result<usize, StorageError> {
        let cutoff = now_ms().saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let dropped = with_conn!(self, |conn| {
            // Read first: an idle gateway has nothing to sweep, and on SQLite an UPDATE takes
            // the write lock even when it changes nothing.
            let due: Option<Vec<u8>> = rt::table
                .filter(rt::successor.is_not_null())
                .filter(rt::rotated_at.lt(cutoff))
                .select(rt::token_hash)
                .first(conn)
                .await
                .optional()?;
            if due.is_none() {
                0
            } else {
                diesel::update(
                    rt::table
                        .filter(rt::successor.is_not_null())
                        .filter(rt::rotated_at.lt(cutoff)),
                )
                .set(rt::successor.eq(None::<Vec<u8>>))
                .execute(conn)
                .await?
            }
        });
        Ok(dropped)
    }

    /// The family of a refresh token (spent or not), for revocation requests.
    pub async fn find_refresh_family(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<FamilyRecord>, StorageError> {
        with_conn!(self, |conn| {
            Ok(rt::table
                .inner_join(tf::table)
                .filter(rt::token_hash.eq(token_hash))
                .select((
                    tf::id,
                    tf::user_id,
                    tf::client_id,
                    tf::resource,
                    tf::scopes,
                    tf::expires_at,
                ))
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// Revokes a family and with it every access token it issued.
    pub async fn revoke_token_family(&self, family_id: &str) -> Result<(), StorageError> {
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    revoke_family_in!(conn, family_id, now);
                    Ok(())
                })
                .await
            }
        )
    }

    /// Revokes every token family, access token, personal access token and browser session of
    /// a user, except the token `keep` (the caller's own, after a password change). One
    /// transaction.
    pub async fn revoke_user_credentials(
        &self,
        user_id: &str,
        keep: Option<&[u8]>,
    ) -> Result<(), StorageError> {
        use crate::schema::browser_sessions as bs;
        use crate::schema::personal_tokens as pt;
        let now = now_ms();
        let keep = keep.unwrap_or(&[]).to_vec();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    diesel::update(
                        tf::table
                            .filter(tf::user_id.eq(user_id))
                            .filter(tf::revoked_at.is_null()),
                    )
                    .set(tf::revoked_at.eq(now))
                    .execute(conn)
                    .await?;
                    diesel::update(
                        at::table
                            .filter(at::user_id.eq(user_id))
                            .filter(at::revoked_at.is_null())
                            .filter(at::token_hash.ne(&keep)),
                    )
                    .set(at::revoked_at.eq(now))
                    .execute(conn)
                    .await?;
                    diesel::update(
                        pt::table
                            .filter(pt::user_id.eq(user_id))
                            .filter(pt::revoked_at.is_null())
                            .filter(pt::token_hash.ne(&keep)),
                    )
                    .set(pt::revoked_at.eq(now))
                    .execute(conn)
                    .await?;
                    diesel::delete(bs::table.filter(bs::user_id.eq(user_id)))
                        .execute(conn)
                        .await?;
                    Ok(())
                })
                .await
            }
        )
    }
}
