//! A plain OAuth 2 client (RFC 6749 authorization code with PKCE, refresh) on the `oauth2`
//! crate, for providers without OpenID Connect (GitHub, Atlassian, Salesforce). It returns the
//! raw [`KitTokenResponse`] so each plugin can read its provider's extra fields.

use std::borrow::Cow;

use mcpgate_core::{AuthorizationRequest, ProviderError, SecretString};
use oauth2::basic::{
    BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, StandardErrorResponse,
    StandardRevocableToken, TokenUrl,
};
use url::Url;

use crate::http::HttpClient;
use crate::token::{ClientAuth, KitTokenResponse, request_token_error};

type Client<HasAuthUrl, HasTokenUrl> = oauth2::Client<
    StandardErrorResponse<BasicErrorResponseType>,
    KitTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
>;

/// The settings of a plain OAuth 2 client.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub auth: ClientAuth,
    pub authorization_url: Url,
    pub token_url: Url,
    /// Scopes to request, space-separated in the request.
    pub scopes: Vec<String>,
    /// Send the PKCE S256 challenge and the verifier.
    pub pkce: bool,
    /// Extra authorization parameters (`audience`, `access_type`, …).
    pub extra_authorize_params: Vec<(String, String)>,
}

/// A plain OAuth 2 client bound to one provider and client.
#[derive(Debug)]
pub struct OAuthClient {
    config: OAuthConfig,
    http: HttpClient,
}

impl OAuthClient {
    pub fn new(config: OAuthConfig, http: HttpClient) -> Self {
        Self { config, http }
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The HTTP client (for the provider's API calls).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn client(&self) -> Client<EndpointSet, EndpointSet> {
        let mut client = Client::<EndpointNotSet, EndpointNotSet>::new(ClientId::new(
            self.config.client_id.clone(),
        ))
        .set_auth_uri(AuthUrl::from_url(self.config.authorization_url.clone()))
        .set_token_uri(TokenUrl::from_url(self.config.token_url.clone()))
        .set_auth_type(self.config.auth.auth_type());
        if let Some(secret) = &self.config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        client
    }

    /// The authorization request: `response_type=code`, state, redirect URI, scopes, the PKCE
    /// S256 challenge (when enabled), the configured extra parameters and `extra`.
    pub fn authorization_url(
        &self,
        request: &AuthorizationRequest,
        extra: &[(&str, &str)],
    ) -> Result<Url, ProviderError> {
        let client = self.client();
        let state = request.state.clone();
        let redirect = RedirectUrl::new(request.redirect_uri.clone())
            .map_err(|e| ProviderError::Misconfigured(format!("redirect_uri: {e}")))?;
        let mut auth = client
            .authorize_url(move || CsrfToken::new(state))
            .set_redirect_uri(Cow::Owned(redirect))
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new));
        if self.config.pkce {
            auth = auth
                .add_extra_param("code_challenge", request.code_challenge.as_str())
                .add_extra_param("code_challenge_method", "S256");
        }
        for (k, v) in &self.config.extra_authorize_params {
            auth = auth.add_extra_param(k.as_str(), v.as_str());
        }
        for (k, v) in extra {
            auth = auth.add_extra_param(*k, *v);
        }
        let (url, _) = auth.url();
        Ok(url)
    }

    /// Trades an authorization code (with the PKCE verifier when enabled).
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
    ) -> Result<KitTokenResponse, ProviderError> {
        let client = self.client();
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| ProviderError::Misconfigured(format!("redirect_uri: {e}")))?;
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect));
        if self.config.pkce {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        }
        request
            .request_async(&self.http)
            .await
            .map_err(request_token_error)
    }

    /// Uses a refresh token. The answer's `refresh_token`, when present, replaces the old one.
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
    ) -> Result<KitTokenResponse, ProviderError> {
        let client = self.client();
        let rt = RefreshToken::new(refresh_token.expose().to_owned());
        client
            .exchange_refresh_token(&rt)
            .request_async(&self.http)
            .await
            .map_err(request_token_error)
    }
}

/// GET a JSON resource with a bearer token: 401 → `Unauthorized`, 5xx/429 → `Transient`,
/// another failure → `Misconfigured`; `Ok(Err(status))` for the statuses in `soft` (a 403
/// on an optional resource, which the caller degrades).
pub async fn get_json(
    http: &HttpClient,
    what: &str,
    url: Url,
    access_token: &SecretString,
    headers: &[(&'static str, &'static str)],
    soft: &[u16],
) -> Result<Result<serde_json::Value, u16>, ProviderError> {
    let mut request = http.reqwest().get(url).bearer_auth(access_token.expose());
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
    {
        request = request.header(reqwest::header::ACCEPT, "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let started = std::time::Instant::now();
    let answer = async {
        let response = request
            .send()
            .await
            .map_err(|e| crate::send_error(what, &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| crate::send_error(what, &e))?;
        Ok::<_, ProviderError>((status, body))
    }
    .await;
    // One event per call, never a token.
    tracing::debug!(
        provider.call = what,
        status = answer.as_ref().ok().map(|(s, _)| s.as_u16()),
        error = answer.as_ref().err().map(tracing::field::display),
        latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "provider API request"
    );
    let (status, body) = answer?;
    if !status.is_success() {
        if soft.contains(&status.as_u16()) {
            return Ok(Err(status.as_u16()));
        }
        return Err(crate::resource_error(what, status, &body));
    }
    serde_json::from_slice(&body)
        .map(Ok)
        .map_err(|e| ProviderError::Misconfigured(format!("{what}: not JSON: {e}")))
}
