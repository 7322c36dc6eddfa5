//! The authorization server's edges under abuse (issue 19): bounded dynamic registration,
//! consent per upstream and scope, control characters refused at the edge, strict loopback
//! redirects, Unicode-normalised emails, and `redirect_uri` only when it was sent.

use mcpgate_tests::TestDb;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::oauth::{AuthRig, PASSWORD, USER};

/// Runs `$body(db)` as two tests: on SQLite and on PostgreSQL (skipped when not configured).
macro_rules! on_both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                $body(mcpgate_tests::TestDb::sqlite().unwrap()).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if let Some(db) =
                    mcpgate_tests::TestDb::postgres(concat!("e2e_", stringify!($name)))
                        .await
                        .unwrap()
                {
                    $body(db).await;
                }
            }
        }
    };
}

// ---- item 8: emails are NFKC-normalised and lower-cased for lookup and uniqueness -------

async fn emails_normalised(db: TestDb) {
    let rig = AuthRig::start_on(db, |_| {}).await;
    let c = Client::new();
    let login = |email: &'static str, password: &'static str| {
        let c = c.clone();
        let url = rig.url("/api/v1/login");
        async move {
            c.post(url)
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .unwrap()
        }
    };
    let admin: Value = login(USER, PASSWORD).await.json().await.unwrap();
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let create = |email: &'static str| {
        let c = c.clone();
        let url = rig.url("/api/v1/admin/users");
        let admin = admin.clone();
        async move {
            c.post(url)
                .bearer_auth(admin)
                .json(&json!({ "email": email, "password": "zoë's long password" }))
                .send()
                .await
                .unwrap()
        }
    };
    // Precomposed ë (U+00EB).
    let r = create("zo\u{eb}@example.com").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The same address typed with a combining diaeresis, in capitals, or in full-width
    // letters finds the same account.
    for variant in [
        "zo\u{eb}@example.com",
        "zoe\u{308}@example.com",
        "ZOE\u{308}@EXAMPLE.COM",
        "\u{ff5a}\u{ff4f}\u{eb}@example.com",
    ] {
        let r = login(variant, "zoë's long password").await;
        assert_eq!(r.status(), StatusCode::OK, "{variant:?}");
    }
    // A second account that normalises to the same email is refused.
    for twin in ["zoe\u{308}@example.com", "ZO\u{cb}@Example.com"] {
        let r = create(twin).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "{twin:?}");
    }
}
on_both_backends!(
    emails_are_unicode_normalised_for_sign_in_and_uniqueness,
    super::emails_normalised
);
