//! A generic OpenID Connect relying party on the `openidconnect` crate: authorization URL,
//! code exchange with PKCE and id-token checks, refresh, userinfo, revocation, and JWT
//! verification against the provider's JWKS with rate-limited refetching on unknown key ids.
//! The `oidc` and `keycloak` plugins wrap it with their own endpoints and claim mapping.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mcpgate_core::{AuthorizationRequest, ProviderError, SecretString, TokenSet};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthUrl, AuthenticationFlow, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    IdToken, IdTokenVerifier, IssuerUrl, JsonWebKeySetUrl, JsonWebTokenType, LoginHint, Nonce,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RevocationUrl, Scope, SignatureVerificationError,
    StandardErrorResponse, TokenUrl, UserInfoClaims, UserInfoError, UserInfoUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::classify::resource_error;
use crate::discovery::{DiscoveryCache, fetch_jwks};
use crate::http::{HttpClient, HttpError};
use crate::token::{ClientAuth, KitTokenResponse, request_token_error};

/// How long a discovery document is trusted before it is fetched again.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// The minimum time between two JWKS fetches caused by unknown key ids, so a flood of
/// made-up `kid`s cannot hammer the provider.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);

/// How far an id token's `exp` may lie in the past and still be accepted, by default: clocks
/// of the provider and the gateway drift (OpenID Connect Core §3.1.3.7 leaves the allowance to
/// the client; a minute is what most relying parties use).
pub const ID_TOKEN_LEEWAY: Duration = Duration::from_secs(60);

/// Signature algorithms accepted (asymmetric only: `none` and HMAC are refused).
const ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Every claim beyond the standard ones (`realm_access`, `groups`, `hd`, …), kept as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub claims: serde_json::Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

/// An id token (or a JWT access token read with the same machinery).
pub type KitIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The `openidconnect` client with mcpgate's token response; authorization and token
/// endpoints set, the others added per call.
type Client<HasAuthUrl, HasTokenUrl> = openidconnect::Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    KitTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
    EndpointNotSet,
>;
type Rp = Client<EndpointSet, EndpointSet>;

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
    /// Scopes to request; `openid` is always sent first.
    pub scopes: Vec<String>,
    /// Extra authorization parameters (`audience`, `kc_idp_hint`, …).
    pub extra_authorize_params: Vec<(String, String)>,
    pub endpoints: EndpointSource,
    /// Minimum time between JWKS refetches caused by unknown key ids.
    pub jwks_min_refetch: Duration,
    /// Clock leeway for the `exp` of id tokens and JWT access tokens.
    pub id_token_leeway: Duration,
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
            id_token_leeway: ID_TOKEN_LEEWAY,
        }
    }
}

#[derive(Debug, Clone)]
struct Resolved {
    authorization: AuthUrl,
    token: TokenUrl,
    userinfo: Option<UserInfoUrl>,
    jwks: JsonWebKeySetUrl,
    revocation: Option<RevocationUrl>,
}

/// A JWKS fetched on first use, refetched on an unknown key id at most once per
/// `min_refetch`.
#[derive(Debug)]
struct JwksCache {
    url: JsonWebKeySetUrl,
    min_refetch: Duration,
    state: Mutex<Option<(Instant, Arc<CoreJsonWebKeySet>)>>,
}

impl JwksCache {
    async fn get(&self, http: &HttpClient) -> Result<Arc<CoreJsonWebKeySet>, ProviderError> {
        let mut state = self.state.lock().await;
        if let Some((_, set)) = state.as_ref() {
            return Ok(set.clone());
        }
        let set = Arc::new(fetch_jwks(http, &self.url).await?);
        *state = Some((Instant::now(), set.clone()));
        Ok(set)
    }

