//! What a person or an administrator sees of an account: its browser sessions, its consents,
//! its token families; OAuth clients as a list; deleting an account.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::error::one_changed;
use crate::pool::with_conn;
use crate::schema::{
    access_tokens as at, browser_sessions as bs, consents as co, oauth_clients as oc,
    token_families as tf, users,
};
use crate::{OAuthClient, StorageError, Store, now_ms};

/// A live browser session of a user, named by the hash of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct SessionInfo {
    pub id_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
}

/// What a user approved for a client on one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ConsentInfo {
    pub client_id: String,
    pub client_name: Option<String>,
    pub resource: String,
    pub scopes: String,
    pub created_at: i64,
}

/// A refresh-token family (one sign-in of one client) of a user.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct FamilyInfo {
    pub id: String,
    pub client_id: Option<String>,
    pub resource: Option<String>,
    pub scopes: String,
    pub revoked_at: Option<i64>,
    pub expires_at: i64,
    pub created_at: i64,
}

/// Bounds every list here: an account with more is an anomaly the page need not show whole.
const MAX_ROWS: i64 = 200;

impl Store {
    /// A user's live browser sessions, newest first.
    pub async fn list_user_sessions(
        &self,
        user_id: &str,
    ) -> Result<Vec<SessionInfo>, StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            Ok(bs::table
                .filter(bs::user_id.eq(user_id))
                .filter(bs::expires_at.gt(now))
                .order(bs::created_at.desc())
                .limit(MAX_ROWS)
                .select((
                    bs::id_hash,
                    bs::created_at,
                    bs::expires_at,
                    bs::last_seen_at,
                ))
                .load(conn)
                .await?)
        })
    }

    /// Ends one session of `user_id` (never another user's). `NotFound` when there is none.
    pub async fn delete_user_session(
        &self,
        user_id: &str,
        id_hash: &[u8],
    ) -> Result<(), StorageError> {
        let changed = with_conn!(self, |conn| {
            diesel::delete(
                bs::table
                    .filter(bs::user_id.eq(user_id))
                    .filter(bs::id_hash.eq(id_hash)),
            )
            .execute(conn)
            .await?
        });
        one_changed(changed.min(1))
    }

    /// Ends every browser session of a user; returns how many there were.
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<usize, StorageError> {
        Ok(with_conn!(self, |conn| {
            diesel::delete(bs::table.filter(bs::user_id.eq(user_id)))
                .execute(conn)
                .await?
        }))
    }

    /// What a user approved, with the client's name when the client still exists.
    pub async fn list_user_consents(
        &self,
        user_id: &str,
    ) -> Result<Vec<ConsentInfo>, StorageError> {
        with_conn!(self, |conn| {
            Ok(co::table
                .left_join(oc::table.on(oc::client_id.eq(co::client_id)))
                .filter(co::user_id.eq(user_id))
                .order(co::created_at.desc())
                .limit(MAX_ROWS)
                .select((
                    co::client_id,
                    oc::client_name.nullable(),
                    co::resource,
                    co::scopes,
                    co::created_at,
                ))
                .load(conn)
                .await?)
        })
    }

    /// A user's token families, newest first (revoked and expired ones included).
    pub async fn list_user_families(&self, user_id: &str) -> Result<Vec<FamilyInfo>, StorageError> {
        with_conn!(self, |conn| {
            Ok(tf::table
                .filter(tf::user_id.eq(user_id))
                .order(tf::created_at.desc())
                .limit(MAX_ROWS)
                .select((
                    tf::id,
                    tf::client_id,
                    tf::resource,
                    tf::scopes,
                    tf::revoked_at,
                    tf::expires_at,
                    tf::created_at,
                ))
                .load(conn)
                .await?)
        })
    }

    /// The user a token family belongs to, if it exists.
    pub async fn family_owner(&self, family_id: &str) -> Result<Option<String>, StorageError> {
        with_conn!(self, |conn| {
            Ok(tf::table
                .find(family_id)
                .select(tf::user_id)
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// A page of OAuth clients by id, after `after`.
    pub async fn list_clients(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OAuthClient>, StorageError> {
        let after = after.unwrap_or_default().to_owned();
        with_conn!(self, |conn| {
            Ok(oc::table
                .filter(oc::client_id.gt(&after))
                .order(oc::client_id.asc())
                .limit(limit.clamp(1, 500))
                .select(OAuthClient::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Revokes a client: every token family and access token it holds, every consent given to
    /// it, and its registration (a client may register again and ask anew). One transaction;
    /// returns the revoked families (for the other replicas' caches). `NotFound` for an
    /// unknown client.
    pub async fn revoke_client(&self, client_id: &str) -> Result<Vec<String>, StorageError> {
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let families: Vec<String> = tf::table
                        .filter(tf::client_id.eq(client_id))
                        .filter(tf::revoked_at.is_null())
                        .select(tf::id)
                        .load(conn)
                        .await?;
                    diesel::update(
                        tf::table
                            .filter(tf::client_id.eq(client_id))
                            .filter(tf::revoked_at.is_null()),
                    )
                    .set(tf::revoked_at.eq(now))
                    .execute(conn)
                    .await?;
                    diesel::update(
                        at::table
                            .filter(at::client_id.eq(client_id))
                            .filter(at::revoked_at.is_null()),
                    )
                    .set(at::revoked_at.eq(now))
                    .execute(conn)
                    .await?;
                    diesel::delete(co::table.filter(co::client_id.eq(client_id)))
                        .execute(conn)
                        .await?;
                    let deleted = diesel::delete(oc::table.find(client_id))
                        .execute(conn)
                        .await?;
                    one_changed(deleted)?;
                    Ok(families)
                })
                .await
            }
        )
    }

    /// Deletes an account and, through the foreign keys, everything that is only its own
    /// (sessions, tokens, identities, provider grants, consents, roles, team memberships).
    /// Audit events keep its id. `NotFound` when there is none.
    pub async fn delete_user(&self, id: &str) -> Result<(), StorageError> {
        let changed = with_conn!(self, |conn| {
            diesel::delete(users::table.find(id)).execute(conn).await?
        });
        one_changed(changed)
    }
}

impl Store {
    /// Users whose email contains `text` (case-insensitive, as normalised), by email, after
    /// `after`, at most `limit`.
    pub async fn search_users(
        &self,
        text: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<crate::User>, StorageError> {
        let escaped: String = crate::normalize_email(text)
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        let after = after.map(crate::normalize_email).unwrap_or_default();
        with_conn!(self, |conn| {
            Ok(users::table
                .filter(users::email_normalized.like(&pattern).escape('\\'))
                .filter(users::email_normalized.gt(&after))
                .order(users::email_normalized.asc())
                .limit(limit.clamp(1, 500))
                .select(crate::User::as_select())
                .load(conn)
                .await?)
        })
    }
}
