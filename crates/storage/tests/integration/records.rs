//! Users, identities, sessions, audit events, policy version, migrations.

use mcpgate_storage::{AuditEvent, NewUser, StorageError, now_ms};

use crate::support::Fixture;

async fn migrations_apply_once(f: Fixture) {
    // The fixture applied them from empty; a second run is a no-op.
    assert_eq!(f.store.migrate().await.unwrap(), 0);
    assert_eq!(f.store.policy_version().await.unwrap(), 1);
}
both_backends!(
    migrations_apply_once_from_empty,
    super::migrations_apply_once
);

async fn users(f: Fixture) {
    let s = &f.store;
    let ada = s
        .create_user(&NewUser {
            email: "  Ada@Example.com ".into(),
            display_name: Some("Ada".into()),
            password_hash: Some("$argon2id$fake".into()),
            is_admin: true,
        })
        .await
        .unwrap();
    assert_eq!(ada.email, "Ada@Example.com");
    assert_eq!(ada.email_normalized, "ada@example.com");
    assert_eq!(s.get_user(&ada.id).await.unwrap(), ada);
    assert_eq!(
        s.find_user_by_email("ADA@example.COM").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        s.find_user_by_email("nobody@example.com").await.unwrap(),
        None
    );

    // Case-insensitive uniqueness.
    let dup = s
        .create_user(&NewUser {
            email: "ada@EXAMPLE.com".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))), "{dup:?}");

    assert!(matches!(
        s.get_user("missing").await,
        Err(StorageError::NotFound)
    ));

    s.set_user_disabled(&ada.id, true).await.unwrap();
    assert!(s.get_user(&ada.id).await.unwrap().is_disabled());
    s.set_user_disabled(&ada.id, false).await.unwrap();
    assert!(!s.get_user(&ada.id).await.unwrap().is_disabled());
    assert!(matches!(
        s.set_user_disabled("missing", true).await,
        Err(StorageError::NotFound)
    ));

    s.set_password_hash(&ada.id, "$argon2id$new").await.unwrap();
    assert_eq!(
        s.get_user(&ada.id).await.unwrap().password_hash.as_deref(),
        Some("$argon2id$new")
    );
    assert!(matches!(
        s.set_password_hash("missing", "x").await,
        Err(StorageError::NotFound)
    ));

    // Paging by email.
    for i in 0..5 {
        f.user(&format!("user{i}@example.com")).await;
    }
    let first = s.list_users(None, 3).await.unwrap();
    let emails: Vec<_> = first.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        ["Ada@Example.com", "user0@example.com", "user1@example.com"]
    );
    let next = s.list_users(Some(&first[2].email), 10).await.unwrap();
    assert_eq!(next.len(), 3);
    assert_eq!(next[0].email, "user2@example.com");
}
both_backends!(users_create_find_page_disable, super::users);