    /// A newer set than `seen`, when one is known or may be fetched now; `None` when the last
    /// fetch is too recent.
    async fn refetch(
        &self,
        http: &HttpClient,
        seen: &Arc<CoreJsonWebKeySet>,
    ) -> Result<Option<Arc<CoreJsonWebKeySet>>, ProviderError> {
        let mut state = self.state.lock().await;
        if let Some((at, current)) = state.as_ref() {
            if !Arc::ptr_eq(current, seen) {
                return Ok(Some(current.clone()));
            }
            if at.elapsed() < self.min_refetch {
                return Ok(None);
            }
        }
        let set = Arc::new(fetch_jwks(http, &self.url).await?);
        *state = Some((Instant::now(), set.clone()));
        Ok(Some(set))
    }

    async fn seed(&self, set: CoreJsonWebKeySet) {
        *self.state.lock().await = Some((Instant::now(), Arc::new(set)));
    }
}

/// A relying party bound to one provider and client.
#[derive(Debug)]
pub struct OidcClient {
    config: OidcConfig,
    scopes: Vec<String>,
    http: HttpClient,
    discovery: DiscoveryCache,
    jwks: OnceLock<JwksCache>,
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether a token has the compact JWS shape (three base64url parts), i.e. is worth verifying
/// as a JWT rather than sending to userinfo.
pub fn looks_like_jws(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn misconfigured(what: &str) -> impl Fn(openidconnect::url::ParseError) -> ProviderError + '_ {
    move |e| ProviderError::Misconfigured(format!("{what}: {e}"))
}

fn rejected(e: &ClaimsVerificationError) -> ProviderError {
    ProviderError::Unauthorized(format!("JWT rejected: {e}"))
}

/// A token we cannot use for sign-in because the provider's answer is wrong.
fn as_misconfigured(context: &'static str) -> impl Fn(ProviderError) -> ProviderError {
    move |e| match e {
        ProviderError::Unauthorized(why) => {
            ProviderError::Misconfigured(format!("{context}: {why}"))
        }
        other => other,
    }
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
            http: HttpClient::new(http),
            jwks: OnceLock::new(),
        }
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The scopes requested, `openid` first.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The HTTP client (for provider-specific calls).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn issuer_url(&self) -> Result<IssuerUrl, ProviderError> {
        IssuerUrl::new(self.config.issuer.clone()).map_err(misconfigured("issuer"))
    }

    fn jwks_cache(&self, url: &JsonWebKeySetUrl) -> &JwksCache {
        self.jwks.get_or_init(|| JwksCache {
            url: url.clone(),
            min_refetch: self.config.jwks_min_refetch,
            state: Mutex::new(None),
        })
    }

    async fn resolve(&self) -> Result<Resolved, ProviderError> {
        let resolved = match &self.config.endpoints {
            EndpointSource::Fixed(e) => Resolved {
                authorization: AuthUrl::from_url(e.authorization.clone()),
                token: TokenUrl::from_url(e.token.clone()),
                userinfo: Some(UserInfoUrl::from_url(e.userinfo.clone())),
                jwks: JsonWebKeySetUrl::from_url(e.jwks.clone()),
                revocation: e.revocation.clone().map(RevocationUrl::from_url),
            },
            EndpointSource::Discovery => {
                let (m, fresh) = self.discovery.get(&self.http).await?;
                let resolved = Resolved {
                    authorization: m.authorization_endpoint().clone(),
                    token: m.token_endpoint().cloned().ok_or_else(|| {
                        ProviderError::Misconfigured(
                            "discovery: the provider has no token_endpoint".into(),
                        )
                    })?,
                    userinfo: m.userinfo_endpoint().cloned(),
                    jwks: m.jwks_uri().clone(),
                    revocation: m.additional_metadata().revocation_endpoint.clone(),
                };
                if fresh {
                    // Discovery fetched the JWKS too: no second fetch for the first token.
                    self.jwks_cache(&resolved.jwks).seed(m.jwks().clone()).await;
                }
                resolved
            }
        };
        Ok(resolved)
    }

    fn client(&self, r: &Resolved) -> Result<Rp, ProviderError> {
        let mut client = Client::<EndpointNotSet, EndpointNotSet>::new(
            ClientId::new(self.config.client_id.clone()),
            self.issuer_url()?,
            CoreJsonWebKeySet::new(Vec::new()),
        )
        .set_auth_uri(r.authorization.clone())
        .set_token_uri(r.token.clone())
        .set_auth_type(self.config.auth.auth_type());
        if let Some(secret) = &self.config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        Ok(client)
    }

