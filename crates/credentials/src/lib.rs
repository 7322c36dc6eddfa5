#![doc = include_str!("../README.md")]

#[cfg(feature = "aws-sigv4")]
pub mod aws_sigv4;
#[cfg(feature = "aws-sigv4")]
mod aws_sources;
mod client_credentials;
pub mod config;
mod error;
pub mod identity_assertion;
mod login_token;
mod oauth;
mod snapshot;
mod source;
mod static_header;
mod token_cache;
mod token_exchange;
pub mod user_oauth;
mod user_secret;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use mcpgate_core::FieldError;
use tokio::sync::OnceCell;
use url::Url;

pub use config::{
    AwsCredentialsSource, AwsSigv4Config, ClientAuth, ClientCredentialsConfig, CredentialsConfig,
    IdentityAssertionConfig, LoginTokenConfig, Registration, StaticConfig, SubjectToken,
    TokenExchangeConfig, UpstreamCredentialsConfig, UserOAuthConfig, UserSecretConfig,
};
pub use error::CredentialError;
pub use identity_assertion::{
    AssertionKeyConfig, AssertionKeysConfig, AssertionSigner, generate_key_b64,
};
pub use oauth::default_client;
pub use snapshot::{Caller, CredentialSnapshot, OutgoingRequest};
pub use source::{CredentialSource, ProviderTokens, SealedSecrets};
pub use user_oauth::{UpstreamOAuth, UserTokens};
pub use user_secret::UserSecrets;

/// Most distinct users whose exchanged tokens one upstream keeps cached.
const PER_USER_CACHE_CAPACITY: u64 = 100_000;

/// The upstream a source is built for.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    /// The upstream's config name (part of every cache key).
    pub name: String,
    /// The upstream's MCP endpoint (the default `aud` of identity assertions).
    pub url: Url,
    /// The default timeout of every network call a kind makes for a request (a kind's own
    /// `timeout_ms` overrides it). Set it within the upstream's response timeout, so a hung
    /// authorization server fails that request in time.
    pub timeout: Duration,
}

/// What the server lends the kinds that need it. A kind whose dependency is missing is a
/// build error (a wiring mistake), not a runtime surprise.
#[derive(Clone, Default)]
pub struct Dependencies {
    /// For `login_token` and `token_exchange` with `subject_token = "login_token"`.
    pub provider_tokens: Option<Arc<dyn ProviderTokens>>,
    /// For `static` with `sealed = true`.
    pub sealed_secrets: Option<Arc<dyn SealedSecrets>>,
    /// For `identity_assertion` and `token_exchange` with `subject_token = "identity_assertion"`.
    pub assertion_signer: Option<Arc<AssertionSigner>>,
    /// For `user_oauth`: the users' grants at the upstream, and the refresh lease.
    pub user_tokens: Option<Arc<dyn UserTokens>>,
    /// For `user_secret`.
    pub user_secrets: Option<Arc<dyn UserSecrets>>,
    /// The HTTP client for token endpoints; unset: [`default_client`].
    pub http: Option<reqwest::Client>,
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependencies")
            .field("provider_tokens", &self.provider_tokens.is_some())
            .field("sealed_secrets", &self.sealed_secrets.is_some())
            .field("assertion_signer", &self.assertion_signer)
            .field("user_tokens", &self.user_tokens.is_some())
            .field("user_secrets", &self.user_secrets.is_some())
            .finish_non_exhaustive()
    }
}

