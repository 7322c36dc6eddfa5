//! `cargo xtask bench credentials`: what each upstream-credential kind adds to a request
//! (`CredentialSource::resolve` in process, cached kinds warm), SigV4 signing per request, and
//! the async runtime's tick latency while an AWS credential chain is slow to answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
use axum::routing::post;
use mcpgate_core::SecretString;
use mcpgate_credentials::{
    AssertionSigner, Caller, CredentialError, CredentialSource, Dependencies, OutgoingRequest,
    ProviderTokens, UpstreamCredentialsConfig, UpstreamTarget,
};
use serde_json::json;
use url::Url;

use crate::stats::{self, Samples, Table};

/// Every user's provider token is `provider-token-{user}`.
struct Tokens;

#[async_trait]
impl ProviderTokens for Tokens {
    async fn provider_token(
        &self,
        user_id: &str,
        _provider: &str,
    ) -> Result<Option<SecretString>, CredentialError> {
        Ok(Some(SecretString::new(format!("provider-token-{user_id}"))))
    }
}

/// A token endpoint that answers client credentials and token exchange, after `delay`.
async fn token_endpoint(calls: Arc<AtomicUsize>) -> anyhow::Result<Url> {
    let router = Router::new().route(
        "/token",
        post(move || {
            let calls = calls.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                axum::Json(json!({
                    "access_token": format!("at-{n}"),
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                }))
                .into_response()
            }
        }),
    );
    serve(router).await
}

/// An STS that takes `delay` to answer AssumeRole (a slow AWS credential chain).
async fn slow_sts(delay: Duration) -> anyhow::Result<Url> {
    let router = Router::new().route(
        "/",
        post(move || async move {
            tokio::time::sleep(delay).await;
            (
                [(axum::http::header::CONTENT_TYPE, "text/xml")],
                "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
                 <AccessKeyId>ASIASLOW</AccessKeyId><SecretAccessKey>slow-secret</SecretAccessKey>\
                 <SessionToken>slow-session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>\
                 </Credentials></AssumeRoleResult></AssumeRoleResponse>",
            )
        }),
    );
    serve(router).await
}

async fn serve(router: Router) -> anyhow::Result<Url> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = Url::parse(&format!("http://{}/", listener.local_addr()?))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(url)
}

fn build(
    name: &str,
    config: &str,
    deps: &Dependencies,
) -> anyhow::Result<Arc<dyn CredentialSource>> {
    let config: UpstreamCredentialsConfig = toml::from_str(config)?;
    let target = UpstreamTarget {
        name: name.into(),
        url: Url::parse("https://upstream.example.com/mcp")?,
        timeout: Duration::from_secs(5),
    };
    mcpgate_credentials::build(&target, &config, "credentials", deps).map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

/// Resolves `n` times in a row for 20 users in turn; the time of each call.
async fn measure(source: &dyn CredentialSource, n: usize, body: &[u8]) -> anyhow::Result<Samples> {
    let users: Vec<String> = (0..20).map(|i| format!("user-{i}")).collect();
    let roles = vec!["member".to_owned()];
    let url = Url::parse("https://upstream.example.com/mcp")?;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse()?);
    headers.insert("mcp-protocol-version", "2026-07-28".parse()?);
    let mut samples = Samples::with_capacity(n);
    for i in 0..n + n / 10 {
        let caller = Caller {
            user_id: &users[i % users.len()],
            email: Some("user@example.com"),
            roles: &roles,
        };
        let request = OutgoingRequest {
            method: &Method::POST,
            url: &url,
            headers: &headers,
            body,
        };
        let started = Instant::now();
        let snapshot = source.resolve(&caller, &request).await?;
        let took = started.elapsed();
        std::hint::black_box(snapshot);
        // The first tenth warms the caches (one token per user or client).
        if i >= n / 10 {
            samples.push(took);
        }
    }
    Ok(samples)
}

