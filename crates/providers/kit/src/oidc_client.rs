//! A generic OpenID Connect relying party: authorization URL, code exchange with PKCE and id
//! token checks, refresh, userinfo, JWT verification. The `oidc` and `keycloak` plugins wrap
//! it with their own endpoints and claim mapping.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcpgate_core::{AuthorizationRequest, ProviderError, SecretString, TokenBodyFormat, TokenSet};
use serde_json::Value;
use tokio::sync::OnceCell;
use url::Url;

use crate::classify::{resource_error, send_error};
use crate::discovery::DiscoveryCache;
use crate::jwks::{JwksCache, MIN_REFETCH};
use crate::jwt::{self, Expectations};
use crate::token::{ClientAuth, TokenEndpoint};

/// How long a discovery document is trusted before it is fetched again.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// Endpoints known from configuration (Keycloak builds them from the realm URL).
#[derive(Debug, Clone)]
pub struct FixedEndpoints {
    pub authorization: Url,
    pub token: Url,
    pub userinfo: Url,
    pub jwks: Url,
    pub revocation: Option<Url>,
}

/// Where the endpoints come from.
#[derive(Debug, Clone)]
pub enum EndpointSource {
    Fixed(Box<FixedEndpoints>),
    /// `{issuer}/.well-known/openid-configuration`, cached for [`DISCOVERY_TTL`].
    Discovery,
}

/// The settings of a relying party.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Exact issuer identifier (the `iss` of every token).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub auth: ClientAuth,
    /// Scopes to request; `openid` is added when missing.
    pub scopes: Vec<String>,
    /// Extra authorization parameters (`audience`, `kc_idp_hint`, …).
    pub extra_authorize_params: Vec<(String, String)>,
    pub endpoints: EndpointSource,
    /// Minimum time between JWKS refetches caused by unknown key ids.
    pub jwks_min_refetch: Duration,
}

impl OidcConfig {
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            auth: ClientAuth::Basic,
            scopes: Vec::new(),
            extra_authorize_params: Vec::new(),
            endpoints: EndpointSource::Discovery,
            jwks_min_refetch: MIN_REFETCH,
        }
    }
}

#[derive(Debug)]
struct Resolved {
    authorization: Url,
    token: Url,
    userinfo: Option<Url>,
    jwks: Url,
    revocation: Option<Url>,
}

