//! An MCP client whose authorization is mcpgate's upstream OAuth client
//! (`mcpgate_credentials::user_oauth`), for the official conformance suite's client auth
//! scenarios (`conformance client --suite auth --command …`). The suite appends the server
//! URL and sets `MCP_CONFORMANCE_SCENARIO`, `MCP_CONFORMANCE_CONTEXT` (pre-registered client
//! credentials) and `MCP_CONFORMANCE_PROTOCOL_VERSION`.
//!
//! Only the browser is played here: the scenarios' authorization servers approve at once, so
//! the client reads the `Location` of the authorization endpoint's redirect as the callback.
//! Discovery, registration, PKCE, `resource`, scopes, `state`/`iss` checks and the token
//! requests are the gateway's own code.

use std::time::Duration;

use anyhow::{Context, bail};
use mcpgate_credentials::user_oauth::{Callback, Challenge, ClientMetadata, UserGrant};
use mcpgate_credentials::{CredentialsConfig, UpstreamOAuth, UpstreamTarget, UserOAuthConfig};
use serde_json::{Value, json};
use url::Url;

/// How many times one request may be re-authorized (first authorization, one step-up).
const MAX_AUTHORIZATIONS: usize = 2;
const STATELESS: &str = "2026-07-28";

struct Session {
    http: reqwest::Client,
    url: Url,
    version: String,
    oauth: UpstreamOAuth,
    registered: Option<mcpgate_credentials::user_oauth::RegisteredClient>,
    grant: Option<UserGrant>,
    session_id: Option<String>,
    next_id: u64,
}

fn config(context: &Value) -> anyhow::Result<UserOAuthConfig> {
    let mut table = toml_table(json!({"kind": "user_oauth"}));
    if let Some(id) = context["client_id"].as_str() {
        table.insert("client_id".into(), id.into());
        if let Some(secret) = context["client_secret"].as_str() {
            table.insert("client_secret".into(), secret.into());
        }
    }
    let parsed: CredentialsConfig = toml::Value::Table(table).try_into()?;
    match parsed {
        CredentialsConfig::UserOauth(c) => Ok(c),
        _ => bail!("not a user_oauth config"),
    }
}

fn toml_table(v: Value) -> toml::map::Map<String, toml::Value> {
    let mut t = toml::map::Map::new();
    if let Value::Object(o) = v {
        for (k, v) in o {
            if let Value::String(s) = v {
                t.insert(k, toml::Value::String(s));
            }
        }
    }
    t
}

fn me() -> anyhow::Result<ClientMetadata> {
    Ok(ClientMetadata {
        redirect_uri: Url::parse("http://127.0.0.1:1/callback")?,
        client_name: "mcpgate conformance client".into(),
        metadata_document: Some(Url::parse(
            // The URL the suite's CIMD scenario expects a client to present.
            "https://conformance-test.local/client-metadata.json",
        )?),
    })
}

