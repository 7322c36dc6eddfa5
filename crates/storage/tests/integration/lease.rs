//! The refresh lease: exactly one refresher per grant across replicas, nothing lost on a crash.

use std::time::Duration;

use mcpgate_storage::{LeaseClaim, StorageError};

use crate::support::{Fixture, tokens};

async fn grant(f: &Fixture) -> mcpgate_storage::ProviderGrant {
    let user = f.user("lease@example.com").await;
    let identity = f
        .store
        .create_identity(&user.id, "corp", "subject", &serde_json::json!({}))
        .await
        .unwrap();
    f.store
        .create_grant(
            &mcpgate_storage::new_id(),
            &user.id,
            &identity.id,
            "corp",
            &tokens("v1"),
        )
        .await
        .unwrap()
}

async fn claim_complete_release(f: Fixture) {
    let s = &f.store;
    let g = grant(&f).await;
    assert_eq!(g.version, 1);
    let ttl = Duration::from_secs(30);

    assert_eq!(
        s.claim_refresh_lease(&g.id, "a", 1, ttl).await.unwrap(),
        LeaseClaim::Claimed { version: 1 }
    );
    assert!(matches!(
        s.claim_refresh_lease(&g.id, "b", 1, ttl).await.unwrap(),
        LeaseClaim::HeldByOther { .. }
    ));
    // Only the holder may complete.
    let stolen = s.complete_refresh(&g.id, "b", 1, &tokens("b")).await;
    assert!(matches!(stolen, Err(StorageError::Conflict(_))));
    assert_eq!(
        s.complete_refresh(&g.id, "a", 1, &tokens("v2"))
            .await
            .unwrap(),
        2
    );

    let after = s.get_grant(&g.id).await.unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.access_token, b"sealed-access-v2");
    assert_eq!(
        after.refresh_token.as_deref(),
        Some(&b"sealed-refresh-v2"[..])
    );
    assert_eq!((after.lease_owner, after.lease_until), (None, None));

    // A waiter that read version 1 learns someone refreshed, and does not refresh again.
    assert_eq!(
        s.claim_refresh_lease(&g.id, "b", 1, ttl).await.unwrap(),
        LeaseClaim::Changed { version: 2 }
    );
    // A stale complete changes nothing.
    let stale = s.complete_refresh(&g.id, "a", 1, &tokens("stale")).await;
    assert!(matches!(stale, Err(StorageError::Conflict(_))));
    assert_eq!(
        s.get_grant(&g.id).await.unwrap().access_token,
        b"sealed-access-v2"
    );

    // Release after a failed refresh frees it for the next claimer.
    assert_eq!(
        s.claim_refresh_lease(&g.id, "c", 2, ttl).await.unwrap(),
        LeaseClaim::Claimed { version: 2 }
    );
    s.release_refresh_lease(&g.id, "someone-else")
        .await
        .unwrap();
    assert!(matches!(
        s.claim_refresh_lease(&g.id, "d", 2, ttl).await.unwrap(),
        LeaseClaim::HeldByOther { .. }
    ));
    s.release_refresh_lease(&g.id, "c").await.unwrap();
    assert_eq!(
        s.claim_refresh_lease(&g.id, "d", 2, ttl).await.unwrap(),
        LeaseClaim::Claimed { version: 2 }
    );

    // invalid_grant: dead grants are gone for everyone.
    s.mark_grant_dead(&g.id).await.unwrap();
    assert_eq!(
        s.claim_refresh_lease(&g.id, "e", 2, ttl).await.unwrap(),
        LeaseClaim::Gone
    );
    assert!(
        s.complete_refresh(&g.id, "d", 2, &tokens("x"))
            .await
            .is_err()
    );
    assert_eq!(
        s.claim_refresh_lease("missing", "e", 1, ttl).await.unwrap(),
        LeaseClaim::Gone
    );
    assert!(matches!(
        s.mark_grant_dead("missing").await,
        Err(StorageError::NotFound)
    ));
}
both_backends!(lease_claim_complete_release, super::claim_complete_release);

async fn expired_lease_is_claimable_and_a_crash_loses_nothing(f: Fixture) {
    let s = f.store.clone();
    let g = grant(&f).await;
    let id = g.id.clone();
    // A claimer takes the lease and dies before completing (the task is dropped).
    let crashed = tokio::spawn({
        let s = s.clone();
        let id = id.clone();
        async move {
            let claim = s
                .claim_refresh_lease(&id, "crashed", 1, Duration::from_millis(300))
                .await
                .unwrap();
            assert_eq!(claim, LeaseClaim::Claimed { version: 1 });
            std::future::pending::<()>().await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    crashed.abort();
    let _ = crashed.await;

    let held = s.get_grant(&id).await.unwrap();
    assert_eq!(held.lease_owner.as_deref(), Some("crashed"));
    assert_eq!(
        held.access_token, b"sealed-access-v1",
        "old tokens still there"
    );
    assert!(matches!(
        s.claim_refresh_lease(&id, "next", 1, Duration::from_secs(5))
            .await
            .unwrap(),
        LeaseClaim::HeldByOther { .. }
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        s.claim_refresh_lease(&id, "next", 1, Duration::from_secs(5))
            .await
            .unwrap(),
        LeaseClaim::Claimed { version: 1 }
    );
}
both_backends!(
    lease_expires_after_a_crash,
    super::expired_lease_is_claimable_and_a_crash_loses_nothing
);

async fn fifty_claimers_two_replicas_one_winner(f: Fixture) {
    let g = grant(&f).await;
    let replicas = [f.store.clone(), f.replica().await];
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = replicas[i % 2].clone();
        let id = g.id.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .claim_refresh_lease(&id, &format!("claimer-{i}"), 1, Duration::from_secs(30))
                .await
        }));
    }
    let mut claimed = 0;
    let mut held = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(LeaseClaim::Claimed { .. }) => claimed += 1,
            Ok(LeaseClaim::HeldByOther { .. }) => held += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((claimed, held), (1, 49));
}
both_backends!(
    lease_fifty_claimers_two_replicas,
    super::fifty_claimers_two_replicas_one_winner
);

async fn latest_live_grant(f: Fixture) {
    let s = &f.store;
    let g1 = grant(&f).await;
    assert_eq!(
        s.latest_live_grant(&g1.user_id)
            .await
            .unwrap()
            .map(|g| g.id),
        Some(g1.id.clone())
    );
    s.mark_grant_dead(&g1.id).await.unwrap();
    assert_eq!(s.latest_live_grant(&g1.user_id).await.unwrap(), None);
    assert_eq!(s.latest_live_grant("nobody").await.unwrap(), None);
}
both_backends!(latest_live_grant_skips_dead_ones, super::latest_live_grant);
