//! Abuse found when the gateway was attacked as a penetration tester would (issue 19): each
//! test shows what a client sees once it is fixed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mcpgate_core::SecretString;
use mcpgate_tests::{TestDb, TestServer, test_config};
use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::oauth::{AuthRig, call_ok, list_tools_with_host, tokens};

const OWNER: &str = "owner@example.com";
const OWNER_PW: &str = "the owner's long password";

// ---- 2. Sign-in lock-out that does not lock the owner out ----

/// The owner's account; the client address is taken from `X-Forwarded-For` (one trusted hop),
/// so one test can play several addresses.
async fn sign_in_gate() -> (TestServer, TestDb) {
    let db = TestDb::sqlite().unwrap();
    let mut config = test_config(db.url());
    config.bootstrap.admin_email = Some(OWNER.into());
    config.bootstrap.admin_password = Some(SecretString::new(OWNER_PW));
    config.auth.rate_limit.forwarded_hops = 1;
    (TestServer::start(config).await.unwrap(), db)
}

async fn api_login(server: &TestServer, from: &str, email: &str, password: &str) -> StatusCode {
    Client::new()
        .post(server.url("/api/v1/login"))
        .header("x-forwarded-for", from)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in through the HTML form from `from`; the status of the form post.
async fn form_login(b: &Client, server: &TestServer, from: &str, password: &str) -> StatusCode {
    let page = b
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let needle = "name=\"csrf\" value=\"";
    let at = page.find(needle).unwrap() + needle.len();
    let csrf = page[at..].split('"').next().unwrap().to_owned();
    b.post(server.url("/login"))
        .header("x-forwarded-for", from)
        .form(&[
            ("email", OWNER),
            ("password", password),
            ("csrf", &csrf),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = Client::new()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attacker_guessing_the_owners_password_cannot_keep_the_owner_out() {
    let (server, db) = sign_in_gate().await;
    // The owner signed in from this browser at home earlier.
    let owners_browser = browser();
    assert_eq!(
        form_login(&owners_browser, &server, "10.0.0.1", OWNER_PW).await,
        StatusCode::SEE_OTHER
    );
    // An attacker at one address guesses, and keeps guessing.
    let mut refused = 0;
    for _ in 0..30 {
        match api_login(&server, "10.6.6.6", OWNER, "a wrong guess here").await {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(refused, 25, "five guesses, then that address waits");
    // The owner gets in: from another address, after a back-off of a second at most; from the
    // known browser; from the known address.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        form_login(&browser(), &server, "10.0.0.50", OWNER_PW).await,
        StatusCode::SEE_OTHER,
        "one address guessing does not lock the owner out elsewhere"
    );
    // Guessing from more addresses makes unknown clients back off (2 s after a sixth failure,
    // doubling)...
    assert_eq!(
        api_login(&server, "10.6.6.7", OWNER, "a wrong guess here").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        form_login(&browser(), &server, "10.9.9.9", OWNER_PW).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a stranger's browser at a new address backs off"
    );
    // ...but not the owner's browser, wherever it is, nor an address the owner signed in from.
    assert_eq!(
        form_login(&owners_browser, &server, "10.0.0.99", OWNER_PW).await,
        StatusCode::SEE_OTHER,
        "a browser that signed in before is not locked out"
    );
    assert_eq!(
        api_login(&server, "10.0.0.1", OWNER, OWNER_PW).await,
        StatusCode::OK,
        "an address the owner signed in from is not locked out"
    );
    // The lock-outs are counted and audited.
    assert!(
        metric(
            &server,
            "mcpgate_signin_lockouts_total{scope=\"account_address\"}"
        )
        .await
            >= 1.0
    );
    assert!(metric(&server, "mcpgate_signin_lockouts_total{scope=\"account\"}").await >= 1.0);
    server.stop().await.unwrap();
    let events = db
        .store()
        .await
        .unwrap()
        .recent_audit_events(100)
        .await
        .unwrap();
    let lockouts: Vec<Value> = events
        .iter()
        .filter(|e| e.action == "signin.lockout")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    assert!(
        lockouts
            .iter()
            .any(|d| d["scope"] == "account_address" && d["address"] == "10.6.6.6"),
        "{lockouts:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "signin.lockout" && e.target.as_deref() == Some(OWNER))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_spraying_passwords_over_many_accounts_is_limited() {
    let (server, _db) = sign_in_gate().await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        statuses.push(
            api_login(
                &server,
                "10.7.7.7",
                &format!("user{i}@example.com"),
                "Summer2026!",
            )
            .await,
        );
    }
    let wrong = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(wrong, 20, "{statuses:?}");
    assert!(
        statuses[20..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    // Another address is not affected.
    assert_eq!(
        api_login(&server, "10.8.8.8", "user99@example.com", "Summer2026!").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(metric(&server, "mcpgate_signin_lockouts_total{scope=\"address\"}").await >= 1.0);
    server.stop().await.unwrap();
}

// ---- 3. Slowloris ----

async fn plain_gate() -> (TestServer, TestDb) {
    let db = TestDb::sqlite().unwrap();
    let server = TestServer::start(test_config(db.url())).await.unwrap();
    (server, db)
}

fn addr(server: &TestServer) -> SocketAddr {
    server.base.trim_start_matches("http://").parse().unwrap()
}

/// Whether the server closed the connection: a read sees end of file or a reset.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close is fine too; keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_trickling_header_bytes_is_cut_off_after_the_header_timeout() {
    let (server, _db) = plain_gate().await;
    // The default `http.header_read_timeout_secs`.
    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr(&server)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: gate\r\n")
        .await
        .unwrap();
    // And one that sends nothing at all.
    let mut silent = TcpStream::connect(addr(&server)).await.unwrap();
    let mut cut_off = None;
    while started.elapsed() < timeout + Duration::from_secs(5) {
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        if closed_within(&mut slow, Duration::from_secs(1)).await {
            cut_off = Some(started.elapsed());
            break;
        }
    }
    let cut_off = cut_off.expect("the trickling connection was never closed");
    assert!(
        cut_off >= timeout - Duration::from_secs(1) && cut_off <= timeout + Duration::from_secs(3),
        "closed after {cut_off:?}"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "a connection that never sends a request is closed too"
    );
    // Normal requests are unaffected.
    let r = Client::new()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await.unwrap();
}

async fn connect_from(local: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((local, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_per_address_cap_are_closed_and_other_addresses_still_work() {
    let (server, _db) = plain_gate().await;
    // The default `http.max_connections_per_address`.
    let cap = 256;
    let to = addr(&server);
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(connect_from([127, 0, 0, 1], to).await);
    }
    // Let the server accept them all before the one over the cap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = connect_from([127, 0, 0, 1], to).await;
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gate\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))) && answer.is_empty(),
        "the connection over the cap is closed at once, unanswered: {read:?} {:?}",
        String::from_utf8_lossy(&answer)
    );
    // Another address (a loopback alias) is served.
    let mut other = connect_from([127, 0, 0, 2], to).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), other.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // A slot comes back when a connection ends.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from([127, 0, 0, 1], to).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), again.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    drop(held);
    server.stop().await.unwrap();
}

// ---- 7. A refresh retried or sent twice at once is not theft ----

async fn refresh(rig: &AuthRig, client_id: &str, token: &str) -> (StatusCode, Value) {
    let r = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn refresh_twice_at_once(db: TestDb) {
    let rig = AuthRig::start_on(db, |_| {}).await;
    // The default `oauth.refresh_reuse_grace_secs`.
    let grace = Duration::from_secs(5);
    let (client_id, first) = tokens(&rig).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let ((s1, a), (s2, b)) = tokio::join!(
        refresh(&rig, &client_id, rt1),
        refresh(&rig, &client_id, rt1)
    );
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{a} {b}");
    assert_eq!(a["access_token"], b["access_token"], "the same pair");
    assert_eq!(a["refresh_token"], b["refresh_token"], "the same pair");
    assert_ne!(a["refresh_token"].as_str(), Some(rt1));
    let access = a["access_token"].as_str().unwrap();
    assert_eq!(call_ok(&rig, access).await, StatusCode::OK);
    // A retry a moment later: still the same pair.
    let (s3, c) = refresh(&rig, &client_id, rt1).await;
    assert_eq!(s3, StatusCode::OK);
    assert_eq!(c["refresh_token"], a["refresh_token"]);
    // After the grace period the old token is reuse: the whole family goes.
    tokio::time::sleep(grace + Duration::from_millis(500)).await;
    let (s4, d) = refresh(&rig, &client_id, rt1).await;
    assert_eq!(
        (s4, d["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(call_ok(&rig, access).await, StatusCode::UNAUTHORIZED);
    let (s5, _) = refresh(&rig, &client_id, a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s5, StatusCode::BAD_REQUEST);
}

mod refresh_twice_at_once_gets_one_pair_and_reuse_after_the_grace_revokes {
    #[tokio::test(flavor = "multi_thread")]
    async fn sqlite() {
        super::refresh_twice_at_once(mcpgate_tests::TestDb::sqlite().unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn postgres() {
        if let Some(db) = mcpgate_tests::TestDb::postgres("hardening_refresh_grace")
            .await
            .unwrap()
        {
            super::refresh_twice_at_once(db).await;
        }
    }
}

// ---- 10. Revocation reaches every replica at once ----

async fn revoke(rig: &AuthRig, client_id: &str, token: &str) {
    let r = Client::new()
        .post(rig.url("/oauth/revoke"))
        .form(&[("token", token), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// How long until `replica` refuses `access` (a panic after 5 s).
async fn refused_after(replica: &TestServer, host: &str, access: &str) -> Duration {
    let started = Instant::now();
    loop {
        let status = list_tools_with_host(&replica.base, access, Some(host)).await;
        if status == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the other replica still accepts a revoked token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_on_one_replica_is_refused_by_another_within_a_second() {
    let Some(db) = TestDb::postgres("hardening_revoke_two_replicas")
        .await
        .unwrap()
    else {
        return;
    };
    // A long cache: only the announcement can make replica B notice in time.
    let rig = AuthRig::start_on(db, |c| c.oauth.token_cache_ttl_secs = 600).await;
    let b = rig.replica().await;
    let host = rig.gateway.base.trim_start_matches("http://").to_owned();
    let (client_id, first) = tokens(&rig).await;
    // An access token, revoked by itself.
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        list_tools_with_host(&b.base, access, Some(&host)).await,
        StatusCode::OK
    );
    revoke(&rig, &client_id, access).await;
    let took = refused_after(&b, &host, access).await;
    assert!(
        took < Duration::from_secs(1),
        "replica B refused it after {took:?}"
    );
    // A refresh token's family: its access tokens go with it.
    let (status, second) =
        refresh(&rig, &client_id, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        list_tools_with_host(&b.base, access, Some(&host)).await,
        StatusCode::OK
    );
    revoke(&rig, &client_id, second["refresh_token"].as_str().unwrap()).await;
    let took = refused_after(&b, &host, access).await;
    assert!(
        took < Duration::from_secs(1),
        "replica B refused the family after {took:?}"
    );
    b.stop().await.unwrap();
}