/// Validates `config` (every problem at once, paths under `path`, e.g.
/// `upstreams[0].credentials`) and builds the upstream's source. Call it inside the tokio
/// runtime: `aws_sigv4` starts its background resolver here.
pub fn build(
    upstream: &UpstreamTarget,
    config: &UpstreamCredentialsConfig,
    path: &str,
    deps: &Dependencies,
) -> Result<Arc<dyn CredentialSource>, Vec<FieldError>> {
    let mut errors = config.validate(path);
    if !errors.is_empty() {
        return Err(errors);
    }
    let entries: Vec<&CredentialsConfig> = config.entries().collect();
    let mut headers: Vec<Box<dyn CredentialSource>> = Vec::new();
    let mut signer: Option<Box<dyn CredentialSource>> = None;
    for (i, entry) in entries.iter().enumerate() {
        let at = config.entry_path(path, i);
        match build_one(upstream, entry, &at, deps) {
            Ok(Built::Header(s)) => headers.push(s),
            Ok(Built::Signer(s)) => signer = Some(s),
            Ok(Built::Nothing) => {}
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(match (headers.len(), signer) {
        (0, None) => Arc::new(source::NoCredentials),
        (1, None) => Arc::from(headers.remove(0)),
        (_, signer) => Arc::new(source::Combined { headers, signer }),
    })
}

enum Built {
    Nothing,
    Header(Box<dyn CredentialSource>),
    /// Runs last, over the request with the other kinds' headers on it.
    #[cfg_attr(
        not(feature = "aws-sigv4"),
        expect(dead_code, reason = "only aws_sigv4 signs")
    )]
    Signer(Box<dyn CredentialSource>),
}

fn header_name(name: &str, path: &str) -> Result<HeaderName, Vec<FieldError>> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        vec![FieldError::new(
            format!("{path}.header"),
            "not a valid header name",
        )]
    })
}

fn missing(path: &str, what: &str) -> Vec<FieldError> {
    vec![FieldError::new(
        path,
        format!("this kind needs {what}, which the server did not provide"),
    )]
}

fn timeout_of(upstream: &UpstreamTarget, timeout_ms: Option<u64>) -> Duration {
    timeout_ms.map_or(upstream.timeout, Duration::from_millis)
}

fn http_client(deps: &Dependencies, path: &str) -> Result<reqwest::Client, Vec<FieldError>> {
    match &deps.http {
        Some(c) => Ok(c.clone()),
        None => default_client().map_err(|e| vec![FieldError::new(path, e)]),
    }
}

