//! Every value sealed at rest, read page by page and replaced only if unchanged: what key
//! rotation needs to move old values to the active key (the server's `keys` module opens and
//! re-seals; storage never sees a clear value).
//!
//! Long-lived values are re-sealed: provider grants (access, refresh and ID tokens), static
//! upstream secrets and users' connected accounts. Short-lived ones (PKCE verifiers of sign-ins under way, refresh
//! successors kept for the reuse grace) expire on their own; [`Store::sealed_values_page`]
//! lists them too, so a key count covers everything stored.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::pool::with_conn;
use crate::schema::upstream_secrets as us;
use crate::schema::user_connections as uc;
use crate::schema::{pending_logins as pl, provider_grants as pg, refresh_tokens as rt};
use crate::{StorageError, Store};

/// The tables holding sealed values, in the order they are walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    ProviderGrants,
    UpstreamSecrets,
    UserConnections,
    RefreshSuccessors,
    PendingLogins,
}

impl SealedTable {
    pub const ALL: [SealedTable; 5] = [
        Self::ProviderGrants,
        Self::UpstreamSecrets,
        Self::UserConnections,
        Self::RefreshSuccessors,
        Self::PendingLogins,
    ];

    /// The table name, as in the sealed values' place (AAD).
    pub fn name(self) -> &'static str {
        match self {
            Self::ProviderGrants => "provider_grants",
            Self::UpstreamSecrets => "upstream_secrets",
            Self::UserConnections => "user_connections",
            Self::RefreshSuccessors => "refresh_tokens",
            Self::PendingLogins => "pending_logins",
        }
    }

    /// Whether its values live long enough to be worth re-sealing (the others expire within
    /// minutes).
    pub fn long_lived(self) -> bool {
        matches!(
            self,
            Self::ProviderGrants | Self::UpstreamSecrets | Self::UserConnections
        )
    }
}

