//! Provider grants — a user's tokens at an identity provider, sealed by the caller — and the
//! refresh lease that lets many replicas refresh one grant exactly once.
//!
//! The protocol, with no transaction open while the caller talks to the provider:
//! 1. read the grant (`get_grant`), decide a refresh is due;
//! 2. `claim_refresh_lease(id, owner, version_read, ttl)`: one short `UPDATE … WHERE` the lease
//!    is free or expired and the version is the one read;
//! 3. on `Claimed`, call the provider, then `complete_refresh` writes the new tokens only if
//!    the version still matches and the lease is still ours, bumps the version and clears the
//!    lease; on failure `release_refresh_lease`;
//! 4. on `HeldByOther` wait and re-read; on `Changed` someone else refreshed: use theirs.
//!
//! A claimer that dies between 2 and 3 loses nothing: the old tokens stay, the lease expires.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::error::one_changed;
use crate::pool::with_conn;
use crate::schema::provider_grants as g;
use crate::{StorageError, Store, now_ms};

/// A grant as stored. Token columns are sealed bytes: storage never sees them in clear.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = g)]
pub struct ProviderGrant {
    pub id: String,
    pub user_id: String,
    pub identity_id: String,
    pub provider_id: String,
    pub access_token: Vec<u8>,
    pub refresh_token: Option<Vec<u8>>,
    pub id_token: Option<Vec<u8>>,
    pub expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub scopes: String,
    pub version: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub dead_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The sealed tokens a sign-in or a refresh produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantTokens {
    pub access_token: Vec<u8>,
    pub refresh_token: Option<Vec<u8>>,
    pub id_token: Option<Vec<u8>>,
    pub expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub scopes: String,
}

/// The outcome of trying to take the right to refresh a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseClaim {
    /// Ours until the lease ends; the grant is at this version.
    Claimed { version: i64 },
    /// Another replica or task is refreshing; its lease ends at `until` (ms).
    HeldByOther { until: i64 },
    /// The grant moved past the version read: someone refreshed it. Re-read and use theirs.
    Changed { version: i64 },
    /// The grant is gone or dead (`invalid_grant`): sign in again.
    Gone,
}

#[derive(Insertable)]
#[diesel(table_name = g)]
struct GrantRow<'a> {
    id: &'a str,
    user_id: &'a str,
    identity_id: &'a str,
    provider_id: &'a str,
    access_token: &'a [u8],
    refresh_token: Option<&'a [u8]>,
    id_token: Option<&'a [u8]>,
    expires_at: Option<i64>,
    refresh_expires_at: Option<i64>,
    scopes: &'a str,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

