//! The authorization server's edges under abuse (issue 19): bounded dynamic registration,
//! consent per upstream and scope, control characters refused at the edge, strict loopback
//! redirects, Unicode-normalised emails, and `redirect_uri` only when it was sent.

use std::time::Duration;

use mcpgate_tests::TestDb;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::oauth::{
    AuthRig, PASSWORD, USER, authorize_url, browser, drive, exchange, hidden_field, pkce,
};

const CB: &str = "http://127.0.0.1/callback";

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

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn register_json(rig: &AuthRig, body: &Value) -> reqwest::Response {
    Client::new()
        .post(rig.url("/oauth/register"))
        .json(body)
        .send()
        .await
        .unwrap()
}

// ---- item 11: redirect_uri at the token endpoint only when it was sent -------------------

/// An authorization request without `redirect_uri` (the client has one registered URI).
fn authorize_without_redirect(rig: &AuthRig, client_id: &str, challenge: &str) -> String {
    let mut url = Url::parse(&rig.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "st-1")
        .append_pair("resource", &rig.resource("demo"));
    url.to_string()
}

async fn exchange_without_redirect(
    rig: &AuthRig,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_asks_for_redirect_uri_only_when_authorize_had_it() {
    let rig = AuthRig::start().await;
    let client_id = rig.register(CB).await;
    let b = browser();

    // Left out at /authorize (RFC 6749 §4.1.3): the exchange without it succeeds.
    let p = pkce();
    let back = drive(
        &rig,
        &b,
        &authorize_without_redirect(&rig, &client_id, &p.challenge),
    )
    .await;
    assert!(back.as_str().starts_with(CB), "{back}");
    let code = param(&back, "code").unwrap();
    let r = exchange_without_redirect(&rig, &client_id, &code, &p.verifier).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert!(r.json::<Value>().await.unwrap()["access_token"].is_string());

    // Left out, then sent at /token: it must still be the one the code went to.
    let p = pkce();
    let back = drive(
        &rig,
        &b,
        &authorize_without_redirect(&rig, &client_id, &p.challenge),
    )
    .await;
    let code = param(&back, "code").unwrap();
    let r = exchange(
        &rig,
        &client_id,
        &code,
        &p.verifier,
        "http://127.0.0.1/elsewhere",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // Sent at /authorize: the exchange must repeat it, exactly.
    let sent = "http://127.0.0.1:5555/callback";
    for attempt in [None, Some("http://127.0.0.1:5556/callback")] {
        let p = pkce();
        let back = drive(
            &rig,
            &b,
            &authorize_url(&rig, &client_id, sent, &p.challenge, &[]),
        )
        .await;
        let code = param(&back, "code").unwrap();
        let r = match attempt {
            None => exchange_without_redirect(&rig, &client_id, &code, &p.verifier).await,
            Some(other) => exchange(&rig, &client_id, &code, &p.verifier, other).await,
        };
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{attempt:?}");
        let error = r.json::<Value>().await.unwrap()["error"].clone();
        assert!(
            error == "invalid_request" || error == "invalid_grant",
            "{attempt:?}: {error}"
        );
    }
    let p = pkce();
    let back = drive(
        &rig,
        &b,
        &authorize_url(&rig, &client_id, sent, &p.challenge, &[]),
    )
    .await;
    let code = param(&back, "code").unwrap();
    let r = exchange(&rig, &client_id, &code, &p.verifier, sent).await;
    assert_eq!(r.status(), StatusCode::OK);
}

// ---- item 6: loopback redirects vary only in the port ------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn loopback_redirect_tricks_are_shown_an_error_and_never_followed() {
    let rig = AuthRig::start().await;
    let client_id = rig.register(CB).await;
    let p = pkce();
    let b = browser();
    // Signed in first, so a match would redirect straight away.
    drive(
        &rig,
        &b,
        &authorize_url(&rig, &client_id, CB, &p.challenge, &[]),
    )
    .await;
    for bad in [
        "http://127.0.0.1:5000/callback#x",
        "http://evil@127.0.0.1:5000/callback",
        "http://127.0.0.1:5000/a/../callback",
        "http://0x7f.0.0.1:5000/callback",
        "http://127.1:5000/callback",
        "http://%31%32%37.0.0.1:5000/callback",
    ] {
        let r = b
            .get(authorize_url(&rig, &client_id, bad, &p.challenge, &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.headers().get("location").is_none(), "{bad}");
        assert!(r.text().await.unwrap().contains("not registered"), "{bad}");
    }
    let r = b
        .get(authorize_url(
            &rig,
            &client_id,
            "http://127.0.0.1:5000/callback",
            &p.challenge,
            &[],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

// ---- item 1: dynamic registration is bounded, limited, expired and counted ---------------

#[tokio::test(flavor = "multi_thread")]
async fn dcr_metadata_is_bounded() {
    let rig = AuthRig::start().await;
    let long_uri = format!("https://a.example/{}", "a".repeat(2100));
    let many: Vec<String> = (0..11)
        .map(|i| format!("https://a.example/cb{i}"))
        .collect();
    for (body, error) in [
        (
            json!({"redirect_uris": [CB], "client_name": "x".repeat(10_000)}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [CB], "padding": "x".repeat(64 * 1024)}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [long_uri]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": many}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [CB], "logo_uri": long_uri}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [CB], "contacts": vec!["a@example.com"; 100]}),
            "invalid_client_metadata",
        ),
    ] {
        let r = register_json(&rig, &body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let got: Value = r.json().await.unwrap();
        assert_eq!(got["error"], error, "{got}");
    }
    let ok = register_json(
        &rig,
        &json!({"redirect_uris": [CB, "https://a.example/cb"], "client_name": "Normal",
                "logo_uri": "https://a.example/logo.png", "contacts": ["a@example.com"]}),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn dcr_is_rate_limited_per_address() {
    let rig = AuthRig::start_with(|c| c.oauth.registration.per_address_per_hour = 3).await;
    for _ in 0..3 {
        let r = register_json(&rig, &json!({"redirect_uris": [CB]})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = register_json(&rig, &json!({"redirect_uris": [CB]})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
}

async fn metric(rig: &AuthRig, name: &str) -> f64 {
    let text = Client::new()
        .get(rig.url("/metrics"))
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

async fn dcr_unused_registrations_expire(db: TestDb) {
    let rig = AuthRig::start_on(db, |c| c.oauth.registration.unused_ttl_secs = 1).await;
    let unused = rig.register(CB).await;
    // A client that got tokens stays, however old it gets.
    let (used, tokens) = crate::oauth::tokens(&rig).await;
    assert!(metric(&rig, "mcpgate_oauth_clients_registered_total").await >= 2.0);
    let p = pkce();
    let b = browser();
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = b
            .get(authorize_url(&rig, &unused, CB, &p.challenge, &[]))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::BAD_REQUEST && r.text().await.unwrap().contains("not known") {
            gone = true;
            break;
        }
    }
    assert!(gone, "a never-used registration outlived its time");
    assert!(metric(&rig, "mcpgate_oauth_clients_expired_total").await >= 1.0);
    let r = Client::new()
        .post(rig.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &used),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}
on_both_backends!(
    dcr_unused_registrations_expire_and_are_counted,
    super::dcr_unused_registrations_expire
);

// ---- item 4: consent per (user, client, upstream, scopes) --------------------------------

async fn consent_per_upstream_and_scope(db: TestDb) {
    let rig = AuthRig::start_on(db, |_| {}).await;
    let client_id = rig.register(CB).await;
    let p = pkce();
    let b = browser();
    let url = |upstream: &str, scope: &str| {
        let mut u = Url::parse(&authorize_url(&rig, &client_id, CB, &p.challenge, &[])).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| k != "resource")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        u.query_pairs_mut()
            .clear()
            .extend_pairs(pairs)
            .append_pair("resource", &rig.resource(upstream))
            .append_pair("scope", scope);
        u.to_string()
    };
    let silent = |target: String| {
        let b = b.clone();
        async move {
            let r = b.get(&target).send().await.unwrap();
            let status = r.status();
            let location = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            let asked = status == StatusCode::OK
                && r.text()
                    .await
                    .unwrap()
                    .contains("action=\"/oauth/authorize\"");
            match (status, location, asked) {
                (StatusCode::SEE_OTHER, Some(l), _) if l.starts_with(CB) => true,
                (StatusCode::OK, _, true) => false,
                other => panic!("neither a code nor the consent page: {other:?}"),
            }
        }
    };
    // Approve reading on demo.
    drive(&rig, &b, &url("demo", "mcp:read")).await;
    assert!(
        silent(url("demo", "mcp:read")).await,
        "same upstream, same scope"
    );
    assert!(
        !silent(url("demo", "mcp")).await,
        "a wider scope asks again"
    );
    assert!(
        !silent(url("other", "mcp:read")).await,
        "another upstream asks again"
    );
    // Approve full use of demo: reading (included in mcp) goes silently, other still asks.
    drive(&rig, &b, &url("demo", "mcp")).await;
    assert!(silent(url("demo", "mcp")).await);
    assert!(silent(url("demo", "mcp:read")).await, "a subset is silent");
    assert!(!silent(url("other", "mcp")).await);
    // The consent page names the upstream it is for.
    let html = b
        .get(url("other", "mcp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&rig.resource("other")), "{html}");
    let _ = hidden_field(&html, "csrf");
}
on_both_backends!(
    consent_is_per_upstream_and_scope,
    super::consent_per_upstream_and_scope
);

// ---- item 5: control characters are refused at the edge, the same on both backends -------

async fn control_characters_refused(db: TestDb) {
    let rig = AuthRig::start_on(db, |_| {}).await;
    let client_id = rig.register(CB).await;
    let p = pkce();
    let c = Client::new();

    // Query: /oauth/authorize with a NUL in client_id (a page, not a redirect).
    let r = c
        .get(authorize_url(
            &rig,
            "evil\u{0}client",
            CB,
            &p.challenge,
            &[],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    let r = c
        .get(authorize_url(
            &rig,
            &client_id,
            CB,
            &p.challenge,
            &[("state", "a\u{1}b")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Form bodies: the token and revocation endpoints answer in OAuth JSON.
    for (path, form) in [
        (
            "/oauth/token",
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("code_verifier", "y"),
                ("client_id", "evil\u{0}client"),
            ],
        ),
        (
            "/oauth/revoke",
            vec![("token", "a\u{0}b"), ("client_id", "c")],
        ),
    ] {
        let r = c.post(rig.url(path)).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_request",
            "{path}"
        );
    }

    // The sign-in page's form.
    let r = c
        .post(rig.url("/login"))
        .form(&[("email", "ada\u{0}@example.com"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // JSON bodies: registration (RFC 7591 shape) and the API.
    let r = register_json(
        &rig,
        &json!({"redirect_uris": [CB], "client_name": "Nice\u{0}Client"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );
    for email in ["ada\u{0}@example.com", "\u{0}", "ada@example.com\u{7f}"] {
        let r = c
            .post(rig.url("/api/v1/login"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{email:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    }
    // Ordinary input still works.
    let r = c
        .post(rig.url("/api/v1/login"))
        .json(&json!({ "email": USER, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
on_both_backends!(
    control_characters_are_a_400_on_every_backend,
    super::control_characters_refused
);

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