fn build_one(
    upstream: &UpstreamTarget,
    config: &CredentialsConfig,
    path: &str,
    deps: &Dependencies,
) -> Result<Built, Vec<FieldError>> {
    let name = upstream.name.clone();
    Ok(match config {
        CredentialsConfig::None => Built::Nothing,
        CredentialsConfig::Static(c) => {
            let value = if c.sealed {
                let Some(store) = &deps.sealed_secrets else {
                    return Err(missing(path, "the sealed secret store"));
                };
                static_header::StaticValue::Sealed(store.clone())
            } else {
                let secret = config::load_secret(
                    path,
                    ("value", c.value.as_ref()),
                    ("value_file", c.value_file.as_deref()),
                    ("value_env", c.value_env.as_deref()),
                )
                .map_err(|e| vec![e])?;
                let mut v = HeaderValue::from_str(secret.expose()).map_err(|_| {
                    vec![FieldError::new(
                        path,
                        "the value is not a valid header value",
                    )]
                })?;
                v.set_sensitive(true);
                static_header::StaticValue::Loaded(v)
            };
            Built::Header(Box::new(static_header::StaticHeader {
                upstream: name,
                header: header_name(&c.header, path)?,
                value,
            }))
        }
        CredentialsConfig::LoginToken(c) => {
            let Some(tokens) = &deps.provider_tokens else {
                return Err(missing(path, "the identity service's provider tokens"));
            };
            Built::Header(Box::new(login_token::LoginToken {
                upstream: name,
                provider: c.provider.clone(),
                header_name: header_name(&c.header, path)?,
                header: c.token_header(),
                tokens: tokens.clone(),
                timeout: upstream.timeout,
            }))
        }
        CredentialsConfig::ClientCredentials(c) => {
            let client = oauth::OAuthClient::load(&c.client(), path)
                .map_err(|e| vec![e])?
                .ok_or_else(|| vec![FieldError::new(format!("{path}.client_id"), "is required")])?;
            let endpoint = match (&c.token_endpoint, &c.issuer) {
                (Some(url), _) => client_credentials::Endpoint::Fixed(url.clone()),
                (None, Some(issuer)) => client_credentials::Endpoint::Discovered {
                    issuer: issuer.clone(),
                    found: OnceCell::new(),
                },
                (None, None) => return Err(missing(path, "token_endpoint or issuer")),
            };
            Built::Header(Box::new(client_credentials::ClientCredentials {
                upstream: name,
                endpoint,
                client,
                scope: c.scope.clone(),
                audience: c.audience.clone(),
                resource: c.resource.clone(),
                header_name: header_name(&c.header, path)?,
                header: c.token_header(),
                timing: c.timing(),
                timeout: timeout_of(upstream, c.timeout_ms),
                http: http_client(deps, path)?,
                cache: token_cache::TokenCache::new(1),
            }))
        }
        CredentialsConfig::TokenExchange(c) => {
            let subject = match c.subject_token {
                SubjectToken::LoginToken => {
                    let Some(tokens) = &deps.provider_tokens else {
                        return Err(missing(path, "the identity service's provider tokens"));
                    };
                    token_exchange::Subject::LoginToken {
                        provider: c.provider.clone().unwrap_or_default(),
                        tokens: tokens.clone(),
                    }
                }
                SubjectToken::IdentityAssertion => {
                    let Some(signer) = &deps.assertion_signer else {
                        return Err(missing(path, "the identity assertion signing keys"));
                    };
                    token_exchange::Subject::Assertion(signer.clone())
                }
            };
            Built::Header(Box::new(token_exchange::TokenExchange {
                upstream: name,
                endpoint: c.token_endpoint.clone(),
                client: oauth::OAuthClient::load(&c.client(), path).map_err(|e| vec![e])?,
                subject,
                requested_token_type: c.requested_token_type.clone(),
                audience: c.audience.clone(),
                resource: c.resource.clone(),
                scope: c.scope.clone(),
                header_name: header_name(&c.header, path)?,
                header: c.token_header(),
                timing: c.timing(),
                timeout: timeout_of(upstream, c.timeout_ms),
                http: http_client(deps, path)?,
                cache: token_cache::TokenCache::new(PER_USER_CACHE_CAPACITY),
            }))
        }
        CredentialsConfig::IdentityAssertion(c) => {
            let Some(signer) = &deps.assertion_signer else {
                return Err(missing(path, "the identity assertion signing keys"));
            };
            Built::Header(Box::new(
                identity_assertion::IdentityAssertion::build(
                    &name,
                    upstream.url.as_str(),
                    c,
                    signer.clone(),
                )
                .map_err(|e| vec![FieldError::new(format!("{path}.header"), e)])?,
            ))
        }
        #[cfg(feature = "aws-sigv4")]
        CredentialsConfig::AwsSigv4(c) => {
            let region = c.region.as_deref().unwrap_or_default();
            let provider =
                aws_sources::provider(&c.credentials, region, &format!("{path}.credentials"))?;
            Built::Signer(Box::new(
                aws_sigv4::AwsSigner::start(
                    &name,
                    &c.service,
                    region,
                    provider,
                    Duration::from_secs(c.refresh_before_secs),
                    upstream.timeout,
                )
                .map_err(|e| vec![FieldError::new(path, e)])?,
            ))
        }
        CredentialsConfig::UserOauth(c) => {
            let Some(tokens) = &deps.user_tokens else {
                return Err(missing(path, "the per-user connection store"));
            };
            let client = UpstreamOAuth::new(upstream, c, http_client(deps, path)?, path)?;
            Built::Header(Box::new(user_oauth::UserOAuth::new(
                client,
                tokens.clone(),
                header_name(&c.header, path)?,
                timeout_of(upstream, c.timeout_ms),
            )))
        }
        CredentialsConfig::UserSecret(c) => {
            let Some(secrets) = &deps.user_secrets else {
                return Err(missing(path, "the per-user connection store"));
            };
            Built::Header(Box::new(user_secret::UserSecret {
                upstream: name,
                header_name: header_name(&c.header, path)?,
                header: c.token_header(),
                secrets: secrets.clone(),
                timeout: upstream.timeout,
            }))
        }
        #[cfg(not(feature = "aws-sigv4"))]
        CredentialsConfig::AwsSigv4(_) => {
            return Err(vec![FieldError::new(
                path,
                "kind aws_sigv4 is not compiled in: build with the Cargo feature `aws-sigv4`",
            )]);
        }
    })
}
