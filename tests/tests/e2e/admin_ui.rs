//! The admin web UI in headless Chromium, as an administrator uses it: create a user, a
//! team, a role with an allow grant and one with a deny grant; the access explainer names the
//! deny grant; the user's denied call shows in the audit view with its filters. Then: every
//! page labelled, keyboard reachable with a visible focus, fitting 360px; a non-admin gets
//! 403 on every admin page and API; a form without its CSRF token, or with another browser's,
//! is refused; errors are HTML for browsers and JSON for API clients.
//! With `MCPGATE_UPDATE_SCREENSHOTS=1` the screenshots are written to `docs/screenshots/`.

use std::path::Path;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::oauth::{AuthRig, PASSWORD, USER, browser, call, exchange, hidden_field, pkce};

const GRACE: &str = "grace@example.com";
const GRACE_PASSWORD: &str = "grace's long password";
const REDIRECT: &str = "http://127.0.0.1:49152/callback";

const ADMIN_PAGES: &[&str] = &[
    "/admin/users",
    "/admin/roles",
    "/admin/teams",
    "/admin/upstreams",
    "/admin/clients",
    "/admin/audit",
    "/admin/explain",
    "/admin/dashboard",
];

const ADMIN_API: &[&str] = &[
    "/api/v1/admin/users",
    "/api/v1/admin/roles",
    "/api/v1/admin/teams",
    "/api/v1/admin/policy",
    "/api/v1/admin/upstreams",
    "/api/v1/admin/clients",
    "/api/v1/admin/audit",
];

