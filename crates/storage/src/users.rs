//! Users: local accounts and the people federated sign-in creates.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::error::one_changed;
use crate::pool::with_conn;
use crate::schema::users;
use crate::{StorageError, Store, now_ms};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_normalized: String,
    pub display_name: Option<String>,
    /// PHC string; `None` for users who only sign in through an identity provider.
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

/// What creating a user needs.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub is_admin: bool,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct UserRow<'a> {
    id: &'a str,
    email: &'a str,
    email_normalized: &'a str,
    display_name: Option<&'a str>,
    password_hash: Option<&'a str>,
    is_admin: bool,
    created_at: i64,
    updated_at: i64,
}

/// The uniqueness key of an email (NFKC, lower case, trimmed: see
/// [`mcpgate_core::email::normalize`]).
pub fn normalize_email(email: &str) -> String {
    mcpgate_core::email::normalize(email)
}

/// A fresh random id (UUID v4), the form every row id takes.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Store {
    /// Creates a user. `Conflict` when the (normalised) email is taken.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, StorageError> {
        let id = new_id();
        let now = now_ms();
        let normalized = normalize_email(&new.email);
        let row = UserRow {
            id: &id,
            email: new.email.trim(),
            email_normalized: &normalized,
            display_name: new.display_name.as_deref(),
            password_hash: new.password_hash.as_deref(),
            is_admin: new.is_admin,
            created_at: now,
            updated_at: now,
        };
        with_conn!(self, |conn| {
            diesel::insert_into(users::table)
                .values(&row)
                .execute(conn)
                .await?;
        });
        Ok(User {
            id,
            email: new.email.trim().to_owned(),
            email_normalized: normalized,
            display_name: new.display_name.clone(),
            password_hash: new.password_hash.clone(),
            is_admin: new.is_admin,
            disabled_at: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// `NotFound` when there is no such user.
    pub async fn get_user(&self, id: &str) -> Result<User, StorageError> {
        with_conn!(self, |conn| {
            Ok(users::table
                .find(id)
                .select(User::as_select())
                .first(conn)
                .await?)
        })
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StorageError> {
        let key = normalize_email(email);
        with_conn!(self, |conn| {
            Ok(users::table
                .filter(users::email_normalized.eq(&key))
                .select(User::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// A page of users ordered by email: those after `after` (an email from the previous
    /// page), at most `limit`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>, StorageError> {
        let after = after.map(normalize_email).unwrap_or_default();
        with_conn!(self, |conn| {
            Ok(users::table
                .filter(users::email_normalized.gt(&after))
                .order(users::email_normalized.asc())
                .limit(limit.clamp(1, 1000))
                .select(User::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Disables (`true`) or re-enables (`false`) a user. `NotFound` when there is none.
    pub async fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<(), StorageError> {
        let now = now_ms();
        let disabled_at = disabled.then_some(now);
        let changed = with_conn!(self, |conn| {
            diesel::update(users::table.find(id))
                .set((
                    users::disabled_at.eq(disabled_at),
                    users::updated_at.eq(now),
                ))
                .execute(conn)
                .await?
        });
        one_changed(changed)
    }

    /// Stores a new password hash (after a change, or a re-hash with new parameters).
    pub async fn set_password_hash(&self, id: &str, hash: &str) -> Result<(), StorageError> {
        let now = now_ms();
        let changed = with_conn!(self, |conn| {
            diesel::update(users::table.find(id))
                .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
                .execute(conn)
                .await?
        });
        one_changed(changed)
    }

    /// Re-keys users whose stored email key was made by an older normalisation (before NFKC,
    /// issue 19), a page at a time, one short statement per changed row. A row whose new key
    /// another account already holds keeps its old key (both could sign in as before until an
    /// administrator merges them) and is logged. Returns how many rows were re-keyed.
    pub async fn rekey_emails(&self) -> Result<usize, StorageError> {
        const PAGE: i64 = 1000;
        let mut after = String::new();
        let mut rekeyed = 0;
        loop {
            let page: Vec<(String, String, String)> = with_conn!(self, |conn| {
                users::table
                    .filter(users::id.gt(&after))
                    .order(users::id.asc())
                    .limit(PAGE)
                    .select((users::id, users::email, users::email_normalized))
                    .load(conn)
                    .await?
            });
            let Some((last, _, _)) = page.last() else {
                return Ok(rekeyed);
            };
            after = last.clone();
            for (id, email, stored) in &page {
                let key = normalize_email(email);
                if &key == stored {
                    continue;
                }
                let changed = with_conn!(self, |conn| {
                    diesel::update(users::table.find(id))
                        .set(users::email_normalized.eq(&key))
                        .execute(conn)
                        .await
                });
                match changed {
                    Ok(_) => rekeyed += 1,
                    Err(e) => match StorageError::from(e) {
                        StorageError::Conflict(_) => tracing::warn!(
                            user.id = %id,
                            "another account has the same normalised email; this one keeps its old key"
                        ),
                        other => return Err(other),
                    },
                }
            }
            if i64::try_from(page.len()).unwrap_or(PAGE) < PAGE {
                return Ok(rekeyed);
            }
        }
    }
}
