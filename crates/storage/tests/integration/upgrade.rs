//! Upgrading from the previous schema: a database the previous release left, with data in it,
//! takes this release's migrations and everything in it still reads, on both backends.

use mcpgate_storage::testing::{TempPostgres, temp_sqlite};
use mcpgate_storage::{NewUser, PersonalToken, Store, StoreOptions, now_ms};

/// The last migration of the previous release.
const PREVIOUS: &str = "2026-12-08-000301";

async fn upgrade(url: &str) {
    let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
    let ran = store.migrate_through(PREVIOUS).await.unwrap();
    assert!(ran >= 5, "{ran} migrations make the previous schema");
    let pending = store.pending_migrations().await.unwrap();
    assert!(
        !pending.is_empty() && pending.iter().all(|m| m.as_str() > PREVIOUS),
        "{pending:?}"
    );

    // Data as the previous release wrote it.
    let ada = store
        .create_user(&NewUser {
            email: "ada@example.com".into(),
            display_name: Some("Ada".into()),
            password_hash: Some("$argon2id$fake".into()),
            is_admin: true,
        })
        .await
        .unwrap();
    let identity = store
        .create_identity(
            &ada.id,
            "corp",
            "ada-sub",
            &serde_json::json!({"groups": ["eng"]}),
        )
        .await
        .unwrap();
    let grant = store
        .create_grant(
            "g1",
            &ada.id,
            &identity.id,
            "corp",
            &crate::support::tokens("a"),
        )
        .await
        .unwrap();
    store
        .put_upstream_secret("demo", b"sealed-secret", "admin")
        .await
        .unwrap();

    // This release's migrations, forward only, on a database in use.
    assert_eq!(store.migrate().await.unwrap(), pending.len());
    assert!(store.pending_migrations().await.unwrap().is_empty());

    assert_eq!(store.get_user(&ada.id).await.unwrap(), ada);
    assert_eq!(store.get_grant("g1").await.unwrap(), grant);
    assert_eq!(
        store.upstream_secret("demo").await.unwrap().unwrap().sealed,
        b"sealed-secret"
    );
    assert!(
        store
            .find_identity("corp", "ada-sub")
            .await
            .unwrap()
            .is_some()
    );
    // And the new tables work for the old rows.
    store
        .insert_personal_token(&PersonalToken {
            id: "pat1".into(),
            token_hash: vec![7; 32],
            user_id: ada.id.clone(),
            name: "ci".into(),
            upstreams: "[\"demo\"]".into(),
            scopes: "mcp".into(),
            expires_at: now_ms() + 60_000,
            revoked_at: None,
            last_used_at: None,
            created_at: now_ms(),
        })
        .await
        .unwrap();
    assert_eq!(store.list_personal_tokens(&ada.id).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_from_the_previous_schema_on_sqlite() {
    let (url, _dir) = temp_sqlite().unwrap();
    upgrade(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_from_the_previous_schema_on_postgres() {
    if let Some(db) = TempPostgres::create("upgrade_from_the_previous_schema").await {
        upgrade(&db.unwrap().url).await;
    }
}
