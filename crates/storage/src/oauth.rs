//! OAuth clients, authorization codes and consents.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::error::one_changed;
use crate::pool::with_conn;
use crate::schema::{
    authorization_codes as ac, consents as co, oauth_clients as oc, pending_logins as pl,
};
use crate::{StorageError, Store, now_ms};

/// A registered client: by dynamic registration, by metadata document, or configured.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = oc, treat_none_as_null = true)]
pub struct OAuthClient {
    pub client_id: String,
    /// `dcr`, `cimd` or `configured`.
    pub registration: String,
    pub client_name: String,
    /// JSON array of redirect URIs.
    pub redirect_uris: String,
    /// `none` (public) or `client_secret_basic` / `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// SHA-256 of the client secret, for confidential clients.
    pub secret_hash: Option<Vec<u8>>,
    /// The registration request or metadata document, as JSON.
    pub metadata: String,
    pub created_at: i64,
    /// For metadata documents: when to fetch again (HTTP caching).
    pub refresh_after: Option<i64>,
}

/// An authorization code (by hash) and everything the token request must match.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = ac)]
pub struct AuthorizationCode {
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    /// The `redirect_uri` the authorization request sent; empty when it sent none (the
    /// client's only registered one was used), so the token request need not send it
    /// (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: String,
    /// The token family the exchange will start (so a reused code can revoke it).
    pub family_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// First use: the code is now spent.
    Fresh(AuthorizationCode),
    /// Used before: whatever it issued must be revoked (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
    Reused { family_id: String },
    /// Unknown or expired.
    Invalid,
}

/// A federated sign-in in flight, keyed by the hash of its `state`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = pl)]
pub struct PendingLogin {
    pub state_hash: Vec<u8>,
    pub provider_id: String,
    pub nonce: String,
    /// The PKCE verifier, sealed.
    pub pkce_verifier: Vec<u8>,
    /// Where to continue afterwards (a same-origin path), as JSON.
    pub authorize_request: String,
    /// Hash of the browser's binding cookie: the callback must come from the same browser.
    pub browser_binding: Vec<u8>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

impl Store {
    pub async fn create_pending_login(&self, login: &PendingLogin) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel::insert_into(pl::table)
                .values(login)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Spends a pending login exactly once; `None` when unknown, expired or already used.
    pub async fn consume_pending_login(
        &self,
        state_hash: &[u8],
    ) -> Result<Option<PendingLogin>, StorageError> {
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let spent = diesel::update(
                        pl::table
                            .find(state_hash)
                            .filter(pl::used_at.is_null())
                            .filter(pl::expires_at.gt(now)),
                    )
                    .set(pl::used_at.eq(now))
                    .execute(conn)
                    .await?;
                    if spent != 1 {
                        return Ok(None);
                    }
                    Ok(pl::table
                        .find(state_hash)
                        .select(PendingLogin::as_select())
                        .first(conn)
                        .await
                        .optional()?)
                })
                .await
            }
        )
    }

    /// Inserts or replaces a client (metadata documents are re-fetched and replaced).
    pub async fn upsert_client(&self, client: &OAuthClient) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel::insert_into(oc::table)
                .values(client)
                .on_conflict(oc::client_id)
                .do_update()
                .set(client)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Deletes dynamically registered clients created before `created_before` that never
    /// obtained a token or an authorization code; returns how many went. One statement, so
    /// replicas sweeping at once cannot delete a client between its check and its first use.
    pub async fn delete_unused_clients(&self, created_before: i64) -> Result<usize, StorageError> {
        use crate::schema::token_families as tf;
        with_conn!(self, |conn| {
            Ok(diesel::delete(
                oc::table
                    .filter(oc::registration.eq("dcr"))
                    .filter(oc::created_at.lt(created_before))
                    .filter(diesel::dsl::not(diesel::dsl::exists(
                        tf::table.filter(tf::client_id.eq(oc::client_id.nullable())),
                    )))
                    .filter(diesel::dsl::not(diesel::dsl::exists(
                        ac::table.filter(ac::client_id.eq(oc::client_id)),
                    ))),
            )
            .execute(conn)
            .await?)
        })
    }

    pub async fn get_client(&self, client_id: &str) -> Result<Option<OAuthClient>, StorageError> {
        with_conn!(self, |conn| {
            Ok(oc::table
                .find(client_id)
                .select(OAuthClient::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    pub async fn insert_code(&self, code: &AuthorizationCode) -> Result<(), StorageError> {
        with_conn!(self, |conn| {
            diesel::insert_into(ac::table)
                .values(code)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Spends a code exactly once, in one short transaction.
    pub async fn consume_code(&self, code_hash: &[u8]) -> Result<CodeOutcome, StorageError> {
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    // Write first (see rotate_refresh_token): spend, then read what was spent.
                    let spent = diesel::update(
                        ac::table
                            .find(code_hash)
                            .filter(ac::used_at.is_null())
                            .filter(ac::expires_at.gt(now)),
                    )
                    .set(ac::used_at.eq(now))
                    .execute(conn)
                    .await?;
                    let Some(code) = ac::table
                        .find(code_hash)
                        .select(AuthorizationCode::as_select())
                        .first(conn)
                        .await
                        .optional()?
                    else {
                        return Ok(CodeOutcome::Invalid);
                    };
                    Ok(if spent == 1 {
                        CodeOutcome::Fresh(code)
                    } else if code.used_at.is_some() {
                        CodeOutcome::Reused {
                            family_id: code.family_id,
                        }
                    } else {
                        CodeOutcome::Invalid
                    })
                })
                .await
            }
        )
    }

    /// The scopes a user approved for a client on one upstream (its RFC 8707 resource), if any.
    pub async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> Result<Option<String>, StorageError> {
        with_conn!(self, |conn| {
            Ok(co::table
                .find((user_id, client_id, resource))
                .select(co::scopes)
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// Records (or replaces) what a user approved for a client on one upstream.
    pub async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
        scopes: &str,
    ) -> Result<(), StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            diesel::insert_into(co::table)
                .values((
                    co::user_id.eq(user_id),
                    co::client_id.eq(client_id),
                    co::resource.eq(resource),
                    co::scopes.eq(scopes),
                    co::created_at.eq(now),
                ))
                .on_conflict((co::user_id, co::client_id, co::resource))
                .do_update()
                .set(co::scopes.eq(scopes))
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Withdraws a user's consent for a client, on every upstream.
    pub async fn delete_consent(&self, user_id: &str, client_id: &str) -> Result<(), StorageError> {
        let changed = with_conn!(self, |conn| {
            diesel::delete(
                co::table
                    .filter(co::user_id.eq(user_id))
                    .filter(co::client_id.eq(client_id)),
            )
            .execute(conn)
            .await?
        });
        one_changed(changed)
    }
}
