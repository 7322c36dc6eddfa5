//! Changes to the stored policy: roles and their grants, who holds a role directly, teams,
//! their members and roles, mapping rules. Each change is one short transaction that also
//! bumps the policy version (and on PostgreSQL notifies other replicas on commit); each
//! returns the new version so the caller's caches move on at once.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::pool::with_conn;
use crate::schema::{
    role_grants as rg, role_mappings as rm, roles, team_members as tm, team_roles as tr, teams,
    user_roles as ur, users,
};
use crate::{Backend, StorageError, Store, StoredGrant, StoredMapping, now_ms};

/// Inside a transaction: bumps the version, and on PostgreSQL queues a `NOTIFY` that is sent
/// on commit. Evaluates to the new version.
macro_rules! bump {
    ($conn:expr, $notify:expr) => {{
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use $crate::schema::policy_version as pv;
        diesel::update(pv::table.find(1))
            .set(pv::version.eq(pv::version + 1))
            .execute(&mut *$conn)
            .await?;
        let version: i64 = pv::table
            .find(1)
            .select(pv::version)
            .first(&mut *$conn)
            .await?;
        if $notify {
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>($crate::policy::CHANNEL)
                .bind::<diesel::sql_types::Text, _>(version.to_string())
                .execute(&mut *$conn)
                .await?;
        }
        version
    }};
}
pub(crate) use bump;

/// A team with its roles and members (user ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub name: String,
    pub roles: Vec<String>,
    pub members: Vec<String>,
}

/// Finds a role's id by name inside a query block; `NotFound` when there is none.
macro_rules! role_id {
    ($conn:expr, $name:expr) => {
        roles::table
            .filter(roles::name.eq($name))
            .select(roles::id)
            .first::<String>(&mut *$conn)
            .await?
    };
}

macro_rules! team_id {
    ($conn:expr, $name:expr) => {
        teams::table
            .filter(teams::name.eq($name))
            .select(teams::id)
            .first::<String>(&mut *$conn)
            .await?
    };
}

impl Store {
    fn notifies(&self) -> bool {
        self.backend() == Backend::Postgres
    }

