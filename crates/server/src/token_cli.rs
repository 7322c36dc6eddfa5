//! `mcpgate token`: tokens for scripts, from the command line.
//!
//! `login URL` signs a person in for one MCP endpoint the way a native app does (RFC 8252):
//! discovery from the endpoint (RFC 9728, then RFC 8414), a public client registered by DCR
//! with a loopback redirect on a port chosen now, the browser opened on the authorization URL
//! (PKCE S256, `state`, `resource`), one request accepted on 127.0.0.1, the code exchanged, and
//! a token file written readable by its owner only. `create` asks the API for a personal access
//! token with a token that may use the API.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use axum::extract::{Query, State};
use axum::response::Html;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// How long `login` waits for the browser to come back.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// What `login` writes: enough for a script to call the endpoint and to refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenFile {
    pub issuer: String,
    /// The MCP endpoint the access token is for (RFC 8707 audience).
    pub resource: String,
    pub token_endpoint: String,
    pub client_id: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
    pub scope: String,
}

fn http() -> anyhow::Result<reqwest::Client> {
    crate::tls::ensure_provider();
    Ok(reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let r = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !r.status().is_success() {
        bail!("GET {url}: {}", r.status());
    }
    r.json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))
}

fn text(v: &Value, field: &str, what: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what} has no {field}"))
}

#[derive(Debug, Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

type Slot = Arc<Mutex<Option<oneshot::Sender<Callback>>>>;

async fn callback(State(slot): State<Slot>, Query(cb): Query<Callback>) -> Html<&'static str> {
    let failed = cb.error.is_some();
    if let Ok(mut slot) = slot.lock()
        && let Some(sender) = slot.take()
    {
        let _ = sender.send(cb);
    }
    Html(if failed {
        "<!doctype html><title>mcpgate</title><p>Sign-in did not complete. Go back to the terminal.</p>"
    } else {
        "<!doctype html><title>mcpgate</title><p>Signed in. You can close this window and go back to the terminal.</p>"
    })
}

/// Opens `url` in a browser: `$BROWSER` if set, else `xdg-open` or `open`. Failing is fine:
/// the URL is printed too.
pub fn open_browser(url: &str) {
    let candidates: Vec<String> = match std::env::var("BROWSER") {
        Ok(b) if !b.trim().is_empty() => vec![b],
        _ => vec!["xdg-open".into(), "open".into()],
    };
    for program in candidates {
        if std::process::Command::new(&program)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return;
        }
    }
}

