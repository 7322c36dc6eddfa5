//! Per-user upstream connections: connect, reconnect (version bump), list, the refresh lease
//! (one holder, compare-and-swap, release), disconnect, isolation between users.

use std::time::Duration;

use mcpgate_storage::{LeaseClaim, StorageError};

use crate::support::Fixture;

async fn connect_refresh_disconnect(f: Fixture) {
    let s = &f.store;
    let alice = f.user("alice-conn@example.com").await;
    let bob = f.user("bob-conn@example.com").await;
    let ttl = Duration::from_secs(30);

    assert_eq!(s.connected_account(&alice.id, "files").await.unwrap(), None);
    assert_eq!(
        s.put_user_connection(&alice.id, "files", "user_oauth", b"sealed-1")
            .await
            .unwrap(),
        1
    );
    s.put_user_connection(&alice.id, "tracker", "user_secret", b"pat")
        .await
        .unwrap();
    s.put_user_connection(&bob.id, "files", "user_oauth", b"bob-1")
        .await
        .unwrap();

    // The lease: one holder; only it completes; the version moves on.
    assert_eq!(
        s.claim_connection_refresh(&alice.id, "files", "a", 1, ttl)
            .await
            .unwrap(),
        LeaseClaim::Claimed { version: 1 }
    );
    assert!(matches!(
        s.claim_connection_refresh(&alice.id, "files", "b", 1, ttl)
            .await
            .unwrap(),
        LeaseClaim::HeldByOther { .. }
    ));
    let stolen = s
        .complete_connection_refresh(&alice.id, "files", "b", 1, b"stolen")
        .await;
    assert!(matches!(stolen, Err(StorageError::Conflict(_))));
    assert_eq!(
        s.complete_connection_refresh(&alice.id, "files", "a", 1, b"sealed-2")
            .await
            .unwrap(),
        2
    );
    let now = s
        .connected_account(&alice.id, "files")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.sealed.as_slice(), now.version), (&b"sealed-2"[..], 2));
    assert_eq!((now.lease_owner, now.lease_until), (None, None));
    // A waiter that saw version 1 learns it changed.
    assert_eq!(
        s.claim_connection_refresh(&alice.id, "files", "b", 1, ttl)
            .await
            .unwrap(),
        LeaseClaim::Changed { version: 2 }
    );
    // A failed refresh gives the lease back.
    s.claim_connection_refresh(&alice.id, "files", "a", 2, ttl)
        .await
        .unwrap();
    s.release_connection_refresh(&alice.id, "files", "a")
        .await
        .unwrap();
    assert_eq!(
        s.claim_connection_refresh(&alice.id, "files", "b", 2, ttl)
            .await
            .unwrap(),
        LeaseClaim::Claimed { version: 2 }
    );
    // Reconnecting replaces the grant, bumps the version and frees the lease.
    assert_eq!(
        s.put_user_connection(&alice.id, "files", "user_oauth", b"sealed-new")
            .await
            .unwrap(),
        3
    );
    let now = s
        .connected_account(&alice.id, "files")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.lease_owner, None);

    let listed: Vec<(String, String)> = s
        .list_connected_accounts(&alice.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.upstream, c.kind))
        .collect();
    assert_eq!(
        listed,
        [
            ("files".to_owned(), "user_oauth".to_owned()),
            ("tracker".to_owned(), "user_secret".to_owned())
        ]
    );

    assert!(s.delete_user_connection(&alice.id, "files").await.unwrap());
    assert!(!s.delete_user_connection(&alice.id, "files").await.unwrap());
    assert_eq!(
        s.claim_connection_refresh(&alice.id, "files", "a", 3, ttl)
            .await
            .unwrap(),
        LeaseClaim::Gone
    );
    // Bob's connection is his own and untouched.
    let b = s
        .connected_account(&bob.id, "files")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.sealed, b"bob-1");
}
both_backends!(
    connect_refresh_disconnect_per_user,
    super::connect_refresh_disconnect
);
