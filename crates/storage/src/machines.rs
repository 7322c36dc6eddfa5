//! Callers without a person at a browser: service clients (the client-credentials grant), each
//! with a user row of its own so roles decide its calls as they decide a person's, and
//! personal access tokens of users. Secrets and tokens are stored only as hashes.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::error::one_changed;
use crate::pool::with_conn;
use crate::schema::{
    access_tokens as at, browser_sessions as bs, personal_tokens as pt, service_clients as sc,
    token_families as tf, users,
};
use crate::{StorageError, Store, now_ms};

/// A service client as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sc)]
pub struct ServiceClient {
    pub client_id: String,
    /// The user row that is this client's principal.
    pub user_id: String,
    pub name: String,
    /// JSON array of upstream names.
    pub upstreams: String,
    pub scopes: String,
    pub secret_hash: Vec<u8>,
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_expires_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ServiceClient {
    /// The secret hashes that authenticate the client now: the current one, and the previous
    /// one while a rotation is in progress.
    pub fn valid_secret_hashes(&self, now_ms: i64) -> impl Iterator<Item = &[u8]> {
        let previous = self
            .previous_secret_hash
            .as_deref()
            .filter(|_| self.previous_expires_at.is_none_or(|t| t > now_ms));
        std::iter::once(self.secret_hash.as_slice()).chain(previous)
    }
}

/// What creating a service client needs. Its user row gets `email` (a reserved address that
/// can never receive mail nor sign in: the row has no password and no identity).
#[derive(Debug, Clone)]
pub struct NewServiceClient {
    pub client_id: String,
    pub name: String,
    pub email: String,
    pub upstreams: String,
    pub scopes: String,
    pub secret_hash: Vec<u8>,
}

/// A personal access token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = pt)]
pub struct PersonalToken {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub name: String,
    /// JSON array of upstream names.
    pub upstreams: String,
    pub scopes: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

impl PersonalToken {
    /// Usable now: not expired, not revoked (the user's state is checked by the lookup).
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.expires_at > now_ms && self.revoked_at.is_none()
    }
}

impl Store {
    /// Creates a service client and the user row that is its principal, in one transaction.
    /// `Conflict` when the client id (or its address) is taken.
    pub async fn create_service_client(
        &self,
        new: &NewServiceClient,
    ) -> Result<ServiceClient, StorageError> {
        let now = now_ms();
        let user_id = crate::users::new_id();
        let record = ServiceClient {
            client_id: new.client_id.clone(),
            user_id: user_id.clone(),
            name: new.name.clone(),
            upstreams: new.upstreams.clone(),
            scopes: new.scopes.clone(),
            secret_hash: new.secret_hash.clone(),
            previous_secret_hash: None,
            previous_expires_at: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        let normalized = crate::users::normalize_email(&new.email);
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    diesel::insert_into(users::table)
                        .values((
                            users::id.eq(&user_id),
                            users::email.eq(&new.email),
                            users::email_normalized.eq(&normalized),
                            users::display_name.eq(&new.name),
                            users::is_admin.eq(false),
                            users::created_at.eq(now),
                            users::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    diesel::insert_into(sc::table)
                        .values((
                            sc::client_id.eq(&record.client_id),
                            sc::user_id.eq(&record.user_id),
                            sc::name.eq(&record.name),
                            sc::upstreams.eq(&record.upstreams),
                            sc::scopes.eq(&record.scopes),
                            sc::secret_hash.eq(&record.secret_hash),
                            sc::created_at.eq(now),
                            sc::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    Ok(())
                })
                .await
            }
        )?;
        Ok(record)
    }

    pub async fn get_service_client(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceClient>, StorageError> {
        with_conn!(self, |conn| {
            Ok(sc::table
                .find(client_id)
                .select(ServiceClient::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    pub async fn list_service_clients(&self) -> Result<Vec<ServiceClient>, StorageError> {
        with_conn!(self, |conn| {
            Ok(sc::table
                .order(sc::created_at.asc())
                .limit(10_000)
                .select(ServiceClient::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Makes `new_hash` the current secret; the current one stays valid until
    /// `previous_expires_at` (or until retired). `NotFound` for an unknown client.
    pub async fn rotate_service_secret(
        &self,
        client_id: &str,
        new_hash: &[u8],
        previous_expires_at: i64,
    ) -> Result<(), StorageError> {
        let now = now_ms();
        let changed = with_conn!(self, |conn| {
            diesel::update(sc::table.find(client_id))
                .set((
                    sc::previous_secret_hash.eq(sc::secret_hash.nullable()),
                    sc::previous_expires_at.eq(previous_expires_at),
                    sc::secret_hash.eq(new_hash),
                    sc::updated_at.eq(now),
                ))
                .execute(conn)
                .await?
        });
        one_changed(changed)
    }

    /// Ends a rotation: only the current secret is valid from now on.
    pub async fn retire_service_secret(&self, client_id: &str) -> Result<(), StorageError> {
        let now = now_ms();
        let changed = with_conn!(self, |conn| {
            diesel::update(sc::table.find(client_id))
                .set((
                    sc::previous_secret_hash.eq(None::<Vec<u8>>),
                    sc::previous_expires_at.eq(None::<i64>),
                    sc::updated_at.eq(now),
                ))
                .execute(conn)
                .await?
        });
        one_changed(changed)
    }

    /// Disables a service client (and its user row) and revokes every token it holds, in one
    /// transaction; enabling lets it ask for new tokens again. Returns its user id.
    pub async fn set_service_client_disabled(
        &self,
        client_id: &str,
        disabled: bool,
    ) -> Result<String, StorageError> {
        let now = now_ms();
        let at_time = disabled.then_some(now);
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let user_id: String = sc::table
                        .find(client_id)
                        .select(sc::user_id)
                        .first(conn)
                        .await?;
                    diesel::update(sc::table.find(client_id))
                        .set((sc::disabled_at.eq(at_time), sc::updated_at.eq(now)))
                        .execute(conn)
                        .await?;
                    diesel::update(users::table.find(&user_id))
                        .set((users::disabled_at.eq(at_time), users::updated_at.eq(now)))
                        .execute(conn)
                        .await?;
                    if disabled {
                        diesel::update(
                            at::table
                                .filter(at::user_id.eq(&user_id))
                                .filter(at::revoked_at.is_null()),
                        )
                        .set(at::revoked_at.eq(now))
                        .execute(conn)
                        .await?;
                        diesel::update(
                            tf::table
                                .filter(tf::user_id.eq(&user_id))
                                .filter(tf::revoked_at.is_null()),
                        )
                        .set(tf::revoked_at.eq(now))
                        .execute(conn)
                        .await?;
                        diesel::delete(bs::table.filter(bs::user_id.eq(&user_id)))
                            .execute(conn)
                            .await?;
                    }
                    Ok(user_id)
                })
                .await
            }
        )
    }

    /// Deletes a service client with its user row, roles and tokens. Returns its user id.
    pub async fn delete_service_client(&self, client_id: &str) -> Result<String, StorageError> {
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let user_id: String = sc::table
                        .find(client_id)
                        .select(sc::user_id)
                        .first(conn)
                        .await?;
                    diesel::delete(sc::table.find(client_id))
                        .execute(conn)
                        .await?;
                    // Cascades to roles, team memberships and tokens.
                    diesel::delete(users::table.find(&user_id))
                        .execute(conn)
                        .await?;
                    Ok(user_id)
                })
                .await
            }
        )
    }

    pub async fn insert_personal_token(&self, token: &PersonalToken) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel::insert_into(pt::table)
                .values(token)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// A user's tokens, newest first (revoked and expired ones included).
    pub async fn list_personal_tokens(
        &self,
        user_id: &str,
    ) -> Result<Vec<PersonalToken>, StorageError> {
        with_conn!(self, |conn| {
            Ok(pt::table
                .filter(pt::user_id.eq(user_id))
                .order(pt::created_at.desc())
                .limit(1_000)
                .select(PersonalToken::as_select())
                .load(conn)
                .await?)
        })
    }

    pub async fn count_active_personal_tokens(&self, user_id: &str) -> Result<i64, StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            Ok(pt::table
                .filter(pt::user_id.eq(user_id))
                .filter(pt::revoked_at.is_null())
                .filter(pt::expires_at.gt(now))
                .count()
                .get_result(conn)
                .await?)
        })
    }

    /// One short read by hash, with whether the token's user is disabled.
    pub async fn find_personal_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(PersonalToken, bool)>, StorageError> {
        with_conn!(self, |conn| {
            let found: Option<(PersonalToken, Option<i64>)> = pt::table
                .inner_join(users::table)
                .filter(pt::token_hash.eq(token_hash))
                .select((PersonalToken::as_select(), users::disabled_at))
                .first(conn)
                .await
                .optional()?;
            Ok(found.map(|(t, disabled_at)| (t, disabled_at.is_some())))
        })
    }

    /// Revokes a token of `user_id` (`None`: of anyone). Returns the token's hash, or `None`
    /// when there was no such active token.
    pub async fn revoke_personal_token(
        &self,
        id: &str,
        user_id: Option<&str>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            let mut query = diesel::update(pt::table)
                .filter(pt::id.eq(id))
                .filter(pt::revoked_at.is_null())
                .into_boxed();
            if let Some(user_id) = user_id {
                query = query.filter(pt::user_id.eq(user_id));
            }
            let changed = query.set(pt::revoked_at.eq(now)).execute(conn).await?;
            if changed == 0 {
                Ok(None)
            } else {
                Ok(Some(
                    pt::table
                        .find(id)
                        .select(pt::token_hash)
                        .first(conn)
                        .await?,
                ))
            }
        })
    }

    /// Records when tokens were last used: `(id, at)` pairs, one short transaction; a time
    /// never moves back.
    pub async fn touch_personal_tokens(&self, uses: &[(String, i64)]) -> Result<(), StorageError> {
        if uses.is_empty() {
            return Ok(());
        }
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    for (id, at_ms) in uses {
                        diesel::update(
                            pt::table
                                .filter(pt::id.eq(id))
                                .filter(pt::last_used_at.is_null().or(pt::last_used_at.lt(*at_ms))),
                        )
                        .set(pt::last_used_at.eq(*at_ms))
                        .execute(conn)
                        .await?;
                    }
                    Ok(())
                })
                .await
            }
        )
    }
}
