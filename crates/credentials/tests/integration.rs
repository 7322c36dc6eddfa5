//! mcpgate-credentials through its public API, against small fakes on loopback ports.

#[path = "integration/fakes.rs"]
mod fakes;

#[path = "integration/config.rs"]
mod config;

#[path = "integration/header_kinds.rs"]
mod header_kinds;

#[path = "integration/client_credentials.rs"]
mod client_credentials;

#[path = "integration/token_exchange.rs"]
mod token_exchange;

#[cfg(feature = "aws-sigv4")]
#[path = "integration/aws_sigv4.rs"]
mod aws_sigv4;

#[path = "integration/identity_assertion.rs"]
mod identity_assertion;

#[path = "integration/user_oauth.rs"]
mod user_oauth;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};
use mcpgate_credentials::{
    Caller, CredentialError, CredentialSnapshot, CredentialSource, Dependencies, OutgoingRequest,
    UpstreamCredentialsConfig, UpstreamTarget,
};
use url::Url;

/// An upstream named `name` at `https://{name}.example/mcp`, with a 2 s credential timeout.
pub fn upstream(name: &str) -> UpstreamTarget {
    UpstreamTarget {
        name: name.to_owned(),
        url: Url::parse(&format!("https://{name}.example/mcp")).unwrap_or_else(|e| panic!("{e}")),
        timeout: Duration::from_secs(2),
    }
}

/// Parses a TOML `credentials` value (a table or an array of tables).
pub fn parse(toml_text: &str) -> UpstreamCredentialsConfig {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        credentials: UpstreamCredentialsConfig,
    }
    toml::from_str::<Wrapper>(toml_text)
        .unwrap_or_else(|e| panic!("parse: {e}"))
        .credentials
}

pub fn build(name: &str, toml_text: &str, deps: &Dependencies) -> Arc<dyn CredentialSource> {
    mcpgate_credentials::build(&upstream(name), &parse(toml_text), "credentials", deps)
        .unwrap_or_else(|e| panic!("build: {e:?}"))
}

/// A buffered outgoing request.
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Request {
    pub fn post(url: &str, body: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "application/json".parse().unwrap_or_else(|e| panic!("{e}")),
        );
        Self {
            method: Method::POST,
            url: Url::parse(url).unwrap_or_else(|e| panic!("{e}")),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn outgoing(&self) -> OutgoingRequest<'_> {
        OutgoingRequest {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

pub async fn resolve(
    source: &dyn CredentialSource,
    user: &str,
) -> Result<CredentialSnapshot, CredentialError> {
    let request = Request::post("https://upstream.example/mcp", "{}");
    source
        .resolve(&Caller::new(user), &request.outgoing())
        .await
}

/// The value a snapshot sets for `name`.
pub fn header(snapshot: &CredentialSnapshot, name: &str) -> Option<String> {
    snapshot
        .headers()
        .find(|(n, _)| n.as_str() == name)
        .and_then(|(_, v)| v.to_str().ok().map(str::to_owned))
}
