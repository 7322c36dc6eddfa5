//! Local accounts: sign-in for programs and people, admin user management, abuse limits.

use std::time::{Duration, Instant};

use mcpgate_core::SecretString;
use mcpgate_server::Config;
use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::{Value, json};

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "correct horse battery staple";

fn with_admin(mut config: Config) -> Config {
    config.bootstrap.admin_email = Some(ADMIN.into());
    config.bootstrap.admin_password = Some(SecretString::new(ADMIN_PW));
    config
}

async fn login(server: &TestServer, email: &str, password: &str) -> reqwest::Response {
    Client::new()
        .post(server.url("/api/v1/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn token(server: &TestServer, email: &str, password: &str) -> String {
    let r = login(server, email, password).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    body["access_token"].as_str().unwrap().to_owned()
}

async fn me(server: &TestServer, token: &str) -> reqwest::Response {
    Client::new()
        .get(server.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn create_user(server: &TestServer, admin: &str, email: &str, password: &str) -> Value {
    let r = Client::new()
        .post(server.url("/api/v1/admin/users"))
        .bearer_auth(admin)
        .json(&json!({ "email": email, "password": password, "display_name": "Test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_login_me_and_every_bad_input() {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(with_admin(test_config(db.url())))
        .await
        .unwrap();
    let admin = token(&server, ADMIN, ADMIN_PW).await;

    let body: Value = me(&server, &admin).await.json().await.unwrap();
    assert_eq!(body["email"], ADMIN);
    assert_eq!(body["is_admin"], true);
    assert!(body.get("password_hash").is_none());

    // Wrong password and unknown email: the same status and the same body.
    let wrong = login(&server, ADMIN, "not the password at all").await;
    let unknown = login(&server, "nobody@example.com", "not the password at all").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text().await.unwrap(), unknown.text().await.unwrap());

    let client = Client::new();
    let post = |body: &'static str| {
        client
            .post(server.url("/api/v1/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for bad in [
        "{not json",
        r#"{"email":"a@example.com"}"#,
        r#"{"password":"x"}"#,
        "[]",
    ] {
        let r = post(bad).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{bad}");
    }

    // A 1 MiB password is refused before any hashing: quickly, with 400.
    let huge = "x".repeat(1024 * 1024);
    let started = Instant::now();
    let r = login(&server, ADMIN, &huge).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(started.elapsed() < Duration::from_secs(2));

    // No token, a bad token.
    let r = client.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = me(&server, "mcpgate_at_forged").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_email_costs_the_same_hash_as_a_wrong_password() {
    let db = TestDb::sqlite().unwrap();
    let mut config = with_admin(test_config(db.url()));
    // Real parameters here: the point is that both paths pay for one verify.
    config.auth.hashing = Default::default();
    config.auth.rate_limit = mcpgate_server::config::RateLimitConfig::off();
    let server = TestServer::start(config).await.unwrap();
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..6 {
        let t = Instant::now();
        login(&server, ADMIN, "a wrong password here").await;
        wrong.push(t.elapsed());
        let t = Instant::now();
        login(
            &server,
            &format!("ghost{i}@example.com"),
            "a wrong password here",
        )
        .await;
        unknown.push(t.elapsed());
    }
    wrong.sort();
    unknown.sort();
    let (w, u) = (wrong[3], unknown[3]);
    // Skipping the dummy verify would make unknown emails several times faster.
    assert!(u * 2 > w, "unknown {u:?} vs wrong {w:?}");
    assert!(w * 2 > u, "unknown {u:?} vs wrong {w:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_users_cannot_sign_in_and_their_tokens_stop() {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(with_admin(test_config(db.url())))
        .await
        .unwrap();
    let admin = token(&server, ADMIN, ADMIN_PW).await;
    let user = create_user(&server, &admin, "bob@example.com", "bob's long password").await;
    let id = user["id"].as_str().unwrap();
    let bob = token(&server, "BOB@example.com", "bob's long password").await;
    assert_eq!(me(&server, &bob).await.status(), StatusCode::OK);

    let client = Client::new();
    // Only admins manage users.
    let r = client
        .post(server.url(&format!("/api/v1/admin/users/{id}/disable")))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = client
        .post(server.url(&format!("/api/v1/admin/users/{id}/disable")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&server, &bob).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&server, "bob@example.com", "bob's long password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let r = client
        .post(server.url(&format!("/api/v1/admin/users/{id}/enable")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    token(&server, "bob@example.com", "bob's long password").await;

    let r = client
        .post(server.url("/api/v1/admin/users/no-such-id/disable"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_burst_gets_429_with_retry_after() {
    let db = TestDb::sqlite().unwrap();
    let mut config = with_admin(test_config(db.url()));
    config.auth.rate_limit.per_account_per_minute = 3;
    let server = TestServer::start(config).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            login(&server, ADMIN, "wrong password!!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = login(&server, ADMIN, ADMIN_PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    // Other accounts are not locked out by someone hammering this one.
    assert_eq!(
        login(&server, "other@example.com", "whatever password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn password_change_revokes_other_sessions_and_tokens() {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(with_admin(test_config(db.url())))
        .await
        .unwrap();
    let admin = token(&server, ADMIN, ADMIN_PW).await;
    create_user(
        &server,
        &admin,
        "carol@example.com",
        "carol's first password",
    )
    .await;
    let first = token(&server, "carol@example.com", "carol's first password").await;
    let second = token(&server, "carol@example.com", "carol's first password").await;
    let browser = browser();
    let (_, cookie_ok) = browser_sign_in(
        &browser,
        &server,
        "carol@example.com",
        "carol's first password",
    )
    .await;
    assert!(cookie_ok);

    let change = |current: &str, new: &str| {
        Client::new()
            .post(server.url("/api/v1/me/password"))
            .bearer_auth(&first)
            .json(&json!({ "current_password": current, "new_password": new }))
            .send()
    };
    let r = change("not my password!", "carol's second password")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = change("carol's first password", "short").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = change("carol's first password", "carol's second password")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        me(&server, &first).await.status(),
        StatusCode::OK,
        "the caller's token stays"
    );
    assert_eq!(
        me(&server, &second).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let home = browser.get(server.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(home.headers()["location"], "/login");
    assert_eq!(
        login(&server, "carol@example.com", "carol's first password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    token(&server, "carol@example.com", "carol's second password").await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bootstrap_admin_survives_restarts_unchanged() {
    let db = TestDb::sqlite().unwrap();
    let store = db.store().await.unwrap();
    let server = TestServer::start(with_admin(test_config(db.url())))
        .await
        .unwrap();
    server.stop().await.unwrap();
    let first = store.find_user_by_email(ADMIN).await.unwrap().unwrap();
    assert!(first.is_admin);

    // Restart with a different bootstrap password: the existing admin is left alone.
    let mut config = with_admin(test_config(db.url()));
    config.bootstrap.admin_password = Some(SecretString::new("a different password entirely"));
    let server = TestServer::start(config).await.unwrap();
    let again = store.find_user_by_email(ADMIN).await.unwrap().unwrap();
    assert_eq!(again, first, "not re-hashed, not overwritten");
    token(&server, ADMIN, ADMIN_PW).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_creates_many_users_and_one_bad_row_does_not_sink_the_rest() {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(with_admin(test_config(db.url())))
        .await
        .unwrap();
    let admin = token(&server, ADMIN, ADMIN_PW).await;
    let mut users: Vec<Value> = (0..8)
        .map(|i| json!({ "email": format!("u{i}@example.com"), "password": "a long enough password" }))
        .collect();
    users.insert(
        3,
        json!({ "email": "short@example.com", "password": "short" }),
    );
    users.insert(
        5,
        json!({ "email": "u0@example.com", "password": "a long enough password" }),
    );
    users.push(json!({ "email": "not-an-email", "password": "a long enough password" }));
    let r = Client::new()
        .post(server.url("/api/v1/admin/users/batch"))
        .bearer_auth(&admin)
        .json(&json!({ "users": users }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let results: Vec<Value> = r.json().await.unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 11);
    assert_eq!(statuses.iter().filter(|s| **s == "created").count(), 8);
    assert_eq!(results[3]["error"], "invalid_request");
    assert_eq!(results[3]["email"], "short@example.com");
    assert_eq!(results[10]["error"], "invalid_request");
    // u0 appears twice: exactly one of the two made it.
    let u0: Vec<&str> = results
        .iter()
        .filter(|r| r["email"] == "u0@example.com")
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(u0.iter().filter(|s| **s == "created").count(), 1, "{u0:?}");
    token(&server, "u7@example.com", "a long enough password").await;

    // Paging: 9 users in all, 4 per page.
    let client = Client::new();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut req = client
            .get(server.url("/api/v1/admin/users"))
            .bearer_auth(&admin)
            .query(&[("limit", "4")]);
        if let Some(a) = &after {
            req = req.query(&[("after", a.as_str())]);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        for u in page["users"].as_array().unwrap() {
            seen.push(u["email"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9, "{seen:?}");
    server.stop().await.unwrap();
}

fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The hidden `csrf` value of a page's form.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// Signs in through the HTML form; returns the form fields used and whether a session
/// cookie was set.
async fn browser_sign_in(
    browser: &Client,
    server: &TestServer,
    email: &str,
    password: &str,
) -> (Vec<(String, String)>, bool) {
    let page = browser
        .get(server.url("/login?return_to=/after"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = vec![
        ("email".to_owned(), email.to_owned()),
        ("password".to_owned(), password.to_owned()),
        ("csrf".to_owned(), csrf_of(&page)),
        ("return_to".to_owned(), "/after".to_owned()),
    ];
    let r = browser
        .post(server.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let set_session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("mcpgate_session="));
    (form, r.status() == StatusCode::SEE_OTHER && set_session)
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_sign_in_with_csrf_return_to_and_sign_out() {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(with_admin(test_config(db.url())))
        .await
        .unwrap();
    let b = browser();

    let page = b.get(server.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("<label for=\"email\">") && html.contains("<label for=\"password\">"));

    // A post without a CSRF token, or with a made-up one, is refused.
    let r = b
        .post(server.url("/login"))
        .form(&[("email", ADMIN), ("password", ADMIN_PW)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b
        .post(server.url("/login"))
        .form(&[("email", ADMIN), ("password", ADMIN_PW), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Signing in returns to where the person came from.
    let page = b
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("email", ADMIN),
        ("password", ADMIN_PW),
        ("csrf", &csrf_of(&page)),
        ("return_to", "/after"),
    ];
    let r = b
        .post(server.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/after");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("mcpgate_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let home = b.get(server.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let home = home.text().await.unwrap();
    assert!(home.contains(ADMIN));

    // The same form again (a replayed CSRF token) is refused.
    let r = b
        .post(server.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An off-site return_to never becomes a redirect off-site.
    for evil in [
        "https://evil.example/x",
        "//evil.example/x",
        "/\\evil.example",
    ] {
        let other = browser();
        let page = other
            .get(server.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = other
            .post(server.url("/login"))
            .form(&[
                ("email", ADMIN),
                ("password", ADMIN_PW),
                ("csrf", &csrf_of(&page)),
                ("return_to", evil),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/", "{evil}");
    }

    // A wrong password re-renders the form with a message, and no session.
    let other = browser();
    let page = other
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = other
        .post(server.url("/login"))
        .form(&[
            ("email", ADMIN),
            ("password", "wrong wrong wrong"),
            ("csrf", &csrf_of(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Invalid email or password")
    );

    // Sign out ends the session.
    let r = b
        .post(server.url("/logout"))
        .form(&[("csrf", csrf_of(&home))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b.get(server.url("/")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/login");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn database_down_gives_503_and_nothing_half_written() {
    let Some(db) = TestDb::postgres("database_down_gives_503_and_nothing_half_written")
        .await
        .unwrap()
    else {
        return;
    };
    let mut config = with_admin(test_config(db.url()));
    config.database.connect_timeout_ms = 500;
    config.database.wait_timeout_ms = 500;
    let server = TestServer::start(config).await.unwrap();
    let admin = token(&server, ADMIN, ADMIN_PW).await;
    let TestDb::Postgres(pg) = &db else {
        unreachable!()
    };

    pg.set_available(false).await.unwrap();
    let r = Client::new()
        .post(server.url("/api/v1/admin/users/batch"))
        .bearer_auth(&admin)
        .json(&json!({ "users": [{ "email": "late@example.com", "password": "a long enough password" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let r = login(&server, ADMIN, ADMIN_PW).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    pg.set_available(true).await.unwrap();
    let store = db.store().await.unwrap();
    assert_eq!(
        store.find_user_by_email("late@example.com").await.unwrap(),
        None
    );
    assert_eq!(store.list_users(None, 100).await.unwrap().len(), 1);
    // And it recovers by itself.
    token(&server, ADMIN, ADMIN_PW).await;
    server.stop().await.unwrap();
}

/// The process's resident memory, from `/proc/self/status` (Linux).
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Each hashing thread hashes in one reusable block of argon2 memory: 220 sign-ins with the
/// production cost (19 MiB a hash) leave RSS within permits × m_cost of where it was before
/// the first, plus a margin. (Allocating the block per hash let the allocator keep the freed
/// buffers: 10 sign-ins took a gateway from 16 MiB to 169 MiB.)
#[tokio::test(flavor = "multi_thread")]
async fn memory_stays_bounded_across_200_sign_ins() {
    let Some(_) = rss_mib() else {
        eprintln!("SKIPPED memory_stays_bounded_across_200_sign_ins: no /proc/self/status");
        return;
    };
    let db = TestDb::sqlite().unwrap();
    let mut config = with_admin(test_config(db.url()));
    // The production cost (OWASP: 19 MiB, t=2), two hashing threads, no sign-in limits.
    config.auth.hashing.m_cost_kib = 19 * 1024;
    config.auth.hashing.t_cost = 2;
    config.auth.hashing.permits = std::num::NonZeroUsize::new(2);
    config.auth.rate_limit = mcpgate_server::config::RateLimitConfig::off();
    let server = TestServer::start(config).await.unwrap();
    let permits = 2.0;
    let m_cost_mib = 19.0;
    let started = rss_mib().unwrap();
    // Warm up: both hashing threads have hashed, the pools and caches are filled.
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            login(&server, ADMIN, ADMIN_PW),
            login(&server, ADMIN, "wrong password, still a full verify")
        );
        assert_eq!(a.status(), StatusCode::OK);
        assert_eq!(b.status(), StatusCode::UNAUTHORIZED);
    }
    let warm = rss_mib().unwrap();
    for _ in 0..100 {
        let (a, b) = tokio::join!(
            login(&server, ADMIN, ADMIN_PW),
            login(
                &server,
                "nobody@example.com",
                "an unknown user costs a verify too"
            )
        );
        assert_eq!(a.status(), StatusCode::OK);
        assert_eq!(b.status(), StatusCode::UNAUTHORIZED);
    }
    let after = rss_mib().unwrap();
    eprintln!(
        "RSS: {started:.1} MiB before, {warm:.1} MiB after 20 sign-ins, {after:.1} MiB after 220"
    );
    // Nothing more may stay than one block per hashing thread, and a margin for the rest of
    // the process (tokens, caches, the test's own client).
    let bound = started + permits * m_cost_mib + 16.0;
    assert!(
        after <= bound,
        "RSS grew to {after:.1} MiB (bound {bound:.1} MiB)"
    );
    server.stop().await.unwrap();
}
