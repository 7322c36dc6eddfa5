//! Service clients (their user row, secret rotation, disabling with revocation, deletion) and
//! personal access tokens (lookup with the user's state, revocation, last-used times).

use mcpgate_storage::{NewAccessToken, NewServiceClient, PersonalToken, now_ms};

use crate::support::Fixture;

fn new_client(id: &str, secret: &[u8]) -> NewServiceClient {
    NewServiceClient {
        client_id: id.into(),
        name: "CI".into(),
        email: format!("{id}@service.invalid"),
        upstreams: r#"["demo"]"#.into(),
        scopes: "mcp".into(),
        secret_hash: secret.to_vec(),
    }
}

async fn service_clients(f: Fixture) {
    let client = f
        .store
        .create_service_client(&new_client("svc-1", b"first"))
        .await
        .unwrap();
    // Its principal is a user row like any other.
    let user = f.store.get_user(&client.user_id).await.unwrap();
    assert_eq!(user.email, "svc-1@service.invalid");
    assert!(user.password_hash.is_none());
    assert!(
        f.store
            .create_service_client(&new_client("svc-1", b"again"))
            .await
            .is_err(),
        "a taken client id"
    );

    let valid = |c: &mcpgate_storage::ServiceClient| -> Vec<Vec<u8>> {
        c.valid_secret_hashes(now_ms())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let c = f.store.get_service_client("svc-1").await.unwrap().unwrap();
    assert_eq!(valid(&c), vec![b"first".to_vec()]);
    // Rotation: both valid until the previous one expires or is retired.
    f.store
        .rotate_service_secret("svc-1", b"second", now_ms() + 60_000)
        .await
        .unwrap();
    let c = f.store.get_service_client("svc-1").await.unwrap().unwrap();
    assert_eq!(valid(&c), vec![b"second".to_vec(), b"first".to_vec()]);
    f.store
        .rotate_service_secret("svc-1", b"third", now_ms() - 1)
        .await
        .unwrap();
    let c = f.store.get_service_client("svc-1").await.unwrap().unwrap();
    assert_eq!(
        valid(&c),
        vec![b"third".to_vec()],
        "an expired previous secret"
    );
    f.store
        .rotate_service_secret("svc-1", b"fourth", now_ms() + 60_000)
        .await
        .unwrap();
    f.store.retire_service_secret("svc-1").await.unwrap();
    let c = f.store.get_service_client("svc-1").await.unwrap().unwrap();
    assert_eq!(valid(&c), vec![b"fourth".to_vec()]);
    assert!(f.store.retire_service_secret("nope").await.is_err());

    // Disabling revokes its tokens in the same transaction.
    f.store
        .insert_access_token(&NewAccessToken {
            token_hash: b"svc-token".to_vec(),
            kind: "oauth".into(),
            family_id: None,
            user_id: client.user_id.clone(),
            client_id: Some("svc-1".into()),
            resource: Some("https://gw.example.com/mcp/demo".into()),
            scopes: "mcp".into(),
            expires_at: now_ms() + 60_000,
            created_at: now_ms(),
        })
        .await
        .unwrap();
    let user_id = f
        .store
        .set_service_client_disabled("svc-1", true)
        .await
        .unwrap();
    assert_eq!(user_id, client.user_id);
    let token = f
        .store
        .find_access_token(b"svc-token")
        .await
        .unwrap()
        .unwrap();
    assert!(!token.is_active(now_ms()));
    let c = f.store.get_service_client("svc-1").await.unwrap().unwrap();
    assert!(c.disabled_at.is_some());
    f.store
        .set_service_client_disabled("svc-1", false)
        .await
        .unwrap();
    assert!(
        !f.store
            .get_user(&client.user_id)
            .await
            .unwrap()
            .is_disabled()
    );
    assert_eq!(f.store.list_service_clients().await.unwrap().len(), 1);

    // Deleting removes its user row and tokens.
    f.store.delete_service_client("svc-1").await.unwrap();
    assert!(f.store.get_service_client("svc-1").await.unwrap().is_none());
    assert!(f.store.get_user(&client.user_id).await.is_err());
    assert!(
        f.store
            .find_access_token(b"svc-token")
            .await
            .unwrap()
            .is_none()
    );
}
both_backends!(service_client_lifecycle, super::service_clients);

fn pat(id: &str, user: &str, hash: &[u8], expires_in_ms: i64) -> PersonalToken {
    PersonalToken {
        id: id.into(),
        token_hash: hash.to_vec(),
        user_id: user.into(),
        name: format!("token {id}"),
        upstreams: r#"["demo"]"#.into(),
        scopes: "mcp".into(),
        expires_at: now_ms() + expires_in_ms,
        revoked_at: None,
        last_used_at: None,
        created_at: now_ms(),
    }
}

async fn personal_tokens(f: Fixture) {
    let ada = f.user("ada@example.com").await;
    let bob = f.user("bob@example.com").await;
    f.store
        .insert_personal_token(&pat("p1", &ada.id, b"h1", 60_000))
        .await
        .unwrap();
    f.store
        .insert_personal_token(&pat("p2", &ada.id, b"h2", -1))
        .await
        .unwrap();
    f.store
        .insert_personal_token(&pat("p3", &bob.id, b"h3", 60_000))
        .await
        .unwrap();
    assert_eq!(
        f.store.list_personal_tokens(&ada.id).await.unwrap().len(),
        2
    );
    assert_eq!(
        f.store.count_active_personal_tokens(&ada.id).await.unwrap(),
        1
    );

    let (found, disabled) = f.store.find_personal_token(b"h1").await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), disabled), ("p1", false));
    assert!(found.is_active(now_ms()));
    assert!(
        f.store
            .find_personal_token(b"nope")
            .await
            .unwrap()
            .is_none()
    );
    f.store.set_user_disabled(&ada.id, true).await.unwrap();
    assert!(f.store.find_personal_token(b"h1").await.unwrap().unwrap().1);
    f.store.set_user_disabled(&ada.id, false).await.unwrap();

    // Last use: coalesced writes, never moving back.
    let at = now_ms();
    f.store
        .touch_personal_tokens(&[("p1".into(), at), ("p3".into(), at - 5)])
        .await
        .unwrap();
    f.store
        .touch_personal_tokens(&[("p1".into(), at - 1_000)])
        .await
        .unwrap();
    let (p1, _) = f.store.find_personal_token(b"h1").await.unwrap().unwrap();
    assert_eq!(p1.last_used_at, Some(at));

    // Only its owner revokes it (or anyone, given no owner: the holder at /oauth/revoke).
    assert_eq!(
        f.store
            .revoke_personal_token("p1", Some(&bob.id))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        f.store
            .revoke_personal_token("p1", Some(&ada.id))
            .await
            .unwrap(),
        Some(b"h1".to_vec())
    );
    assert_eq!(
        f.store
            .revoke_personal_token("p1", Some(&ada.id))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        f.store.revoke_personal_token("p3", None).await.unwrap(),
        Some(b"h3".to_vec())
    );
    let (p1, _) = f.store.find_personal_token(b"h1").await.unwrap().unwrap();
    assert!(!p1.is_active(now_ms()));

    // Revoking a user's credentials (password change, a dead provider grant) takes their
    // personal tokens too, except the one the change was made with.
    f.store
        .insert_personal_token(&pat("p4", &bob.id, b"h4", 60_000))
        .await
        .unwrap();
    f.store
        .insert_personal_token(&pat("p5", &bob.id, b"h5", 60_000))
        .await
        .unwrap();
    f.store
        .revoke_user_credentials(&bob.id, Some(b"h4"))
        .await
        .unwrap();
    let active = |hash: &'static [u8]| {
        let store = f.store.clone();
        async move {
            let (t, _) = store.find_personal_token(hash).await.unwrap().unwrap();
            t.is_active(now_ms())
        }
    };
    assert!(active(b"h4").await);
    assert!(!active(b"h5").await);
}
both_backends!(personal_token_lifecycle, super::personal_tokens);
