//! The pages a person sees — sign-in, consent, an error — rendered in headless Chromium and
//! used with the keyboard, checked for what a person would check. With
//! `MCPGATE_UPDATE_SCREENSHOTS=1` the screenshots are written to `docs/screenshots/`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::oauth::{AuthRig, PASSWORD, USER, pkce};

const CLIENT_NAME: &str = "Notes Assistant";

/// A client's redirect endpoint that records the query it was sent.
async fn callback_listener() -> (String, Arc<Mutex<Option<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let record = record.clone();
            async move {
                *record.lock().unwrap() = uri.query().map(str::to_owned);
                "back at the client"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn text(page: &Value) -> &str {
    page["text"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_in_chromium_work_with_the_keyboard_and_show_who_asks() {
    let test = "pages_in_chromium_work_with_the_keyboard_and_show_who_asks";
    let Some(chromium) = mcpgate_tests::fixtures::chromium(test).unwrap() else {
        return;
    };
    let rig = AuthRig::start().await;
    let (redirect, seen) = callback_listener().await;
    let registered = Client::new()
        .post(rig.url("/oauth/register"))
        .json(
            &json!({ "client_name": CLIENT_NAME, "redirect_uris": [redirect],
                       "grant_types": ["authorization_code", "refresh_token"],
                       "token_endpoint_auth_method": "none" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let client_id = registered.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = pkce();
    let authorize = crate::oauth::authorize_url(&rig, &client_id, &redirect, &p.challenge, &[]);
    let error_url = rig.url("/oauth/authorize?client_id=nobody-knows-this-client");

    let update = std::env::var_os("MCPGATE_UPDATE_SCREENSHOTS").is_some();
    let scratch = tempfile_dir();
    let shots = if update {
        mcpgate_tests::fixtures::workspace_path("docs/screenshots")
    } else {
        scratch.clone()
    };
    std::fs::create_dir_all(&shots).unwrap();
    let script = mcpgate_tests::fixtures::workspace_path("tests/python/browser_pages.py");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(script)
        .arg(&chromium)
        .arg(&authorize)
        .arg(&error_url)
        .arg(USER)
        .arg(PASSWORD)
        .arg(&shots)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the browser run took over two minutes")
        .unwrap();
    assert!(
        out.status.success(),
        "browser_pages.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let what = serde_json::to_string_pretty(&report).unwrap();

    // Sign-in: labelled fields, the cursor already in the email field, Tab moves through the
    // form in reading order with a visible focus ring, Enter on the button signs in.
    let signin = &report["signin"];
    assert_eq!(signin["lang"], "en", "{what}");
    assert_eq!(signin["h1"], json!(["Sign in"]), "{what}");
    assert_eq!(
        signin["fields"],
        json!([
            { "id": "email", "type": "email", "required": true, "autocomplete": "username", "labels": ["Email"] },
            { "id": "password", "type": "password", "required": true, "autocomplete": "current-password", "labels": ["Password"] },
        ]),
        "{what}"
    );
    assert_eq!(signin["focused_on_load"]["id"], "email", "{what}");
    let path = signin["focus_path"].as_array().unwrap();
    assert_eq!(path[1]["id"], "password", "{what}");
    assert_eq!(path[2]["tag"], "button", "{what}");
    assert_eq!(path[2]["text"], "Sign in", "{what}");
    for focused in path {
        assert_eq!(focused["outline"], "solid", "focus is visible: {what}");
    }

    // Consent: who asks, as whom, for which server, and where the browser goes next; the
    // buttons are reachable with Tab and Enter on Allow completes the authorization.
    let consent = &report["consent"];
    let consent_text = text(consent);
    assert_eq!(
        consent["h1"],
        json!([format!("Allow {CLIENT_NAME} to use your tools?")]),
        "{what}"
    );
    assert!(consent_text.contains(CLIENT_NAME), "{what}");
    assert!(consent_text.contains(USER), "{what}");
    assert!(consent_text.contains(&rig.resource("demo")), "{what}");
    assert!(
        consent_text.contains("Returns to") && consent_text.contains("127.0.0.1"),
        "the redirect host is shown: {what}"
    );
    assert!(consent_text.contains("runs on your own computer"), "{what}");
    assert_eq!(consent["buttons"], json!(["Allow", "Deny"]), "{what}");
    let last = consent["focus_path"].as_array().unwrap().last().unwrap();
    assert_eq!(last["text"], "Allow", "Tab reaches Allow: {what}");
    assert_eq!(last["outline"], "solid", "{what}");
    let query = seen
        .lock()
        .unwrap()
        .clone()
        .expect("the client got the redirect");
    assert!(query.contains("code="), "{query}");
    assert!(
        report["after_consent_url"]
            .as_str()
            .unwrap()
            .starts_with(&redirect),
        "{what}"
    );

    // An error page says what happened and offers a way back.
    let error = &report["error"];
    assert_eq!(error["h1"], json!(["Authorization failed"]), "{what}");
    assert!(text(error).contains("not known to mcpgate"), "{what}");
    assert!(text(error).contains("Back to sign-in"), "{what}");

    for (name, page) in [("signin", signin), ("consent", consent), ("error", error)] {
        assert_eq!(page["fits_phone"], true, "{name} fits 360px: {what}");
        assert_eq!(page["scripts"], 0, "{name} has no script: {what}");
        assert_eq!(page["images"], 0, "{name} loads no image: {what}");
        assert_eq!(page["positive_tabindex"], 0, "{name}: {what}");
        assert!(
            page["title"].as_str().unwrap().ends_with("· mcpgate"),
            "{what}"
        );
    }
    // Everything the browser fetched came from mcpgate (and, at the end, the client): no
    // external assets.
    let client_origin = redirect.trim_end_matches("/callback");
    for url in report["requested"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/", rig.gateway.base))
                || url.starts_with(&format!("{client_origin}/")),
            "external request {url}: {what}"
        );
    }
    for shot in ["signin.png", "consent.png", "error.png"] {
        let bytes = std::fs::metadata(shots.join(shot)).unwrap().len();
        assert!((1_000..300_000).contains(&bytes), "{shot}: {bytes} bytes");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mcpgate-pages-{}-{}",
        std::process::id(),
        mcpgate_storage::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
