//! What the admin API and pages read and change: the audit log queried with filters and a
//! cursor, users searched, a user's sessions and consents, clients listed and revoked, users
//! deleted.

use mcpgate_storage::{AuditEvent, AuditQuery, OAuthClient, StorageError, now_ms};

use crate::support::Fixture;

fn event(user: &str, action: &str, target: &str, decision: &str, at: i64) -> AuditEvent {
    let mut e = AuditEvent::new(action, decision);
    e.user_id = Some(user.into());
    e.upstream = Some("demo".into());
    e.target = Some(target.into());
    e.at = at;
    e
}

async fn audit_queries(f: Fixture) {
    let s = &f.store;
    let mut events = Vec::new();
    for i in 0..7 {
        let decision = if i % 2 == 0 { "deny" } else { "allow" };
        events.push(event("u1", "tools/call", "echo", decision, 1_000 + i));
    }
    events.push(event("u2", "tools/call", "echo", "deny", 1_003));
    events.push(event("u1", "signin", "ada@example.com", "signed_in", 1_004));
    s.insert_audit_events(&events).await.unwrap();

    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let denied = s
        .query_audit_events(&q(&|q| {
            q.user_id = Some("u1".into());
            q.decision = Some("deny".into());
            q.tool = Some("echo".into());
        }))
        .await
        .unwrap();
    assert_eq!(
        denied.iter().map(|e| e.at).collect::<Vec<_>>(),
        [1_006, 1_004, 1_002, 1_000],
        "newest first"
    );
    // An action matches as well as a target; a time range is [since, until).
    let signins = s
        .query_audit_events(&q(&|q| q.tool = Some("signin".into())))
        .await
        .unwrap();
    assert_eq!(signins.len(), 1);
    let range = s
        .query_audit_events(&q(&|q| {
            q.since = Some(1_002);
            q.until = Some(1_004);
        }))
        .await
        .unwrap();
    assert_eq!(range.len(), 3, "{range:?}");
    // Pages of 3 with the cursor: every event once, in order.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .query_audit_events(&AuditQuery {
                before: before.clone(),
                limit: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.iter().map(|e| e.id.clone()));
        match page.last() {
            Some(last) if page.len() == 3 => before = Some((last.at, last.id.clone())),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 9);
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 9);
}
both_backends!(audit_filters_and_cursor, super::audit_queries);

async fn accounts(f: Fixture) {
    let s = &f.store;
    let ada = f.user("ada@example.com").await;
    let grace = f.user("grace_100%@example.com").await;
    f.user("bob@example.org").await;

    // Search: a substring of the email, `%` and `_` taken literally.
    let found = s.search_users("EXAMPLE.com", None, 10).await.unwrap();
    assert_eq!(found.len(), 2);
    let literal = s.search_users("_100%", None, 10).await.unwrap();
    assert_eq!(literal.len(), 1);
    assert_eq!(literal[0].id, grace.id);
    assert!(s.search_users("a%e", None, 10).await.unwrap().is_empty());

    // Sessions: listed for their user only, ended one by one or all.
    let far = now_ms() + 60_000;
    s.create_session(&[1; 32], &ada.id, far).await.unwrap();
    s.create_session(&[2; 32], &ada.id, far).await.unwrap();
    s.create_session(&[3; 32], &grace.id, far).await.unwrap();
    assert_eq!(s.list_user_sessions(&ada.id).await.unwrap().len(), 2);
    assert!(matches!(
        s.delete_user_session(&ada.id, &[3; 32]).await,
        Err(StorageError::NotFound)
    ));
    s.delete_user_session(&ada.id, &[1; 32]).await.unwrap();
    assert_eq!(s.delete_user_sessions(&ada.id).await.unwrap(), 1);
    assert!(s.list_user_sessions(&ada.id).await.unwrap().is_empty());

    // Consents with the client's name; revoking the client ends them.
    let client = OAuthClient {
        client_id: "c1".into(),
        registration: "dcr".into(),
        client_name: "Notes".into(),
        redirect_uris: "[\"http://127.0.0.1/cb\"]".into(),
        token_endpoint_auth_method: "none".into(),
        secret_hash: None,
        metadata: "{}".into(),
        created_at: now_ms(),
        refresh_after: None,
    };
    s.upsert_client(&client).await.unwrap();
    s.put_consent(&ada.id, "c1", "http://x/mcp/demo", "mcp")
        .await
        .unwrap();
    let consents = s.list_user_consents(&ada.id).await.unwrap();
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].client_name.as_deref(), Some("Notes"));
    assert_eq!(s.list_clients(None, 10).await.unwrap().len(), 1);
    assert!(s.revoke_client("c1").await.unwrap().is_empty());
    assert!(s.list_user_consents(&ada.id).await.unwrap().is_empty());
    assert!(s.list_clients(None, 10).await.unwrap().is_empty());
    assert!(matches!(
        s.revoke_client("c1").await,
        Err(StorageError::NotFound)
    ));

    // Deleting a user takes their sessions with them.
    s.delete_user(&grace.id).await.unwrap();
    assert!(s.list_user_sessions(&grace.id).await.unwrap().is_empty());
    assert!(matches!(
        s.delete_user(&grace.id).await,
        Err(StorageError::NotFound)
    ));
}
both_backends!(admin_accounts_sessions_clients, super::accounts);
