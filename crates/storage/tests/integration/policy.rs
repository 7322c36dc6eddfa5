//! The stored policy: roles with ordered grants, user and team roles in one read, mappings,
//! version bumps, and PostgreSQL notifications to other replicas.

use std::time::Duration;

use mcpgate_storage::{StorageError, StoredGrant};

use crate::support::Fixture;

fn grant(effect: &str, target: &str) -> StoredGrant {
    StoredGrant {
        effect: effect.into(),
        action: "tools/call".into(),
        upstream: "*".into(),
        target: target.into(),
    }
}

async fn roles_grants_and_access(f: Fixture) {
    let s = &f.store;
    let ada = f.user("ada@example.com").await;
    let v0 = s.policy_version().await.unwrap();
    let grants = [grant("allow", "b"), grant("deny", "a"), grant("allow", "c")];
    let v1 = s.put_role("dev", "devs", &grants).await.unwrap();
    assert!(v1 > v0);
    s.put_role("ops", "", &[grant("allow", "x")]).await.unwrap();
    let p = s.load_policy().await.unwrap();
    assert_eq!(p.version, v1 + 1);
    assert_eq!(p.roles.len(), 2);
    assert_eq!(p.roles[0].name, "dev");
    assert_eq!(p.roles[0].grants, grants, "grants keep their order");

    // Replacing a role replaces its grants.
    s.put_role("dev", "devs", &[grant("allow", "z")])
        .await
        .unwrap();
    let p = s.load_policy().await.unwrap();
    assert_eq!(p.roles[0].grants, [grant("allow", "z")]);

    // Direct and team roles in one read.
    s.grant_user_role(&ada.id, "dev").await.unwrap();
    s.grant_user_role(&ada.id, "dev").await.unwrap(); // idempotent
    s.create_team("platform").await.unwrap();
    assert!(matches!(
        s.create_team("platform").await,
        Err(StorageError::Conflict(_))
    ));
    s.add_team_role("platform", "ops").await.unwrap();
    s.add_team_member("platform", &ada.id).await.unwrap();
    let access = s.user_access(&ada.id).await.unwrap();
    assert!(access.exists && !access.is_admin);
    assert_eq!(access.roles, ["dev"]);
    assert_eq!(access.team_roles, ["ops"]);
    let teams = s.list_teams(None, 10).await.unwrap();
    assert_eq!(teams[0].members, std::slice::from_ref(&ada.id));
    assert_eq!(teams[0].roles, ["ops"]);

    assert!(matches!(
        s.grant_user_role(&ada.id, "ghost").await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        s.grant_user_role("no-such-user", "dev").await,
        Err(StorageError::NotFound)
    ));
    assert_eq!(
        s.user_access("no-such-user").await.unwrap(),
        Default::default()
    );

    // Mappings name their role; deleting a role takes its holders and mappings with it.
    let (m, _) = s
        .add_mapping(Some("kc"), "groups", "a*", "ops")
        .await
        .unwrap();
    assert_eq!(
        s.load_policy().await.unwrap().mappings,
        std::slice::from_ref(&m)
    );
    s.delete_role("ops").await.unwrap();
    let p = s.load_policy().await.unwrap();
    assert!(p.mappings.is_empty());
    assert!(s.user_access(&ada.id).await.unwrap().team_roles.is_empty());
    s.remove_team_member("platform", &ada.id).await.unwrap();
    s.revoke_user_role(&ada.id, "dev").await.unwrap();
    assert!(matches!(
        s.revoke_user_role(&ada.id, "dev").await,
        Err(StorageError::NotFound)
    ));
    s.delete_team("platform").await.unwrap();
    assert!(s.list_teams(None, 10).await.unwrap().is_empty());

    // Built-in rows: idempotent, and no version bump.
    let v = s.policy_version().await.unwrap();
    s.ensure_roles(&["admin", "member"]).await.unwrap();
    s.ensure_roles(&["admin", "member"]).await.unwrap();
    assert_eq!(s.policy_version().await.unwrap(), v);
}
both_backends!(
    roles_grants_and_access_in_one_read,
    super::roles_grants_and_access
);

#[tokio::test(flavor = "multi_thread")]
async fn another_replica_hears_of_a_change_at_once() {
    let Some(f) = Fixture::postgres("policy_notify").await else {
        return;
    };
    let other = f.replica().await;
    let mut changes = other.policy_changes();
    // The listener reports the current version once it listens.
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .unwrap()
        .unwrap();
    let version = f.store.bump_policy_version().await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), async {
        while *changes.borrow_and_update() < version {
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("the notification arrives within a second");
}

async fn policy_changes_while_the_audit_log_is_written(f: Fixture) {
    // The admin API changes policy while the audit writer appends batches beside it. On
    // SQLite a unit of work that reads before it writes used to fail at once with "database
    // is locked" when another write came in between (busy_timeout does not cover that case);
    // every change must succeed.
    f.store.ensure_roles(&["viewer"]).await.unwrap();
    let writer = {
        let store = f.store.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                let batch: Vec<_> = (0..20)
                    .map(|_| mcpgate_storage::AuditEvent::new("tools/call", "allow"))
                    .collect();
                store.insert_audit_events(&batch).await.unwrap();
            }
        })
    };
    let changes: Vec<_> = (0..8)
        .map(|i| {
            let store = f.store.clone();
            tokio::spawn(async move {
                for j in 0..15 {
                    let team = format!("team-{i}-{j}");
                    store.create_team(&team).await?;
                    store.add_team_role(&team, "viewer").await?;
                    store.remove_team_role(&team, "viewer").await?;
                }
                Ok::<_, StorageError>(())
            })
        })
        .collect();
    for c in changes {
        c.await.unwrap().unwrap();
    }
    writer.await.unwrap();
}
both_backends!(
    policy_changes_beside_audit_writes_all_succeed,
    super::policy_changes_while_the_audit_log_is_written
);