/// One row's sealed values: `(column, sealed)` pairs. `row` is the row key (for binary keys,
/// lower-case hex) and `stamp` what [`Store::replace_sealed`] checks has not changed.
#[derive(Debug, Clone)]
pub struct SealedRow {
    pub row: String,
    pub values: Vec<(&'static str, Vec<u8>)>,
    stamp: Stamp,
}

#[derive(Debug, Clone)]
enum Stamp {
    /// `provider_grants.version`: every refresh bumps it.
    Version(i64),
    /// The sealed value itself.
    Value(Vec<u8>),
    /// Not replaceable (short-lived tables).
    None,
}

/// A provider grant's id, access, refresh and ID token, and version.
type GrantSealed = (String, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>, i64);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Up to `limit` rows of `table` with sealed values, in key order after `after` (a row
    /// key from the previous page).
    pub async fn sealed_values_page(
        &self,
        table: SealedTable,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SealedRow>, StorageError> {
        let after = after.unwrap_or_default().to_owned();
        match table {
            SealedTable::ProviderGrants => {
                let rows: Vec<GrantSealed> = with_conn!(self, |conn| {
                    Ok::<_, StorageError>(
                        pg::table
                            .filter(pg::id.gt(&after))
                            .order(pg::id)
                            .limit(limit)
                            .select((
                                pg::id,
                                pg::access_token,
                                pg::refresh_token,
                                pg::id_token,
                                pg::version,
                            ))
                            .load(conn)
                            .await?,
                    )
                })?;
                Ok(rows
                    .into_iter()
                    .map(|(id, access, refresh, id_token, version)| {
                        let mut values = vec![("access_token", access)];
                        values.extend(refresh.map(|v| ("refresh_token", v)));
                        values.extend(id_token.map(|v| ("id_token", v)));
                        SealedRow {
                            row: id,
                            values,
                            stamp: Stamp::Version(version),
                        }
                    })
                    .collect())
            }
            SealedTable::UpstreamSecrets => {
                let rows: Vec<(String, Vec<u8>)> = with_conn!(self, |conn| {
                    Ok::<_, StorageError>(
                        us::table
                            .filter(us::upstream.gt(&after))
                            .order(us::upstream)
                            .limit(limit)
                            .select((us::upstream, us::sealed))
                            .load(conn)
                            .await?,
                    )
                })?;
                Ok(rows
                    .into_iter()
                    .map(|(upstream, sealed)| SealedRow {
                        row: upstream,
                        values: vec![("sealed", sealed.clone())],
                        stamp: Stamp::Value(sealed),
                    })
                    .collect())
            }
            SealedTable::UserConnections => {
                // Rows are `user_id/upstream` (the place the server seals them for); user ids
                // are generated and hold no `/`.
                let (user, upstream) = after.split_once('/').unwrap_or((after.as_str(), ""));
                let (user, upstream) = (user.to_owned(), upstream.to_owned());
                let rows: Vec<(String, String, Vec<u8>, i64)> = with_conn!(self, |conn| {
                    Ok::<_, StorageError>(
                        uc::table
                            .filter(
                                uc::user_id
                                    .gt(&user)
                                    .or(uc::user_id.eq(&user).and(uc::upstream.gt(&upstream))),
                            )
                            .order((uc::user_id, uc::upstream))
                            .limit(limit)
                            .select((uc::user_id, uc::upstream, uc::sealed, uc::version))
                            .load(conn)
                            .await?,
                    )
                })?;
                Ok(rows
                    .into_iter()
                    .map(|(user, upstream, sealed, version)| SealedRow {
                        row: format!("{user}/{upstream}"),
                        values: vec![("sealed", sealed)],
                        stamp: Stamp::Version(version),
                    })
                    .collect())
            }
            SealedTable::RefreshSuccessors => {
                let after = decode_hex(&after);
                let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = with_conn!(self, |conn| {
                    Ok::<_, StorageError>(
                        rt::table
                            .filter(rt::token_hash.gt(&after))
                            .filter(rt::successor.is_not_null())
                            .order(rt::token_hash)
                            .limit(limit)
                            .select((rt::token_hash, rt::successor))
                            .load(conn)
                            .await?,
                    )
                })?;
                Ok(rows
                    .into_iter()
                    .map(|(hash, successor)| SealedRow {
                        row: hex(&hash),
                        values: successor.map(|v| ("successor", v)).into_iter().collect(),
                        stamp: Stamp::None,
                    })
                    .collect())
            }
            SealedTable::PendingLogins => {
                let after = decode_hex(&after);
                let rows: Vec<(Vec<u8>, Vec<u8>)> = with_conn!(self, |conn| {
                    Ok::<_, StorageError>(
                        pl::table
                            .filter(pl::state_hash.gt(&after))
                            .order(pl::state_hash)
                            .limit(limit)
                            .select((pl::state_hash, pl::pkce_verifier))
                            .load(conn)
                            .await?,
                    )
                })?;
                Ok(rows
                    .into_iter()
                    .map(|(hash, verifier)| SealedRow {
                        row: hex(&hash),
                        values: vec![("pkce_verifier", verifier)],
                        stamp: Stamp::None,
                    })
                    .collect())
            }
        }
    }

    /// Replaces a row's sealed values with `values` (the same columns, re-sealed) if the row
    /// has not changed since it was read; `false` when it has (a refresh wrote new tokens,
    /// sealed with the active key already) or is gone. Short-lived tables are never replaced.
    pub async fn replace_sealed(
        &self,
        table: SealedTable,
        read: &SealedRow,
        values: &[(&'static str, Vec<u8>)],
    ) -> Result<bool, StorageError> {
        let value = |column: &str| {
            values
                .iter()
                .find(|(c, _)| *c == column)
                .map(|(_, v)| v.clone())
        };
        let changed = match (table, &read.stamp) {
            (SealedTable::ProviderGrants, Stamp::Version(version)) => {
                let Some(access) = value("access_token") else {
                    return Ok(false);
                };
                let refresh = value("refresh_token");
                let id_token = value("id_token");
                let (id, version) = (read.row.clone(), *version);
                with_conn!(self, |conn| {
                    // The version is not bumped: a refresh that read it before still writes
                    // (its tokens are sealed with the active key anyway).
                    Ok::<_, StorageError>(
                        diesel::update(
                            pg::table
                                .filter(pg::id.eq(&id))
                                .filter(pg::version.eq(version)),
                        )
                        .set((
                            pg::access_token.eq(access),
                            pg::refresh_token.eq(refresh),
                            pg::id_token.eq(id_token),
                        ))
                        .execute(conn)
                        .await?,
                    )
                })?
            }
            (SealedTable::UserConnections, Stamp::Version(version)) => {
                let Some(sealed) = value("sealed") else {
                    return Ok(false);
                };
                let Some((user, upstream)) = read.row.split_once('/') else {
                    return Ok(false);
                };
                let (user, upstream, version) = (user.to_owned(), upstream.to_owned(), *version);
                with_conn!(self, |conn| {
                    Ok::<_, StorageError>(
                        diesel::update(
                            uc::table
                                .filter(uc::user_id.eq(&user))
                                .filter(uc::upstream.eq(&upstream))
                                .filter(uc::version.eq(version)),
                        )
                        .set(uc::sealed.eq(sealed))
                        .execute(conn)
                        .await?,
                    )
                })?
            }
            (SealedTable::UpstreamSecrets, Stamp::Value(old)) => {
                let Some(sealed) = value("sealed") else {
                    return Ok(false);
                };
                let (upstream, old) = (read.row.clone(), old.clone());
                with_conn!(self, |conn| {
                    Ok::<_, StorageError>(
                        diesel::update(
                            us::table
                                .filter(us::upstream.eq(&upstream))
                                .filter(us::sealed.eq(old)),
                        )
                        .set(us::sealed.eq(sealed))
                        .execute(conn)
                        .await?,
                    )
                })?
            }
            _ => 0,
        };
        Ok(changed == 1)
    }
}

fn decode_hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