impl Session {
    /// One JSON-RPC call; returns (status, headers, body as JSON if any).
    async fn send(
        &mut self,
        method: &str,
        params: Value,
        notification: bool,
    ) -> anyhow::Result<(
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        Option<Value>,
    )> {
        let mut params = params;
        if self.version == STATELESS {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "mcpgate-conformance", "version": "1"},
            });
        }
        let mut body = json!({"jsonrpc": "2.0", "method": method, "params": params});
        if !notification {
            self.next_id += 1;
            body["id"] = self.next_id.into();
        }
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(Duration::from_secs(10))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-method", method)
            .json(&body);
        if method != "initialize" {
            request = request.header("mcp-protocol-version", &self.version);
        }
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        if let Some(grant) = &self.grant {
            request = request.bearer_auth(grant.access_token.expose());
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).ok().or_else(|| {
            // An SSE answer: the last `data:` line that parses.
            text.lines()
                .rev()
                .filter_map(|l| l.strip_prefix("data:"))
                .find_map(|d| serde_json::from_str(d.trim()).ok())
        });
        Ok((status, headers, json))
    }

    /// Authorizes (again) from the server's challenge: discovery, registration once, the
    /// authorization request, the auto-approved redirect, the code exchange.
    async fn authorize(&mut self, challenge: Option<&Challenge>) -> anyhow::Result<()> {
        let mut discovery = self.oauth.discover_with(challenge).await?;
        if let Some(granted) = self.grant.as_ref().and_then(|g| g.scope.as_deref()) {
            discovery.keep_granted(granted);
        }
        let me = me()?;
        let registered = match &self.registered {
            Some(r) if r.is_for(&discovery) => r.clone(),
            _ => {
                let r = self.oauth.register(&discovery, &me).await?;
                self.registered = Some(r.clone());
                r
            }
        };
        let (url, pending) = self.oauth.authorize(discovery, registered, me.redirect_uri);
        let response = self.http.get(url).send().await?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("the authorization endpoint did not redirect")?;
        let back = Url::parse(location)?;
        let q: std::collections::HashMap<String, String> =
            back.query_pairs().into_owned().collect();
        if let Some(error) = q.get("error") {
            bail!("the authorization server answered {error}");
        }
        let grant = self
            .oauth
            .exchange(
                &pending,
                &Callback {
                    code: q.get("code").map(String::as_str).unwrap_or_default(),
                    state: q.get("state").map(String::as_str).unwrap_or_default(),
                    iss: q.get("iss").map(String::as_str),
                },
            )
            .await?;
        self.grant = Some(grant);
        Ok(())
    }

    /// A request that authorizes when challenged (401, or 403 `insufficient_scope`).
    async fn call(
        &mut self,
        method: &str,
        params: Value,
        notification: bool,
    ) -> anyhow::Result<Option<Value>> {
        let mut authorizations = 0;
        loop {
            let (status, headers, body) = self.send(method, params.clone(), notification).await?;
            let challenge = Challenge::from_headers(&headers);
            let step_up = status == reqwest::StatusCode::FORBIDDEN
                && challenge.as_ref().and_then(|c| c.error.as_deref())
                    == Some("insufficient_scope");
            if status == reqwest::StatusCode::UNAUTHORIZED || step_up {
                if authorizations == MAX_AUTHORIZATIONS {
                    bail!("{method}: still {status} after {authorizations} authorizations");
                }
                authorizations += 1;
                // A 401 with a refreshable token: refresh first.
                if status == reqwest::StatusCode::UNAUTHORIZED
                    && let Some(grant) = self.grant.take()
                    && grant.refresh_token.is_some()
                    && let Ok(fresh) = self.oauth.refresh(&grant).await
                {
                    self.grant = Some(fresh);
                    continue;
                }
                self.authorize(challenge.as_ref()).await?;
                continue;
            }
            if !status.is_success() {
                bail!("{method}: HTTP {status}: {body:?}");
            }
            if method == "initialize"
                && let Some(id) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok())
            {
                self.session_id = Some(id.to_owned());
            }
            if let Some(error) = body.as_ref().and_then(|b| b.get("error")) {
                bail!("{method}: {error}");
            }
            return Ok(body);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .context("usage: oauth_conformance_client SERVER_URL")?;
    let url = Url::parse(&url)?;
    let version =
        std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").unwrap_or_else(|_| "2025-11-25".into());
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(Value::Null);
    let http = mcpgate_credentials::default_client().map_err(anyhow::Error::msg)?;
    let target = UpstreamTarget {
        name: "conformance".into(),
        url: url.clone(),
        timeout: Duration::from_secs(10),
    };
    let oauth = UpstreamOAuth::new(&target, &config(&context)?, http.clone(), "client")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut session = Session {
        http,
        url,
        version: version.clone(),
        oauth,
        registered: None,
        grant: None,
        session_id: None,
        next_id: 0,
    };
    if version != STATELESS {
        session
            .call(
                "initialize",
                json!({"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "mcpgate-conformance", "version": "1"}}),
                false,
            )
            .await?;
        session
            .call("notifications/initialized", json!({}), true)
            .await?;
    }
    let tools = session.call("tools/list", json!({}), false).await?;
    let first = tools
        .as_ref()
        .and_then(|t| t["result"]["tools"][0]["name"].as_str())
        .map(str::to_owned);
    if let Some(name) = first {
        session
            .call("tools/call", json!({"name": name, "arguments": {}}), false)
            .await?;
    }
    eprintln!("done");
    Ok(())
}