pub async fn run(short: bool) -> anyhow::Result<()> {
    let n = if short { 2_000 } else { 50_000 };
    let calls = Arc::new(AtomicUsize::new(0));
    let as_url = token_endpoint(calls.clone()).await?;
    let signer = Arc::new(
        AssertionSigner::new(
            "https://gw.example.com",
            "k1",
            [("k1".to_owned(), zeroize::Zeroizing::new([7u8; 32]))],
        )
        .map_err(|e| anyhow::anyhow!(e))?,
    );
    let deps = Dependencies {
        provider_tokens: Some(Arc::new(Tokens)),
        sealed_secrets: None,
        assertion_signer: Some(signer),
        http: None,
        user_tokens: None,
        user_secrets: None,
    };
    let token = format!("{as_url}token");
    let kinds: Vec<(&str, String)> = vec![
        ("none", "kind = \"none\"".into()),
        (
            "static",
            "kind = \"static\"\nheader = \"x-api-key\"\nvalue = \"bench-secret-value\"".into(),
        ),
        (
            "login_token",
            "kind = \"login_token\"\nprovider = \"corp\"".into(),
        ),
        (
            "client_credentials (cached)",
            format!(
                "kind = \"client_credentials\"\ntoken_endpoint = \"{token}\"\nclient_id = \"gw\"\nclient_secret = \"bench-client-secret\""
            ),
        ),
        (
            "token_exchange (cached per user)",
            format!(
                "kind = \"token_exchange\"\ntoken_endpoint = \"{token}\"\nsubject_token = \"login_token\"\nprovider = \"corp\"\naudience = \"api\""
            ),
        ),
        (
            "identity_assertion (signed per request)",
            "kind = \"identity_assertion\"".into(),
        ),
        (
            "aws_sigv4 (1 KiB body)",
            "kind = \"aws_sigv4\"\nservice = \"execute-api\"\nregion = \"eu-west-1\"\ncredentials = { source = \"static\", access_key_id = \"AKIDBENCH\", secret_access_key = \"bench-secret-access-key\" }".into(),
        ),
    ];
    println!(
        "\nmethod: `CredentialSource::resolve` in process, {n} calls per kind in a row for 20 \
         users in turn, after a warm-up of a tenth (cached kinds hold their tokens); the token \
         endpoint is a local HTTP server. added = p50(kind) − p50(none), same run."
    );
    let table = Table::new(
        "upstream credentials: time to resolve one request's credentials",
        &["kind", "p50", "p99", "added p50", "token requests"],
    );
    let body = vec![b'x'; 1024];
    let mut none_p50 = Duration::ZERO;
    for (name, config) in &kinds {
        let source = build(name, config, &deps)?;
        if name.starts_with("aws_sigv4") {
            // The background resolver has the static keys after its first turn.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before = calls.load(Ordering::Relaxed);
        let mut samples = measure(source.as_ref(), n, &body).await?;
        let p50 = samples.percentile(50.0);
        if *name == "none" {
            none_p50 = p50;
        }
        table.row(&[
            (*name).to_owned(),
            stats::fmt_dur(p50),
            stats::fmt_dur(samples.percentile(99.0)),
            stats::fmt_dur(p50.saturating_sub(none_p50)),
            (calls.load(Ordering::Relaxed) - before).to_string(),
        ]);
    }

    // A slow AWS chain: assume_role against an STS that takes 2 s. Requests keep resolving
    // (without credentials until the first answer: they fail fast) and the runtime's 1 ms
    // ticker is measured, against a quiet baseline.
    let sts = slow_sts(Duration::from_secs(2)).await?;
    let quiet = ticks(Duration::from_secs(if short { 1 } else { 3 })).await;
    let source = build(
        "aws-slow",
        &format!(
            "kind = \"aws_sigv4\"\nservice = \"execute-api\"\nregion = \"eu-west-1\"\n\
             [credentials]\nsource = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/mcp\"\n\
             sts_endpoint = \"{sts}\"\nbase = {{ source = \"static\", access_key_id = \"AKIDBASE\", secret_access_key = \"base-secret\" }}"
        ),
        &deps,
    )?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..16 {
        let (source, stop, ok, failed, body) = (
            source.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            body.clone(),
        );
        load.push(tokio::spawn(async move {
            let url =
                Url::parse("https://upstream.example.com/mcp").unwrap_or_else(|_| unreachable!());
            let headers = HeaderMap::new();
            let roles: Vec<String> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let caller = Caller {
                    user_id: "u",
                    email: None,
                    roles: &roles,
                };
                let request = OutgoingRequest {
                    method: &Method::POST,
                    url: &url,
                    headers: &headers,
                    body: &body,
                };
                match source.resolve(&caller, &request).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
                tokio::task::yield_now().await;
            }
        }));
    }
    let loaded = ticks(Duration::from_secs(if short { 3 } else { 5 })).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    let table = Table::new(
        "runtime tick latency (1 ms interval) while the AWS credential chain takes 2 s",
        &[
            "phase",
            "ticks",
            "lateness p50",
            "lateness p99",
            "lateness max",
            "resolutions ok / without credentials yet",
        ],
    );
    for (phase, mut samples, counts) in [
        ("quiet", quiet, "–".to_owned()),
        (
            "16 tasks resolving, STS answering in 2 s",
            loaded,
            format!(
                "{} / {}",
                ok.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed)
            ),
        ),
    ] {
        table.row(&[
            phase.to_owned(),
            samples.len().to_string(),
            stats::fmt_dur(samples.percentile(50.0)),
            stats::fmt_dur(samples.percentile(99.0)),
            stats::fmt_dur(samples.max()),
            counts,
        ]);
    }
    anyhow::ensure!(
        ok.load(Ordering::Relaxed) > 0,
        "SigV4 never got its slow credentials"
    );
    Ok(())
}

/// How late a 1 ms ticker fires, for `duration`.
async fn ticks(duration: Duration) -> Samples {
    let mut samples = Samples::with_capacity(8192);
    let end = Instant::now() + duration;
    let mut next = Instant::now() + Duration::from_millis(1);
    while Instant::now() < end {
        tokio::time::sleep_until(next.into()).await;
        samples.push(Instant::now().saturating_duration_since(next));
        next += Duration::from_millis(1);
        let now = Instant::now();
        if next < now {
            next = now + Duration::from_millis(1);
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    /// The short mode runs every kind and the slow chain.
    #[test]
    fn the_short_run_resolves_every_kind() -> anyhow::Result<()> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(super::run(true))
    }
}