/// Signs in for the MCP endpoint `url` and returns the tokens; `open` is handed the
/// authorization URL (a browser, or a test's person at the browser).
pub async fn login(
    url: &str,
    scope: Option<&str>,
    open: impl FnOnce(&str),
) -> anyhow::Result<TokenFile> {
    let client = http()?;
    let endpoint = url::Url::parse(url).context("URL must be an MCP endpoint URL")?;
    let origin = endpoint.origin().ascii_serialization();
    // RFC 9728 §3.1: path-inserted protected-resource metadata.
    let prm = get_json(
        &client,
        &format!(
            "{origin}/.well-known/oauth-protected-resource{}",
            endpoint.path().trim_end_matches('/')
        ),
    )
    .await?;
    let resource = text(&prm, "resource", "the protected-resource metadata")?;
    let issuer = prm["authorization_servers"][0]
        .as_str()
        .ok_or_else(|| anyhow!("the protected-resource metadata names no authorization server"))?
        .to_owned();
    let metadata = get_json(
        &client,
        &format!("{issuer}/.well-known/oauth-authorization-server"),
    )
    .await?;
    if metadata["issuer"].as_str() != Some(issuer.as_str()) {
        bail!("the authorization server metadata is for another issuer");
    }
    let authorization_endpoint = text(&metadata, "authorization_endpoint", "the metadata")?;
    let token_endpoint = text(&metadata, "token_endpoint", "the metadata")?;
    let registration_endpoint = text(&metadata, "registration_endpoint", "the metadata")?;

    // A loopback redirect on a port of our own (RFC 8252 §7.3).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let redirect_uri = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let registered = client
        .post(&registration_endpoint)
        .json(&json!({
            "client_name": "mcpgate token CLI",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }))
        .send()
        .await?;
    if !registered.status().is_success() {
        bail!(
            "client registration failed: {} {}",
            registered.status(),
            registered.text().await.unwrap_or_default()
        );
    }
    let registered: Value = registered.json().await?;
    let client_id = text(&registered, "client_id", "the registration response")?;

    let verifier = mcpgate_crypto::pkce::generate_verifier().map_err(|e| anyhow!("{e}"))?;
    let challenge = mcpgate_crypto::pkce::s256_challenge(verifier.expose());
    let state = mcpgate_crypto::token::random_state().map_err(|e| anyhow!("{e}"))?;
    let mut authorize = url::Url::parse(&authorization_endpoint)?;
    {
        let mut q = authorize.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .append_pair("resource", &resource);
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
    }

    let (sender, receiver) = oneshot::channel();
    let slot: Slot = Arc::new(Mutex::new(Some(sender)));
    let app = axum::Router::new()
        .route("/callback", axum::routing::get(callback))
        .with_state(slot);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    open(authorize.as_str());
    let answer = tokio::time::timeout(LOGIN_TIMEOUT, receiver).await;
    let _ = stop.send(());
    let _ = server.await;
    let answer = answer
        .map_err(|_| anyhow!("no answer from the browser within {LOGIN_TIMEOUT:?}"))?
        .map_err(|_| anyhow!("the loopback listener stopped"))?;
    if let Some(error) = answer.error {
        bail!(
            "the authorization server refused: {error} {}",
            answer.error_description.unwrap_or_default()
        );
    }
    if answer.state.as_deref() != Some(state.as_str()) {
        bail!("the answer's state does not match: not the sign-in this command started");
    }
    // RFC 9207: the answer must come from the issuer asked.
    if answer.iss.as_deref().is_some_and(|iss| iss != issuer) {
        bail!("the answer came from another issuer");
    }
    let code = answer
        .code
        .ok_or_else(|| anyhow!("the answer has no code"))?;
    let tokens = client
        .post(&token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.expose()),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", client_id.as_str()),
            ("resource", resource.as_str()),
        ])
        .send()
        .await?;
    if !tokens.status().is_success() {
        bail!(
            "the code exchange failed: {} {}",
            tokens.status(),
            tokens.text().await.unwrap_or_default()
        );
    }
    let tokens: Value = tokens.json().await?;
    let now = mcpgate_storage::now_ms() / 1000;
    Ok(TokenFile {
        issuer,
        resource,
        token_endpoint,
        client_id,
        access_token: text(&tokens, "access_token", "the token response")?,
        refresh_token: tokens["refresh_token"].as_str().map(str::to_owned),
        expires_at: now.saturating_add(tokens["expires_in"].as_i64().unwrap_or(0)),
        scope: tokens["scope"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Writes the token file, readable and writable by its owner only (0600 on Unix), replacing
/// an older one.
pub fn write_token_file(path: &Path, tokens: &TokenFile) -> anyhow::Result<()> {
    let body = serde_json::to_vec_pretty(tokens)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: tighten it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    std::io::Write::write_all(&mut file, &body)?;
    Ok(())
}

/// What `create` asks for.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: String,
    pub upstreams: Vec<String>,
    pub scope: Option<String>,
    pub expires_in_days: Option<u32>,
}

/// `POST {base}/api/v1/me/tokens` with `api_token`; the API's answer (with the new token).
pub async fn create(base: &str, api_token: &str, request: &CreateRequest) -> anyhow::Result<Value> {
    let client = http()?;
    let mut body = json!({ "name": request.name, "upstreams": request.upstreams });
    if let Some(scope) = &request.scope {
        body["scope"] = json!(scope);
    }
    if let Some(days) = request.expires_in_days {
        body["expires_in_days"] = json!(days);
    }
    let r = client
        .post(format!("{}/api/v1/me/tokens", base.trim_end_matches('/')))
        .bearer_auth(api_token)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let answer: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{status}: {}",
            answer["error_description"]
                .as_str()
                .or(answer["error"].as_str())
                .unwrap_or("the API refused")
        );
    }
    Ok(answer)
}