impl Store {
    /// Stores a new grant for an identity (at version 1). The caller picks the id, because
    /// the sealed tokens are bound to it.
    pub async fn create_grant(
        &self,
        id: &str,
        user_id: &str,
        identity_id: &str,
        provider_id: &str,
        tokens: &GrantTokens,
    ) -> Result<ProviderGrant, StorageError> {
        let now = now_ms();
        let row = GrantRow {
            id,
            user_id,
            identity_id,
            provider_id,
            access_token: &tokens.access_token,
            refresh_token: tokens.refresh_token.as_deref(),
            id_token: tokens.id_token.as_deref(),
            expires_at: tokens.expires_at,
            refresh_expires_at: tokens.refresh_expires_at,
            scopes: &tokens.scopes,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        with_conn!(self, |conn| {
            diesel::insert_into(g::table)
                .values(&row)
                .execute(conn)
                .await?;
        });
        self.get_grant(id).await
    }

    /// The user's newest grant that is not dead, if any.
    pub async fn latest_live_grant(
        &self,
        user_id: &str,
    ) -> Result<Option<ProviderGrant>, StorageError> {
        with_conn!(self, |conn| {
            Ok(g::table
                .filter(g::user_id.eq(user_id))
                .filter(g::dead_at.is_null())
                .order((g::created_at.desc(), g::id.desc()))
                .select(ProviderGrant::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// The user's live grants, newest first (at most `limit`).
    pub async fn live_grants(
        &self,
        user_id: &str,
        limit: i64,
    ) -> Result<Vec<ProviderGrant>, StorageError> {
        with_conn!(self, |conn| {
            Ok(g::table
                .filter(g::user_id.eq(user_id))
                .filter(g::dead_at.is_null())
                .order((g::created_at.desc(), g::id.desc()))
                .limit(limit)
                .select(ProviderGrant::as_select())
                .load(conn)
                .await?)
        })
    }

    /// The user's newest live grant at one provider, if any.
    pub async fn latest_live_grant_at(
        &self,
        user_id: &str,
        provider_id: &str,
    ) -> Result<Option<ProviderGrant>, StorageError> {
        with_conn!(self, |conn| {
            Ok(g::table
                .filter(g::user_id.eq(user_id))
                .filter(g::provider_id.eq(provider_id))
                .filter(g::dead_at.is_null())
                .order((g::created_at.desc(), g::id.desc()))
                .select(ProviderGrant::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// `NotFound` when there is no such grant.
    pub async fn get_grant(&self, id: &str) -> Result<ProviderGrant, StorageError> {
        with_conn!(self, |conn| {
            Ok(g::table
                .find(id)
                .select(ProviderGrant::as_select())
                .first(conn)
                .await?)
        })
    }

    /// Takes the right to refresh `id` for `ttl`, if the grant is still at `version` and
    /// nobody else holds an unexpired lease.
    pub async fn claim_refresh_lease(
        &self,
        id: &str,
        owner: &str,
        version: i64,
        ttl: Duration,
    ) -> Result<LeaseClaim, StorageError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        with_conn!(self, |conn| {
            let claimed = diesel::update(
                g::table
                    .find(id)
                    .filter(g::version.eq(version))
                    .filter(g::dead_at.is_null())
                    .filter(g::lease_until.is_null().or(g::lease_until.le(now))),
            )
            .set((g::lease_owner.eq(owner), g::lease_until.eq(until)))
            .execute(conn)
            .await?;
            if claimed == 1 {
                // (The unit of work's own value: `with_conn!` is this function's tail.)
                return Ok(Ok(LeaseClaim::Claimed { version }));
            }
            // Why not: one more short read on the same checkout.
            let row: Option<(i64, Option<i64>, Option<i64>)> = g::table
                .find(id)
                .select((g::version, g::lease_until, g::dead_at))
                .first(conn)
                .await
                .optional()?;
            Ok(match row {
                None | Some((_, _, Some(_))) => LeaseClaim::Gone,
                Some((current, _, None)) if current != version => {
                    LeaseClaim::Changed { version: current }
                }
                Some((_, Some(until), None)) => LeaseClaim::HeldByOther { until },
                // Lease freed between the update and the read: report it as just released.
                Some((_, None, None)) => LeaseClaim::HeldByOther { until: now },
            })
        })
    }

    /// Writes the refreshed tokens if `owner` still holds the lease and the grant is still at
    /// `version`; bumps the version and frees the lease. Returns the new version. `Conflict`
    /// when the lease was lost or the version moved: nothing is written.
    pub async fn complete_refresh(
        &self,
        id: &str,
        owner: &str,
        version: i64,
        tokens: &GrantTokens,
    ) -> Result<i64, StorageError> {
        let now = now_ms();
        let changed = with_conn!(self, |conn| {
            diesel::update(
                g::table
                    .find(id)
                    .filter(g::version.eq(version))
                    .filter(g::lease_owner.eq(owner))
                    .filter(g::dead_at.is_null()),
            )
            .set((
                g::access_token.eq(&tokens.access_token),
                g::refresh_token.eq(tokens.refresh_token.as_deref()),
                g::id_token.eq(tokens.id_token.as_deref()),
                g::expires_at.eq(tokens.expires_at),
                g::refresh_expires_at.eq(tokens.refresh_expires_at),
                g::scopes.eq(&tokens.scopes),
                g::version.eq(version + 1),
                g::lease_owner.eq(None::<String>),
                g::lease_until.eq(None::<i64>),
                g::updated_at.eq(now),
            ))
            .execute(conn)
            .await?
        });
        if changed == 1 {
            Ok(version + 1)
        } else {
            Err(StorageError::Conflict(
                "the refresh lease was lost or the grant changed".into(),
            ))
        }
    }

    /// Gives the lease back after a failed refresh (only if `owner` still holds it).
    pub async fn release_refresh_lease(&self, id: &str, owner: &str) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel::update(g::table.find(id).filter(g::lease_owner.eq(owner)))
                .set((
                    g::lease_owner.eq(None::<String>),
                    g::lease_until.eq(None::<i64>),
                ))
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Ends a grant the provider refused (`invalid_grant`): it is never refreshed again.
    pub async fn mark_grant_dead(&self, id: &str) -> Result<(), StorageError> {
        let now = now_ms();
        let changed = with_conn!(self, |conn| {
            diesel::update(g::table.find(id))
                .set((
                    g::dead_at.eq(now),
                    g::lease_owner.eq(None::<String>),
                    g::lease_until.eq(None::<i64>),
                    g::updated_at.eq(now),
                ))
                .execute(conn)
                .await?
        });
        one_changed(changed)
    }
}