/// A relying party bound to one provider and client.
#[derive(Debug)]
pub struct OidcClient {
    config: OidcConfig,
    scopes: Vec<String>,
    http: reqwest::Client,
    discovery: DiscoveryCache,
    jwks: OnceCell<Arc<JwksCache>>,
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl OidcClient {
    pub fn new(config: OidcConfig, http: reqwest::Client) -> Self {
        let mut scopes = vec!["openid".to_owned()];
        for scope in &config.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        Self {
            discovery: DiscoveryCache::new(config.issuer.clone(), DISCOVERY_TTL),
            config,
            scopes,
            http,
            jwks: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The scopes requested, `openid` first.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    async fn resolve(&self) -> Result<Resolved, ProviderError> {
        match &self.config.endpoints {
            EndpointSource::Fixed(e) => Ok(Resolved {
                authorization: e.authorization.clone(),
                token: e.token.clone(),
                userinfo: Some(e.userinfo.clone()),
                jwks: e.jwks.clone(),
                revocation: e.revocation.clone(),
            }),
            EndpointSource::Discovery => {
                let m = self.discovery.get(&self.http).await?;
                Ok(Resolved {
                    authorization: m.authorization_endpoint.clone(),
                    token: m.token_endpoint.clone(),
                    userinfo: m.userinfo_endpoint.clone(),
                    jwks: m.jwks_uri.clone(),
                    revocation: m.revocation_endpoint.clone(),
                })
            }
        }
    }

    async fn jwks(&self) -> Result<Arc<JwksCache>, ProviderError> {
        self.jwks
            .get_or_try_init(|| async {
                let uri = self.resolve().await?.jwks;
                Ok(Arc::new(JwksCache::new(uri, self.config.jwks_min_refetch)))
            })
            .await
            .cloned()
    }

    fn token_endpoint(&self, url: Url) -> TokenEndpoint {
        TokenEndpoint {
            url,
            client_id: self.config.client_id.clone(),
            client_secret: self.config.client_secret.clone(),
            auth: self.config.auth,
            // OIDC providers take form bodies; Keycloak and oidc-provider refuse JSON.
            body: TokenBodyFormat::Form,
        }
    }

    /// The authorization-code request with PKCE S256 (RFC 7636), state and nonce.
    pub async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        let mut url = self.resolve().await?.authorization;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &request.redirect_uri)
                .append_pair("scope", &self.scopes.join(" "))
                .append_pair("state", &request.state)
                .append_pair("nonce", &request.nonce)
                .append_pair("code_challenge", &request.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(hint) = &request.login_hint {
                q.append_pair("login_hint", hint);
            }
            for (k, v) in &self.config.extra_authorize_params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Trades the code; the id token is required and verified (signature, `iss`, `aud`,
    /// `exp`, `nonce`). A bad id token is `Misconfigured`: the sign-in cannot go on, and
    /// retrying will not help. Returns the tokens and the verified id-token claims.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<(TokenSet, Value), ProviderError> {
        let endpoints = self.resolve().await?;
        let response = self
            .token_endpoint(endpoints.token)
            .request(
                &self.http,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", pkce_verifier),
                ],
            )
            .await?;
        let now = now_unix();
        let id_token = response.id_token.clone().ok_or_else(|| {
            ProviderError::Misconfigured("the token response has no id_token".into())
        })?;
        let claims = self
            .verify_jwt(&id_token, Some(&self.config.client_id), Some(nonce))
            .await
            .map_err(|e| match e {
                ProviderError::Unauthorized(why) => {
                    ProviderError::Misconfigured(format!("id token: {why}"))
                }
                other => other,
            })?;
        Ok((response.into_token_set(now, &self.scopes), claims))
    }

    /// Uses a refresh token. The rotated refresh token, when the response has one, is in the
    /// result; `None` means "keep the old one". A returned id token is verified too (without
    /// a nonce: OIDC Core §12.2).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        let endpoints = self.resolve().await?;
        let response = self
            .token_endpoint(endpoints.token)
            .request(
                &self.http,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.expose()),
                ],
            )
            .await?;
        let now = now_unix();
        if let Some(id_token) = &response.id_token {
            self.verify_jwt(id_token, Some(&self.config.client_id), None)
                .await
                .map_err(|e| match e {
                    ProviderError::Unauthorized(why) => {
                        ProviderError::Misconfigured(format!("refreshed id token: {why}"))
                    }
                    other => other,
                })?;
        }
        Ok(response.into_token_set(now, &self.scopes))
    }

    /// Revokes a refresh token (RFC 7009) on behalf of the provider `kind`. A provider that
    /// publishes no `revocation_endpoint` answers `NotImplemented`, so every plugin reports
    /// it the same way.
    pub async fn revoke_refresh_token(
        &self,
        kind: &'static str,
        refresh_token: &SecretString,
    ) -> Result<(), ProviderError> {
        let endpoints = self.resolve().await?;
        let Some(url) = endpoints.revocation else {
            return Err(ProviderError::NotImplemented {
                kind,
                operation: "revoke (the provider has no revocation_endpoint)",
            });
        };
        self.token_endpoint(endpoints.token)
            .revoke(&self.http, &url, refresh_token.expose(), "refresh_token")
            .await
    }

    /// The userinfo claims for an access token (401 → `Unauthorized`).
    pub async fn userinfo(&self, access_token: &SecretString) -> Result<Value, ProviderError> {
        let url = self.resolve().await?.userinfo.ok_or_else(|| {
            ProviderError::Misconfigured("the provider has no userinfo_endpoint".into())
        })?;
        let started = std::time::Instant::now();
        let host = url.host_str().unwrap_or_default().to_owned();
        let answer = async {
            let response = self
                .http
                .get(url)
                .bearer_auth(access_token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| send_error("userinfo", &e))?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| send_error("userinfo", &e))?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(resource_error("userinfo", status, &body))
            }
        }
        .await;
        // One event per call, never a token.
        tracing::debug!(
            provider.host = host,
            ok = answer.is_ok(),
            error = answer.as_ref().err().map(tracing::field::display),
            latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "provider userinfo request"
        );
        let body = answer?;
        // Signed or encrypted userinfo (`application/jwt`) is not requested, so JSON it is.
        let claims: Value = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Misconfigured(format!("userinfo: not JSON: {e}")))?;
        if !claims.is_object() {
            return Err(ProviderError::Misconfigured(
                "userinfo: not a JSON object".into(),
            ));
        }
        Ok(claims)
    }

    /// Verifies a JWT issued by this provider (id token or JWT access token).
    pub async fn verify_jwt(
        &self,
        token: &str,
        audience: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let jwks = self.jwks().await?;
        let expect = Expectations {
            issuer: &self.config.issuer,
            audience,
            nonce,
            now: now_unix(),
        };
        jwt::verify(&self.http, &jwks, token, &expect).await
    }
}