    /// The authorization-code request with PKCE S256 (RFC 7636), state and nonce.
    pub async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        let resolved = self.resolve().await?;
        let client = self.client(&resolved)?;
        let state = request.state.clone();
        let nonce = request.nonce.clone();
        let redirect = RedirectUrl::new(request.redirect_uri.clone())
            .map_err(misconfigured("redirect_uri"))?;
        let mut auth = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_redirect_uri(Cow::Owned(redirect))
            .add_extra_param("code_challenge", request.code_challenge.as_str())
            .add_extra_param("code_challenge_method", "S256");
        // `openid` is added first by the crate.
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            auth = auth.add_scope(Scope::new(scope.clone()));
        }
        if let Some(hint) = &request.login_hint {
            auth = auth.set_login_hint(LoginHint::new(hint.clone()));
        }
        for (k, v) in &self.config.extra_authorize_params {
            auth = auth.add_extra_param(k.as_str(), v.as_str());
        }
        let (url, _, _) = auth.url();
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
        let resolved = self.resolve().await?;
        let client = self.client(&resolved)?;
        let redirect =
            RedirectUrl::new(redirect_uri.to_owned()).map_err(misconfigured("redirect_uri"))?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect))
            .request_async(&self.http)
            .await
            .map_err(request_token_error)?;
        let now = now_unix();
        let id_token = response.id_token.as_ref().ok_or_else(|| {
            ProviderError::Misconfigured("the token response has no id_token".into())
        })?;
        let claims = self
            .verify_id_token(id_token, Some(nonce))
            .await
            .map_err(as_misconfigured("id token"))?;
        Ok((response.into_token_set(now, &self.scopes), claims))
    }

    /// Uses a refresh token. The rotated refresh token, when the response has one, is in the
    /// result; `None` means "keep the old one". A returned id token is verified too (without
    /// a nonce: OIDC Core §12.2).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        let resolved = self.resolve().await?;
        let client = self.client(&resolved)?;
        let rt = RefreshToken::new(refresh_token.expose().to_owned());
        let response = client
            .exchange_refresh_token(&rt)
            .request_async(&self.http)
            .await
            .map_err(request_token_error)?;
        let now = now_unix();
        if let Some(id_token) = &response.id_token {
            self.verify_id_token(id_token, None)
                .await
                .map_err(as_misconfigured("refreshed id token"))?;
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
        let resolved = self.resolve().await?;
        let Some(url) = resolved.revocation.clone() else {
            return Err(ProviderError::NotImplemented {
                kind,
                operation: "revoke (the provider has no revocation_endpoint)",
            });
        };
        crate::token::revoke(
            &self.http,
            url.url(),
            &self.config.client_id,
            self.config.client_secret.as_ref(),
            self.config.auth,
            refresh_token.expose(),
            "refresh_token",
        )
        .await
    }

    /// The userinfo claims for an access token (401 → `Unauthorized`).
    pub async fn userinfo(&self, access_token: &SecretString) -> Result<Value, ProviderError> {
        let resolved = self.resolve().await?;
        let url = resolved.userinfo.clone().ok_or_else(|| {
            ProviderError::Misconfigured("the provider has no userinfo_endpoint".into())
        })?;
        let client = self.client(&resolved)?.set_user_info_url(url);
        let claims: UserInfoClaims<ExtraClaims, CoreGenderClaim> = client
            .user_info(AccessToken::new(access_token.expose().to_owned()), None)
            .request_async(&self.http)
            .await
            .map_err(userinfo_error)?;
        serde_json::to_value(claims)
            .map_err(|e| ProviderError::Misconfigured(format!("userinfo: {e}")))
    }

    /// Verifies an id token: signature against the JWKS (one refetch on an unknown key id),
    /// `iss`, `aud` (this client), `exp`, and `nonce` when given. Failures are `Unauthorized`.
    pub async fn verify_id_token(
        &self,
        token: &KitIdToken,
        nonce: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let issuer = self.issuer_url()?;
        let client_id = ClientId::new(self.config.client_id.clone());
        self.with_jwks(|set| {
            let verifier =
                IdTokenVerifier::new_public_client(client_id.clone(), issuer.clone(), set.clone())
                    .set_allowed_algs(ALGS)
                    .set_time_fn(self.leeway_clock());
            let claims = match nonce {
                Some(n) => token.claims(&verifier, &Nonce::new(n.to_owned()))?,
                None => token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?,
            };
            serde_json::to_value(claims).map_err(|e| ClaimsVerificationError::Other(e.to_string()))
        })
        .await
    }

    /// Verifies a JWT access token (RFC 9068, Keycloak) with the id-token machinery: signature
    /// against the JWKS, `iss`, `exp`; `aud` is not checked (Keycloak says `account`), and the
    /// `typ` may be `JWT` or `at+jwt`. The token must carry `iss`, `sub`, `aud`, `exp`, `iat`.
    pub async fn verify_jwt_access_token(&self, token: &str) -> Result<Value, ProviderError> {
        let issuer = self.issuer_url()?;
        let client_id = ClientId::new(self.config.client_id.clone());
        let types: Vec<_> = ["application/jwt", "application/jose", "application/at+jwt"]
            .into_iter()
            .filter_map(|t| JsonWebTokenType::new(t.to_owned()).normalize().ok())
            .collect();
        // The JWKS is read before the token is parsed, so a malformed token costs no more
        // than a good one and cannot cause refetches.
        let jwks = self.jwks_for_verification().await?;
        let _ = jwks.get(&self.http).await?;
        let parsed = KitIdToken::from_str(token)
            .map_err(|e| ProviderError::Unauthorized(format!("JWT rejected: {e}")))?;
        self.with_jwks(|set| {
            let verifier =
                IdTokenVerifier::new_public_client(client_id.clone(), issuer.clone(), set.clone())
                    .set_allowed_algs(ALGS)
                    .set_allowed_jose_types(types.clone())
                    .require_audience_match(false)
                    .set_time_fn(self.leeway_clock());
            let claims = parsed.claims(&verifier, |_: Option<&Nonce>| Ok(()))?;
            serde_json::to_value(claims).map_err(|e| ClaimsVerificationError::Other(e.to_string()))
        })
        .await
    }

    /// "Now" as the verifier sees it: the real time less the leeway, so a token whose `exp`
    /// passed less than the leeway ago still verifies (the crate checks `now < exp` only).
    fn leeway_clock(&self) -> impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + use<> {
        let leeway = chrono::Duration::from_std(self.config.id_token_leeway)
            .unwrap_or(chrono::Duration::zero());
        move || chrono::Utc::now() - leeway
    }

    async fn jwks_for_verification(&self) -> Result<&JwksCache, ProviderError> {
        let resolved = self.resolve().await?;
        Ok(self.jwks_cache(&resolved.jwks))
    }

    /// Runs `check` with the cached JWKS; on an unknown key id, once more with a refetched
    /// set (unless the last fetch was less than `jwks_min_refetch` ago).
    async fn with_jwks(
        &self,
        check: impl Fn(&CoreJsonWebKeySet) -> Result<Value, ClaimsVerificationError>,
    ) -> Result<Value, ProviderError> {
        let jwks = self.jwks_for_verification().await?;
        let set = jwks.get(&self.http).await?;
        match check(&set) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => match jwks.refetch(&self.http, &set).await? {
                Some(newer) => check(&newer).map_err(|e| rejected(&e)),
                None => Err(ProviderError::Unauthorized(
                    "JWT rejected: no key in the JWKS matches its key id".into(),
                )),
            },
            other => other.map_err(|e| rejected(&e)),
        }
    }
}

fn userinfo_error(e: UserInfoError<HttpError>) -> ProviderError {
    match e {
        UserInfoError::Request(e) => e.classify("userinfo"),
        UserInfoError::Response(status, body, _) => resource_error("userinfo", status, &body),
        other => ProviderError::Misconfigured(format!("userinfo: {other}")),
    }
}
