//! Access tokens by hash, refresh rotation with reuse detection, revoking a user's credentials.

use std::time::Duration;

use mcpgate_storage::{
    NewAccessToken, NewRefreshToken, NewTokenFamily, RotateOutcome, Successors, now_ms,
};

use crate::support::Fixture;

fn access(hash: &str, user: &str, family: Option<&str>) -> NewAccessToken {
    NewAccessToken {
        token_hash: hash.as_bytes().to_vec(),
        kind: "oauth".into(),
        family_id: family.map(String::from),
        user_id: user.into(),
        client_id: Some("client-1".into()),
        resource: Some("https://gw.example.com/mcp/demo".into()),
        scopes: "mcp".into(),
        expires_at: now_ms() + 3_600_000,
        created_at: now_ms(),
    }
}

fn refresh(hash: &str, user: &str, family: &str) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: hash.as_bytes().to_vec(),
        family_id: family.into(),
        user_id: user.into(),
        expires_at: now_ms() + 86_400_000,
        created_at: now_ms(),
    }
}

fn next(refresh: NewRefreshToken, access: NewAccessToken, sealed: Option<&[u8]>) -> Successors {
    Successors {
        refresh,
        access,
        sealed: sealed.map(<[u8]>::to_vec),
    }
}

/// A family with its first refresh token `r` and access token `a`.
async fn family(f: &Fixture, id: &str, user: &str, r: &str, a: &str) {
    let family = NewTokenFamily {
        id: id.into(),
        user_id: user.into(),
        client_id: Some("client-1".into()),
        resource: Some("https://gw.example.com/mcp/demo".into()),
        scopes: "mcp".into(),
        expires_at: now_ms() + 86_400_000,
        created_at: now_ms(),
    };
    f.store
        .create_token_family(&family, &refresh(r, user, id), &access(a, user, Some(id)))
        .await
        .unwrap();
}

async fn access_tokens(f: Fixture) {
    let s = &f.store;
    let user = f.user("t@example.com").await;
    s.insert_access_token(&access("a1", &user.id, None))
        .await
        .unwrap();
    let rec = s.find_access_token(b"a1").await.unwrap().unwrap();
    assert_eq!(rec.user_id, user.id);
    assert_eq!(
        rec.resource.as_deref(),
        Some("https://gw.example.com/mcp/demo")
    );
    assert!(rec.is_active(now_ms()));
    assert!(!rec.is_active(rec.expires_at), "expired at its expiry");
    assert_eq!(s.find_access_token(b"nope").await.unwrap(), None);

    // Disabling the user stops the token at once (the lookup joins the user).
    s.set_user_disabled(&user.id, true).await.unwrap();
    assert!(
        !s.find_access_token(b"a1")
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms())
    );
    s.set_user_disabled(&user.id, false).await.unwrap();

    assert!(s.revoke_access_token(b"a1").await.unwrap());
    assert!(
        !s.revoke_access_token(b"a1").await.unwrap(),
        "already revoked"
    );
    assert!(
        !s.find_access_token(b"a1")
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms())
    );
}
both_backends!(access_tokens_by_hash, super::access_tokens);