    /// Creates or replaces a role: its description and all its grants, in order.
    pub async fn put_role(
        &self,
        name: &str,
        description: &str,
        grants: &[StoredGrant],
    ) -> Result<i64, StorageError> {
        let notify = self.notifies();
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let existing: Option<String> = roles::table
                        .filter(roles::name.eq(name))
                        .select(roles::id)
                        .first(conn)
                        .await
                        .optional()?;
                    let id = match existing {
                        Some(id) => {
                            diesel::update(roles::table.find(&id))
                                .set(roles::description.eq(description))
                                .execute(conn)
                                .await?;
                            diesel::delete(rg::table.filter(rg::role_id.eq(&id)))
                                .execute(conn)
                                .await?;
                            id
                        }
                        None => {
                            let id = crate::users::new_id();
                            diesel::insert_into(roles::table)
                                .values((
                                    roles::id.eq(&id),
                                    roles::name.eq(name),
                                    roles::description.eq(description),
                                    roles::builtin.eq(false),
                                    roles::created_at.eq(now),
                                ))
                                .execute(conn)
                                .await?;
                            id
                        }
                    };
                    for (position, g) in grants.iter().enumerate() {
                        diesel::insert_into(rg::table)
                            .values((
                                rg::id.eq(crate::users::new_id()),
                                rg::role_id.eq(&id),
                                rg::effect.eq(&g.effect),
                                rg::action.eq(&g.action),
                                rg::upstream_pattern.eq(&g.upstream),
                                rg::target_pattern.eq(&g.target),
                                rg::created_at.eq(now),
                                rg::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
                            ))
                            .execute(conn)
                            .await?;
                    }
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Makes sure a row exists for each named role (built in: `admin` and the roles declared
    /// in the configuration), so users and teams can hold them; their grants live elsewhere.
    /// Does not bump the version: nobody holds a role that had no row.
    pub async fn ensure_roles(&self, names: &[&str]) -> Result<(), StorageError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            for name in names {
                diesel::insert_into(roles::table)
                    .values((
                        roles::id.eq(crate::users::new_id()),
                        roles::name.eq(*name),
                        roles::description.eq(""),
                        roles::builtin.eq(true),
                        roles::created_at.eq(now),
                    ))
                    .on_conflict(roles::name)
                    .do_nothing()
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
    }

    /// Deletes a role (its grants, holders and mappings go with it). `NotFound` if none.
    pub async fn delete_role(&self, name: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let id = role_id!(conn, name);
                    // Children first: SQLite enforces cascades only with foreign keys on, and
                    // this does not depend on it.
                    diesel::delete(rg::table.filter(rg::role_id.eq(&id)))
                        .execute(conn)
                        .await?;
                    diesel::delete(ur::table.filter(ur::role_id.eq(&id)))
                        .execute(conn)
                        .await?;
                    diesel::delete(tr::table.filter(tr::role_id.eq(&id)))
                        .execute(conn)
                        .await?;
                    diesel::delete(rm::table.filter(rm::role_id.eq(&id)))
                        .execute(conn)
                        .await?;
                    diesel::delete(roles::table.find(&id)).execute(conn).await?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Gives a stored role to a user (idempotent). `NotFound` for an unknown user or role.
    pub async fn grant_user_role(&self, user_id: &str, role: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let role_id = role_id!(conn, role);
                    users::table
                        .find(user_id)
                        .select(users::id)
                        .first::<String>(conn)
                        .await?;
                    diesel::insert_into(ur::table)
                        .values((
                            ur::user_id.eq(user_id),
                            ur::role_id.eq(&role_id),
                            ur::created_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Takes a role from a user. `NotFound` when the user did not hold it.
    pub async fn revoke_user_role(&self, user_id: &str, role: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let role_id = role_id!(conn, role);
                    let n = diesel::delete(
                        ur::table
                            .filter(ur::user_id.eq(user_id))
                            .filter(ur::role_id.eq(&role_id)),
                    )
                    .execute(conn)
                    .await?;
                    crate::error::one_changed(n)?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Creates a team. `Conflict` when the name is taken.
    pub async fn create_team(&self, name: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    diesel::insert_into(teams::table)
                        .values((
                            teams::id.eq(crate::users::new_id()),
                            teams::name.eq(name),
                            teams::created_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Deletes a team with its memberships and roles. `NotFound` if none.
    pub async fn delete_team(&self, name: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let id = team_id!(conn, name);
                    diesel::delete(tm::table.filter(tm::team_id.eq(&id)))
                        .execute(conn)
                        .await?;
                    diesel::delete(tr::table.filter(tr::team_id.eq(&id)))
                        .execute(conn)
                        .await?;
                    diesel::delete(teams::table.find(&id)).execute(conn).await?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// A page of teams by name, after `after`, with their roles and members.
    pub async fn list_teams(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Team>, StorageError> {
        with_conn!(self, |conn| {
            let mut query = teams::table
                .order(teams::name)
                .limit(limit.clamp(1, 500))
                .select((teams::id, teams::name))
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(teams::name.gt(after.to_owned()));
            }
            let page: Vec<(String, String)> = query.load(conn).await?;
            let ids: Vec<&String> = page.iter().map(|(id, _)| id).collect();
            let team_roles: Vec<(String, String)> = tr::table
                .inner_join(roles::table)
                .filter(tr::team_id.eq_any(&ids))
                .order(roles::name)
                .select((tr::team_id, roles::name))
                .load(conn)
                .await?;
            let members: Vec<(String, String)> = tm::table
                .filter(tm::team_id.eq_any(&ids))
                .order(tm::user_id)
                .select((tm::team_id, tm::user_id))
                .load(conn)
                .await?;
            Ok(page
                .into_iter()
                .map(|(id, name)| Team {
                    name,
                    roles: pick(&team_roles, &id),
                    members: pick(&members, &id),
                })
                .collect())
        })
    }

    /// Adds a user to a team (idempotent). `NotFound` for an unknown team or user.
    pub async fn add_team_member(&self, team: &str, user_id: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let team_id = team_id!(conn, team);
                    users::table
                        .find(user_id)
                        .select(users::id)
                        .first::<String>(conn)
                        .await?;
                    diesel::insert_into(tm::table)
                        .values((
                            tm::team_id.eq(&team_id),
                            tm::user_id.eq(user_id),
                            tm::created_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Removes a user from a team. `NotFound` when they were not a member.
    pub async fn remove_team_member(&self, team: &str, user_id: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let team_id = team_id!(conn, team);
                    let n = diesel::delete(
                        tm::table
                            .filter(tm::team_id.eq(&team_id))
                            .filter(tm::user_id.eq(user_id)),
                    )
                    .execute(conn)
                    .await?;
                    crate::error::one_changed(n)?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Gives a stored role to a team (idempotent).
    pub async fn add_team_role(&self, team: &str, role: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        let now = now_ms();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let team_id = team_id!(conn, team);
                    let role_id = role_id!(conn, role);
                    diesel::insert_into(tr::table)
                        .values((
                            tr::team_id.eq(&team_id),
                            tr::role_id.eq(&role_id),
                            tr::created_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Takes a role from a team. `NotFound` when the team did not hold it.
    pub async fn remove_team_role(&self, team: &str, role: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let team_id = team_id!(conn, team);
                    let role_id = role_id!(conn, role);
                    let n = diesel::delete(
                        tr::table
                            .filter(tr::team_id.eq(&team_id))
                            .filter(tr::role_id.eq(&role_id)),
                    )
                    .execute(conn)
                    .await?;
                    crate::error::one_changed(n)?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }

    /// Adds a mapping rule to a stored role; returns the rule and the new version.
    pub async fn add_mapping(
        &self,
        provider: Option<&str>,
        claim: &str,
        value: &str,
        role: &str,
    ) -> Result<(StoredMapping, i64), StorageError> {
        let notify = self.notifies();
        let now = now_ms();
        let id = crate::users::new_id();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let role_id = role_id!(conn, role);
                    diesel::insert_into(rm::table)
                        .values((
                            rm::id.eq(&id),
                            rm::provider_id.eq(provider),
                            rm::claim_path.eq(claim),
                            rm::claim_value.eq(value),
                            rm::role_id.eq(&role_id),
                            rm::created_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    let version = bump!(conn, notify);
                    Ok((
                        StoredMapping {
                            id: id.clone(),
                            provider: provider.map(str::to_owned),
                            claim: claim.to_owned(),
                            value: value.to_owned(),
                            role: role.to_owned(),
                        },
                        version,
                    ))
                })
                .await
            }
        )
    }

    /// Deletes a mapping rule. `NotFound` if none.
    pub async fn delete_mapping(&self, id: &str) -> Result<i64, StorageError> {
        let notify = self.notifies();
        with_conn!(
            self,
            transaction | conn | {
                conn.transaction::<_, StorageError, _>(async |conn| {
                    let n = diesel::delete(rm::table.find(id)).execute(conn).await?;
                    crate::error::one_changed(n)?;
                    Ok(bump!(conn, notify))
                })
                .await
            }
        )
    }
}

fn pick(rows: &[(String, String)], id: &str) -> Vec<String> {
    rows.iter()
        .filter(|(owner, _)| owner == id)
        .map(|(_, v)| v.clone())
        .collect()
}