/// Email keys are NFKC + lower case (issue 19): visually identical spellings find one account
/// and cannot make a second; rows keyed by an older mcpgate are re-keyed at migration.
async fn email_keys(f: Fixture) {
    let s = &f.store;
    let zoe = f.user("Zo\u{eb}@example.com").await;
    let found = s
        .find_user_by_email("ZOE\u{308}@EXAMPLE.COM")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, zoe.id);
    let twin = s
        .create_user(&NewUser {
            email: "zoe\u{308}@example.com".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(twin, Err(StorageError::Conflict(_))), "{twin:?}");

    // As an older mcpgate stored it: lower-cased, not NFKC (decomposed, full-width).
    let old = f.user("\u{ff41}\u{ff44}a\u{308}@example.com").await;
    s.set_email_key_for_tests(&old.id, "\u{ff41}\u{ff44}a\u{308}@example.com")
        .await
        .unwrap();
    assert_eq!(
        s.find_user_by_email("ad\u{e4}@example.com").await.unwrap(),
        None
    );
    s.migrate().await.unwrap();
    let found = s
        .find_user_by_email("AD\u{c4}@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, old.id);
    assert_eq!(found.email_normalized, "ad\u{e4}@example.com");
    assert_eq!(s.rekey_emails().await.unwrap(), 0, "nothing left to re-key");
}
both_backends!(emails_unicode_normalised_and_rekeyed, super::email_keys);

async fn identities(f: Fixture) {
    let s = &f.store;
    let user = f.user("kc@example.com").await;
    let claims = serde_json::json!({"preferred_username": "kc"});
    let id = s
        .create_identity(&user.id, "corp", "sub-123", &claims)
        .await
        .unwrap();
    let found = s.find_identity("corp", "sub-123").await.unwrap().unwrap();
    assert_eq!(found, id);
    assert_eq!(s.find_identity("other", "sub-123").await.unwrap(), None);
    let again = s
        .create_identity(&user.id, "corp", "sub-123", &claims)
        .await;
    assert!(matches!(again, Err(StorageError::Conflict(_))));
    // A foreign key, too: no identity for a user that does not exist.
    let orphan = s.create_identity("no-user", "corp", "sub-9", &claims).await;
    assert!(
        matches!(orphan, Err(StorageError::Conflict(_))),
        "{orphan:?}"
    );

    s.update_identity_claims(&id.id, &serde_json::json!({"groups": ["a"]}))
        .await
        .unwrap();
    let updated = s.find_identity("corp", "sub-123").await.unwrap().unwrap();
    assert_eq!(updated.last_claims, r#"{"groups":["a"]}"#);
    assert!(matches!(
        s.update_identity_claims("missing", &claims).await,
        Err(StorageError::NotFound)
    ));
}
both_backends!(identities_link_and_conflict, super::identities);

async fn sessions(f: Fixture) {
    let s = &f.store;
    let user = f.user("s@example.com").await;
    s.create_session(b"live", &user.id, now_ms() + 60_000)
        .await
        .unwrap();
    s.create_session(b"old", &user.id, now_ms() - 1)
        .await
        .unwrap();
    let live = s.find_session(b"live").await.unwrap().unwrap();
    assert_eq!(live.user_id, user.id);
    assert_eq!(live.user_disabled_at, None);
    assert_eq!(s.find_session(b"old").await.unwrap(), None, "expired");
    assert_eq!(s.find_session(b"nope").await.unwrap(), None);
    s.set_user_disabled(&user.id, true).await.unwrap();
    assert!(
        s.find_session(b"live")
            .await
            .unwrap()
            .unwrap()
            .user_disabled_at
            .is_some()
    );
    s.delete_session(b"live").await.unwrap();
    assert_eq!(s.find_session(b"live").await.unwrap(), None);
    let dup = s.create_session(b"old", &user.id, 0).await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))));
}
both_backends!(sessions_live_expired_deleted, super::sessions);

async fn audit_and_policy(f: Fixture) {
    let s = &f.store;
    let events: Vec<AuditEvent> = (0..25)
        .map(|i| {
            let mut e = AuditEvent::new("tools/call", if i % 2 == 0 { "allow" } else { "deny" });
            e.at = 1_000 + i;
            e.target = Some(format!("tool-{i}"));
            e
        })
        .collect();
    s.insert_audit_events(&events).await.unwrap();
    s.insert_audit_events(&[]).await.unwrap();
    let recent = s.recent_audit_events(3).await.unwrap();
    let targets: Vec<_> = recent.iter().filter_map(|e| e.target.as_deref()).collect();
    assert_eq!(targets, ["tool-24", "tool-23", "tool-22"]);
    // A duplicate id in a batch fails the whole batch: nothing half-written.
    let before = s.recent_audit_events(1000).await.unwrap().len();
    let mut bad = vec![AuditEvent::new("a", "allow")];
    bad.push(bad[0].clone());
    assert!(s.insert_audit_events(&bad).await.is_err());
    assert_eq!(s.recent_audit_events(1000).await.unwrap().len(), before);

    assert_eq!(s.policy_version().await.unwrap(), 1);
    assert_eq!(s.bump_policy_version().await.unwrap(), 2);
    assert_eq!(f.replica().await.policy_version().await.unwrap(), 2);
}
both_backends!(audit_batches_and_policy_version, super::audit_and_policy);

async fn upstream_secrets(f: Fixture) {
    let s = &f.store;
    assert_eq!(s.upstream_secret("billing").await.unwrap(), None);
    s.put_upstream_secret("billing", b"sealed-1", "admin-1")
        .await
        .unwrap();
    let first = s.upstream_secret("billing").await.unwrap().unwrap();
    assert_eq!(first.sealed, b"sealed-1");
    assert_eq!(first.updated_by, "admin-1");
    // Replacing keeps one row per upstream.
    s.put_upstream_secret("billing", b"sealed-2", "admin-2")
        .await
        .unwrap();
    let second = s.upstream_secret("billing").await.unwrap().unwrap();
    assert_eq!(second.sealed, b"sealed-2");
    assert_eq!(second.updated_by, "admin-2");
    assert!(second.updated_at >= first.updated_at);
    assert_eq!(s.upstream_secret("other").await.unwrap(), None);
    assert!(s.delete_upstream_secret("billing").await.unwrap());
    assert!(!s.delete_upstream_secret("billing").await.unwrap());
    assert_eq!(s.upstream_secret("billing").await.unwrap(), None);
}
both_backends!(
    upstream_secrets_are_set_replaced_and_deleted,
    super::upstream_secrets
);