async fn rotation(f: Fixture) {
    let s = &f.store;
    let user = f.user("r@example.com").await;
    family(&f, "fam-1", &user.id, "r1", "a1").await;

    let uid = user.id.clone();
    let out = s
        .rotate_refresh_token(b"r1", Duration::ZERO, |fam| {
            Some(next(
                refresh("r2", &uid, &fam.id),
                access("a2", &uid, Some(&fam.id)),
                None,
            ))
        })
        .await
        .unwrap();
    match out {
        RotateOutcome::Rotated(fam) => {
            assert_eq!(fam.id, "fam-1");
            assert_eq!(
                fam.resource.as_deref(),
                Some("https://gw.example.com/mcp/demo")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        s.find_access_token(b"a2")
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms())
    );

    // Reusing the spent r1 revokes the whole family, including a2 and the unspent r2.
    let uid = user.id.clone();
    let reuse = s
        .rotate_refresh_token(b"r1", Duration::ZERO, |fam| {
            Some(next(
                refresh("r3", &uid, &fam.id),
                access("a3", &uid, Some(&fam.id)),
                None,
            ))
        })
        .await
        .unwrap();
    assert_eq!(reuse, RotateOutcome::Reused);
    assert!(
        !s.find_access_token(b"a2")
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms())
    );
    assert_eq!(
        s.find_access_token(b"a3").await.unwrap(),
        None,
        "nothing issued"
    );
    let uid = user.id.clone();
    let after = s
        .rotate_refresh_token(b"r2", Duration::ZERO, |fam| {
            Some(next(
                refresh("r4", &uid, &fam.id),
                access("a4", &uid, Some(&fam.id)),
                None,
            ))
        })
        .await
        .unwrap();
    assert_eq!(after, RotateOutcome::Invalid);

    let unknown = s
        .rotate_refresh_token(b"zz", Duration::ZERO, |_| {
            unreachable!("no successors for an unknown token")
        })
        .await
        .unwrap();
    assert_eq!(unknown, RotateOutcome::Invalid);
}
both_backends!(refresh_rotation_and_reuse_revokes_family, super::rotation);

async fn concurrent_rotation(f: Fixture) {
    // Two replicas spend the same refresh token at once: one wins, the other is reuse.
    let user = f.user("cc@example.com").await;
    let s = &f.store;
    family(&f, "fam-c", &user.id, "rc", "ac").await;
    let replica = f.replica().await;
    let mut tasks = Vec::new();
    for (i, store) in [s.clone(), replica].into_iter().enumerate() {
        let uid = user.id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh_token(b"rc", Duration::ZERO, |fam| {
                    Some(next(
                        refresh(&format!("rc-next-{i}"), &uid, &fam.id),
                        access(&format!("ac-next-{i}"), &uid, Some(&fam.id)),
                        None,
                    ))
                })
                .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().unwrap());
    }
    outcomes.sort_by_key(|o| matches!(o, RotateOutcome::Reused));
    assert!(
        matches!(
            outcomes[..],
            [RotateOutcome::Rotated(_), RotateOutcome::Reused]
        ),
        "exactly one spend wins, the other is reuse: {outcomes:?}"
    );
}
both_backends!(
    refresh_concurrent_spend_has_one_winner,
    super::concurrent_rotation
);

async fn revoke_user(f: Fixture) {
    let s = &f.store;
    let user = f.user("pw@example.com").await;
    let other = f.user("other@example.com").await;
    s.insert_access_token(&access("keep", &user.id, None))
        .await
        .unwrap();
    s.insert_access_token(&access("drop", &user.id, None))
        .await
        .unwrap();
    s.insert_access_token(&access("theirs", &other.id, None))
        .await
        .unwrap();
    s.create_session(b"sess", &user.id, now_ms() + 60_000)
        .await
        .unwrap();

    s.revoke_user_credentials(&user.id, Some(b"keep"))
        .await
        .unwrap();
    let now = now_ms();
    assert!(
        s.find_access_token(b"keep")
            .await
            .unwrap()
            .unwrap()
            .is_active(now)
    );
    assert!(
        !s.find_access_token(b"drop")
            .await
            .unwrap()
            .unwrap()
            .is_active(now)
    );
    assert!(
        s.find_access_token(b"theirs")
            .await
            .unwrap()
            .unwrap()
            .is_active(now)
    );
    assert_eq!(s.find_session(b"sess").await.unwrap(), None);
}
both_backends!(
    revoke_user_credentials_keeps_only_the_caller,
    super::revoke_user
);

