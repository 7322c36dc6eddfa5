//! Identities: a subject at an identity provider, linked to a user.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::error::one_changed;
use crate::pool::with_conn;
use crate::schema::identities;
use crate::users::new_id;
use crate::{StorageError, Store, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = identities)]
pub struct Identity {
    pub id: String,
    pub user_id: String,
    pub provider_id: String,
    pub subject: String,
    /// The claims of the last sign-in, as JSON.
    pub last_claims: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = identities)]
struct IdentityRow<'a> {
    id: &'a str,
    user_id: &'a str,
    provider_id: &'a str,
    subject: &'a str,
    last_claims: &'a str,
    created_at: i64,
    updated_at: i64,
}

impl Store {
    /// Links `(provider, subject)` to a user. `Conflict` when that subject is already linked.
    pub async fn create_identity(
        &self,
        user_id: &str,
        provider_id: &str,
        subject: &str,
        claims: &serde_json::Value,
    ) -> Result<Identity, StorageError> {
        let id = new_id();
        let now = now_ms();
        let claims = claims.to_string();
        let row = IdentityRow {
            id: &id,
            user_id,
            provider_id,
            subject,
            last_claims: &claims,
            created_at: now,
            updated_at: now,
        };
        with_conn!(self, |conn| {
            diesel::insert_into(identities::table)
                .values(&row)
                .execute(conn)
                .await?;
        });
        Ok(Identity {
            id,
            user_id: user_id.to_owned(),
            provider_id: provider_id.to_owned(),
            subject: subject.to_owned(),
            last_claims: claims,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn find_identity(
        &self,
        provider_id: &str,
        subject: &str,
    ) -> Result<Option<Identity>, StorageError> {
        with_conn!(self, |conn| {
            Ok(identities::table
                .filter(identities::provider_id.eq(provider_id))
                .filter(identities::subject.eq(subject))
                .select(Identity::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// Records the claims of a new sign-in. `NotFound` when the identity is gone.
    pub async fn update_identity_claims(
        &self,
        identity_id: &str,
        claims: &serde_json::Value,
    ) -> Result<(), StorageError> {
        let claims = claims.to_string();
        let now = now_ms();
        let changed = with_conn!(self, |conn| {
            diesel::update(identities::table.find(identity_id))
                .set((
                    identities::last_claims.eq(&claims),
                    identities::updated_at.eq(now),
                ))
                .execute(conn)
                .await?
        });
        one_changed(changed)
    }
}