async fn run_browser(chromium: &Path, rig: &AuthRig, shots: &Path, phase: &str) -> (Value, String) {
    let script = mcpgate_tests::fixtures::workspace_path("tests/python/browser_admin.py");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(script)
        .arg(chromium)
        .arg(&rig.gateway.base)
        .arg(USER)
        .arg(PASSWORD)
        .arg(shots)
        .arg(phase)
        .arg(GRACE)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("the browser run took over three minutes")
        .unwrap();
    assert!(
        out.status.success(),
        "browser_admin.py {phase} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let what = serde_json::to_string_pretty(&report).unwrap();
    (report, what)
}

/// Signs `email` in through the flow a client starts, consents, returns the code's redirect.
async fn authorize_as(rig: &AuthRig, b: &Client, start: &str, email: &str, password: &str) -> Url {
    let mut next = start.to_owned();
    for _ in 0..8 {
        let r = b.get(&next).send().await.unwrap();
        let (loc, html) = if r.status().is_redirection() {
            (r.headers()["location"].to_str().unwrap().to_owned(), None)
        } else {
            assert_eq!(r.status(), StatusCode::OK);
            (String::new(), Some(r.text().await.unwrap()))
        };
        let loc = match html {
            None => loc,
            Some(html) => {
                let post = if html.contains("action=\"/login\"") {
                    b.post(rig.url("/login")).form(&[
                        ("email", email),
                        ("password", password),
                        ("csrf", &hidden_field(&html, "csrf")),
                        ("return_to", &hidden_field(&html, "return_to")),
                    ])
                } else {
                    b.post(rig.url("/oauth/authorize")).form(&[
                        ("csrf", hidden_field(&html, "csrf").as_str()),
                        ("request", &hidden_field(&html, "request")),
                        ("decision", "approve"),
                    ])
                };
                let r = post.send().await.unwrap();
                assert!(r.status().is_redirection(), "{}", r.text().await.unwrap());
                r.headers()["location"].to_str().unwrap().to_owned()
            }
        };
        let loc = if loc.starts_with('/') {
            rig.url(&loc)
        } else {
            loc
        };
        if !loc.starts_with(&rig.gateway.base) {
            return Url::parse(&loc).unwrap();
        }
        next = loc;
    }
    panic!("the authorization flow did not finish");
}

async fn api_token(rig: &AuthRig, email: &str, password: &str) -> String {
    let r = Client::new()
        .post(rig.url("/api/v1/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A browser (cookie jar) signed in as `email` through the sign-in form.
async fn signed_in_browser(rig: &AuthRig, email: &str, password: &str) -> Client {
    let b = browser();
    let html = b
        .get(rig.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = b
        .post(rig.url("/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", &hidden_field(&html, "csrf")),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    b
}

/// The CSRF token of the form posting to `action` (the page has others: sign-out's first).
fn form_csrf(html: &str, action: &str) -> String {
    let at = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form for {action} in {html}"));
    hidden_field(&html[at..], "csrf")
}

fn text(page: &Value) -> &str {
    page["text"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_sets_up_access_in_chromium_and_finds_the_denied_call_in_the_audit_view() {
    let test = "an_admin_sets_up_access_in_chromium_and_finds_the_denied_call_in_the_audit_view";
    let Some(chromium) = mcpgate_tests::fixtures::chromium(test).unwrap() else {
        return;
    };
    let rig = AuthRig::start().await;
    let update = std::env::var_os("MCPGATE_UPDATE_SCREENSHOTS").is_some();
    let scratch = tempfile::tempdir().unwrap();
    let shots = if update {
        mcpgate_tests::fixtures::workspace_path("docs/screenshots")
    } else {
        scratch.path().to_path_buf()
    };
    std::fs::create_dir_all(&shots).unwrap();

    // 1. The administrator sets up a user, a team, roles with grants, in the browser.
    let (setup, what) = run_browser(&chromium, &rig, &shots, "setup").await;
    assert_eq!(setup["after_sign_in"], rig.url("/"), "{what}");
    let users = &setup["users"];
    assert_eq!(users["flash"], "The user was created.", "{what}");
    assert!(text(users).contains(GRACE), "{what}");
    // The markup in the name is shown as text and never ran.
    assert!(
        text(users).contains("<script>window.pwned=1</script>Grace"),
        "{what}"
    );
    assert_eq!(users["pwned"], false, "{what}");
    assert_eq!(users["scripts"], 0, "{what}");
    assert_eq!(
        setup["member_added"]["flash"], "The member was added.",
        "{what}"
    );
    assert_eq!(
        setup["role_no-echo"]["flash"], "The role was saved.",
        "{what}"
    );
    let teams = text(&setup["teams"]);
    assert!(
        teams.contains("core") && teams.contains(GRACE) && teams.contains("demo-tools, no-echo"),
        "{what}"
    );
    let roles = text(&setup["role_no-echo"]);
    assert!(
        roles.contains("deny tools/call on demo target echo"),
        "the role page shows the grant: {what}"
    );
    // The explainer names the deciding grant and the roles held through the team.
    let verdict = setup["explain"]["verdict"].as_str().unwrap_or_default();
    assert!(verdict.starts_with("Denied"), "{what}");
    assert!(
        verdict.contains("no-echo") && verdict.contains("#0"),
        "{what}"
    );
    assert!(
        text(&setup["explain"]).contains("demo-tools: through a team"),
        "{what}"
    );

    // 2. Grace connects a client and calls `echo`: denied by the grant.
    let client_id = rig.register(REDIRECT).await;
    let p = pkce();
    let back = authorize_as(
        &rig,
        &browser(),
        &crate::oauth::authorize_url(&rig, &client_id, REDIRECT, &p.challenge, &[]),
        GRACE,
        GRACE_PASSWORD,
    )
    .await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let r = exchange(&rig, &client_id, &code, &p.verifier, REDIRECT).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let denied = call(&rig, "demo", &token, "tools/call").await;
    let body = denied.text().await.unwrap();
    // Denied items are answered as unknown ones: no result.
    assert!(
        body.contains("\"error\"") && !body.contains("\"result\""),
        "{body}"
    );
    assert_eq!(
        call(&rig, "demo", &token, "tools/list").await.status(),
        StatusCode::OK
    );

    // 3. The audit API has it (written off the request path: wait for the writer).
    let admin_token = api_token(&rig, USER, PASSWORD).await;
    let query = format!("/api/v1/admin/audit?user={GRACE}&decision=deny&tool=echo");
    let mut events = Vec::new();
    for _ in 0..100 {
        let page: Value = Client::new()
            .get(rig.url(&query))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        events = page["events"].as_array().cloned().unwrap_or_default();
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["upstream"], "demo");
    assert_eq!(events[0]["target"], "echo");
    assert_eq!(events[0]["detail"]["role"], "no-echo");
    assert_eq!(events[0]["detail"]["client_id"], client_id.as_str());
    let csv = Client::new()
        .get(rig.url(&format!("{query}&format=csv")))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("\"echo\",\"deny\""), "{csv}");

    // 4. The audit view shows it with its filters; every page is usable.
    let (report, what) = run_browser(&chromium, &rig, &shots, "audit").await;
    let audit = &report["audit"];
    let rows = audit["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only the denied call matches: {what}");
    let row: Vec<&str> = rows[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        &row[1..6],
        &[GRACE, "tools/call", "demo", "echo", "deny"],
        "{what}"
    );
    let url = report["audit_url"].as_str().unwrap();
    assert!(
        url.contains("decision=deny") && url.contains("tool=echo"),
        "{what}"
    );
    // Keyboard only: Tab walks the navigation and the filters, each focus visible.
    let path = audit["focus_path"].as_array().unwrap();
    let labels: Vec<&str> = path.iter().filter_map(|f| f["text"].as_str()).collect();
    assert!(
        labels.contains(&"Users") && labels.contains(&"Audit"),
        "{what}"
    );
    assert!(
        path.iter().any(|f| f["id"] == "f-user"),
        "Tab reaches the filters: {what}"
    );
    for focused in path {
        assert_eq!(focused["outline"], "solid", "focus is visible: {what}");
    }
    let pages = report["pages"].as_object().unwrap();
    let audit_path = "/admin/audit".to_owned();
    for (path, page) in pages.iter().chain([(&audit_path, audit)]) {
        assert_eq!(page["fits_phone"], true, "{path} fits 360px: {what}");
        assert_eq!(page["scripts"], 0, "{path}: {what}");
        assert_eq!(page["images"], 0, "{path}: {what}");
        assert_eq!(
            page["unlabelled"],
            json!([]),
            "{path}: every field labelled: {what}"
        );
        assert_eq!(page["positive_tabindex"], 0, "{path}: {what}");
        assert!(
            page["title"].as_str().unwrap().ends_with("· mcpgate"),
            "{what}"
        );
    }
    let home = &pages["/"];
    assert!(text(home).contains(&rig.resource("demo")), "{what}");
    assert!(text(home).contains("Your browser sessions"), "{what}");
    assert_eq!(
        pages["/admin/upstreams"]["rows"][0][0]
            .as_str()
            .map(|s| s.starts_with("demo")),
        Some(true),
        "{what}"
    );
    assert!(
        text(&pages["/admin/upstreams"]).contains("reachable"),
        "{what}"
    );
    assert!(
        text(&pages["/admin/clients"]).contains(&client_id),
        "{what}"
    );
    let dashboard = text(&pages["/admin/dashboard"]);
    for plot in [
        "Requests",
        "Denied MCP calls",
        "Upstream latency",
        "Sign-ins",
    ] {
        assert!(dashboard.contains(plot), "{plot}: {what}");
    }
    assert_eq!(
        pages["/no/such/page"]["h1"],
        json!(["Page not found"]),
        "{what}"
    );
    // (`data:` URLs are the browser's own icons, e.g. the date picker's: no request.)
    for url in report["requested"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/", rig.gateway.base)) || url.starts_with("data:"),
            "external request {url}: {what}"
        );
    }
    if update {
        for shot in [
            "home.png",
            "admin-users.png",
            "admin-audit.png",
            "admin-explain.png",
        ] {
            let bytes = std::fs::metadata(shots.join(shot)).unwrap().len();
            assert!((1_000..600_000).contains(&bytes), "{shot}: {bytes} bytes");
        }
    }

    // 5. Grace is no administrator: 403 on every admin page and API.
    let grace = signed_in_browser(&rig, GRACE, GRACE_PASSWORD).await;
    for page in ADMIN_PAGES {
        let r = grace.get(rig.url(page)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{page}");
        assert!(
            r.text().await.unwrap().contains("For administrators only"),
            "{page}"
        );
    }
    let grace_token = api_token(&rig, GRACE, GRACE_PASSWORD).await;
    for path in ADMIN_API {
        let r = Client::new()
            .get(rig.url(path))
            .bearer_auth(&grace_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let r = grace
        .post(rig.url("/admin/teams"))
        .form(&[("csrf", "x"), ("name", "grace-team")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Grace's own page works, and shows the client she allowed.
    let home = grace
        .get(rig.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("Clients you allowed") && home.contains(&client_id));

    // 6. CSRF: a form without its token, or with another browser's token, is refused.
    let admin = signed_in_browser(&rig, USER, PASSWORD).await;
    // The admin's browser has its own CSRF cookie (from a page), so the foreign token is
    // refused for its binding, not for a missing cookie.
    admin.get(rig.url("/admin/users")).send().await.unwrap();
    let other = signed_in_browser(&rig, USER, PASSWORD).await;
    let foreign_page = other
        .get(rig.url("/admin/teams"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let foreign = form_csrf(&foreign_page, "/admin/teams");
    for token in [None, Some(foreign.as_str())] {
        let mut form = vec![("name", "sneaky")];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let r = admin
            .post(rig.url("/admin/teams"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{token:?}");
    }
    let teams: Value = Client::new()
        .get(rig.url("/api/v1/admin/teams"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!teams.to_string().contains("sneaky"), "{teams}");
    // The same form with its own token goes through.
    let own_page = admin
        .get(rig.url("/admin/teams"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = admin
        .post(rig.url("/admin/teams"))
        .form(&[
            ("name", "honest"),
            ("csrf", &form_csrf(&own_page, "/admin/teams")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // 7. Errors by Accept: a page for browsers, JSON for API clients.
    let r = Client::new()
        .get(rig.url("/no/such/page"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("<h1>Page not found</h1>"));
    let r = Client::new()
        .get(rig.url("/no/such/page"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");

    // 8. Sign-ins, the grant and the admin changes are in the audit log too.
    let all: Value = Client::new()
        .get(rig.url("/api/v1/admin/audit?limit=1000"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<(String, String)> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for wanted in [
        ("signin", "signed_in"),
        ("oauth.grant", "granted"),
        ("admin.user.create", "changed"),
    ] {
        assert!(
            actions.iter().any(|(a, d)| a == wanted.0 && d == wanted.1),
            "{wanted:?} in {actions:?}"
        );
    }
}