async fn concurrent_rotation_of_different_families(f: Fixture) {
    // Many clients refreshing at once (each its own family) must all succeed: on SQLite a
    // transaction that reads before it writes would fail at once with "database is locked"
    // when another writer is active, instead of waiting.
    let user = f.user("many@example.com").await;
    for i in 0..16 {
        family(
            &f,
            &format!("fam-{i}"),
            &user.id,
            &format!("r-{i}"),
            &format!("a-{i}"),
        )
        .await;
    }
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = f.store.clone();
        let uid = user.id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh_token(format!("r-{i}").as_bytes(), Duration::ZERO, |fam| {
                    Some(next(
                        refresh(&format!("r-{i}-next"), &uid, &fam.id),
                        access(&format!("a-{i}-next"), &uid, Some(&fam.id)),
                        None,
                    ))
                })
                .await
        }));
    }
    for t in tasks {
        let outcome = t.await.unwrap().unwrap();
        assert!(matches!(outcome, RotateOutcome::Rotated(_)), "{outcome:?}");
    }
}
both_backends!(
    refresh_concurrent_different_families_all_succeed,
    super::concurrent_rotation_of_different_families
);

async fn concurrent_rotation_within_grace(f: Fixture) {
    // A client sends the same refresh twice at once (or retries): within the grace period both
    // get the one successor pair the winner stored, and the family lives on.
    let user = f.user("grace@example.com").await;
    family(&f, "fam-g", &user.id, "rg", "ag").await;
    let replica = f.replica().await;
    let grace = Duration::from_secs(5);
    let mut tasks = Vec::new();
    for (i, store) in [f.store.clone(), replica].into_iter().enumerate() {
        let uid = user.id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh_token(b"rg", grace, |fam| {
                    Some(next(
                        refresh(&format!("rg-next-{i}"), &uid, &fam.id),
                        access(&format!("ag-next-{i}"), &uid, Some(&fam.id)),
                        Some(format!("sealed pair {i}").as_bytes()),
                    ))
                })
                .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().unwrap());
    }
    outcomes.sort_by_key(|o| matches!(o, RotateOutcome::Retried { .. }));
    let winner = match &outcomes[..] {
        [
            RotateOutcome::Rotated(_),
            RotateOutcome::Retried { sealed, .. },
        ] => String::from_utf8(sealed.clone()).unwrap(),
        other => panic!("one spend and one retry expected: {other:?}"),
    };
    let i = winner.strip_prefix("sealed pair ").unwrap();
    let access_hash = format!("ag-next-{i}");
    assert!(
        f.store
            .find_access_token(access_hash.as_bytes())
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms()),
        "the family lives on"
    );
    let other = if i == "0" { "ag-next-1" } else { "ag-next-0" };
    assert_eq!(
        f.store.find_access_token(other.as_bytes()).await.unwrap(),
        None,
        "one pair issued"
    );
}
both_backends!(
    refresh_concurrent_spend_within_grace_returns_one_pair,
    super::concurrent_rotation_within_grace
);

async fn reuse_after_grace(f: Fixture) {
    let s = &f.store;
    let user = f.user("late@example.com").await;
    family(&f, "fam-l", &user.id, "rl", "al").await;
    let grace = Duration::from_millis(300);
    let uid = user.id.clone();
    let first = s
        .rotate_refresh_token(b"rl", grace, |fam| {
            Some(next(
                refresh("rl2", &uid, &fam.id),
                access("al2", &uid, Some(&fam.id)),
                Some(b"pair"),
            ))
        })
        .await
        .unwrap();
    assert!(matches!(first, RotateOutcome::Rotated(_)), "{first:?}");
    let retry = s
        .rotate_refresh_token(b"rl", grace, |_| unreachable!("a retry mints nothing"))
        .await
        .unwrap();
    assert!(
        matches!(&retry, RotateOutcome::Retried { sealed, .. } if sealed == b"pair"),
        "{retry:?}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Swept: nothing of the pair is kept past the grace period.
    assert_eq!(s.forget_refresh_successors(grace).await.unwrap(), 1);
    let late = s
        .rotate_refresh_token(b"rl", grace, |_| unreachable!("reuse mints nothing"))
        .await
        .unwrap();
    assert_eq!(late, RotateOutcome::Reused);
    assert!(
        !s.find_access_token(b"al2")
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms()),
        "reuse after the grace revokes the family"
    );
}
both_backends!(
    refresh_reuse_after_grace_revokes_the_family,
    super::reuse_after_grace
);
