//! The authorization-code flow at the upstream's authorization server: discovery, client
//! registration (pre-registered, RFC 7591, or a Client ID Metadata Document), the
//! authorization URL (PKCE S256, `state`, `resource`, scopes), the code exchange, refresh and
//! RFC 7009 revocation. Stateless: the caller keeps the [`PendingAuthorization`] between the
//! redirect and the callback, and persists the [`UserGrant`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcpgate_core::{FieldError, SecretString};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::discovery::{Challenge, Discoverer, Discovery, ServerMetadata, legacy_default_metadata};
use super::http::{HttpError, MAX_BODY, TimedClient, read_limited};
use crate::config::{ClientAuth, Registration, UserOAuthConfig};
use crate::oauth::{error_code, send_error};
use crate::{CredentialError, UpstreamTarget};

/// Serde for the secrets of the types below: `SecretString` serializes as a placeholder (so a
/// printed config cannot leak), but these types are serialized only to be sealed, so their
/// secrets are written in clear. `Debug` still redacts them.
mod clear {
    use mcpgate_core::SecretString;
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub(super) mod option {
        use super::*;

        pub(in super::super) fn serialize<S: Serializer>(
            s: &Option<SecretString>,
            ser: S,
        ) -> Result<S::Ok, S::Error> {
            match s {
                Some(s) => ser.serialize_some(s.expose()),
                None => ser.serialize_none(),
            }
        }
    }
}

/// How mcpgate authenticates at the token endpoint with a registered client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// A public client: `client_id` in the body, no secret.
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl TokenAuth {
    fn from_method(method: &str) -> Option<Self> {
        match method {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }

    fn method(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// mcpgate's client at the upstream's authorization server. Kept with every grant, so a
/// refresh uses the client the tokens were issued to, whichever replica registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredClient {
    pub client_id: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "clear::option::serialize"
    )]
    pub client_secret: Option<SecretString>,
    pub auth: TokenAuth,
    /// `pre_registered`, `dynamic` or `metadata_document`.
    pub registration: Registration,
    /// The authorization server it is registered at: a client is never presented to another
    /// one (SEP-2352: when the upstream moves to a new server, register again).
    pub issuer: String,
}

impl RegisteredClient {
    /// This client may be used with what `discovery` found.
    pub fn is_for(&self, discovery: &Discovery) -> bool {
        self.issuer == discovery.server.issuer
    }
}

/// What mcpgate says about itself when it registers.
#[derive(Debug, Clone)]
pub struct ClientMetadata {
    /// The callback of the connect flow.
    pub redirect_uri: Url,
    pub client_name: String,
    /// The URL where mcpgate serves its Client ID Metadata Document, if it does.
    pub metadata_document: Option<Url>,
}

impl ClientMetadata {
    /// The Client ID Metadata Document to serve at `metadata_document`
    /// (draft-ietf-oauth-client-id-metadata-document: `client_id` is the document's URL).
    pub fn document(&self) -> Option<serde_json::Value> {
        let url = self.metadata_document.as_ref()?;
        Some(serde_json::json!({
            "client_id": url.as_str(),
            "client_name": self.client_name,
            "redirect_uris": [self.redirect_uri.as_str()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
    }
}

/// Between the redirect to the authorization server and its callback. Holds the PKCE
/// verifier (serialized in clear): keep it server-side or sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub state: String,
    #[serde(serialize_with = "clear::serialize")]
    pub pkce_verifier: SecretString,
    pub redirect_uri: Url,
    pub client: RegisteredClient,
    pub discovery: Discovery,
}

/// The query of the authorization server's redirect back to mcpgate.
#[derive(Debug, Clone, Copy)]
pub struct Callback<'a> {
    pub code: &'a str,
    pub state: &'a str,
    /// RFC 9207 `iss`.
    pub iss: Option<&'a str>,
}

/// A user's tokens at an upstream, with what refreshing and revoking them needs. Sealed by
/// the server per (user, upstream): it serializes the tokens in clear for that, and only
/// that; `Debug` redacts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGrant {
    #[serde(serialize_with = "clear::serialize")]
    pub access_token: SecretString,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "clear::option::serialize"
    )]
    pub refresh_token: Option<SecretString>,
    /// Unix seconds; `None`: the server did not say (used until the upstream refuses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub client: RegisteredClient,
    pub issuer: String,
    pub token_endpoint: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    pub resource: String,
}

impl UserGrant {
    /// The access token is expired or will be within `skew`.
    pub fn due(&self, skew: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| now_secs().saturating_add(skew.as_secs()) >= at)
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The OAuth client for one upstream with `credentials.kind = "user_oauth"`.
#[derive(Clone)]
pub struct UpstreamOAuth {
    upstream: String,
    url: Url,
    config: UserOAuthConfig,
    preregistered: Option<(String, Option<SecretString>)>,
    http: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for UpstreamOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamOAuth")
            .field("upstream", &self.upstream)
            .field("registration", &self.config.registration)
            .finish_non_exhaustive()
    }
}

impl UpstreamOAuth {
    /// `http` must not follow redirects ([`crate::default_client`]).
    pub fn new(
        upstream: &UpstreamTarget,
        config: &UserOAuthConfig,
        http: reqwest::Client,
        path: &str,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        config.validate(path, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let preregistered = config.preregistered(path).map_err(|e| vec![e])?;
        Ok(Self {
            upstream: upstream.name.clone(),
            url: upstream.url.clone(),
            config: config.clone(),
            preregistered,
            http,
            timeout: config
                .timeout_ms
                .map_or(upstream.timeout, Duration::from_millis),
        })
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The name users see (config `display_name`, else the upstream's name).
    pub fn display_name(&self) -> &str {
        self.config
            .display_name
            .as_deref()
            .unwrap_or(&self.upstream)
    }

    pub(crate) fn config(&self) -> &UserOAuthConfig {
        &self.config
    }

    fn unavailable(&self, why: impl Into<String>) -> CredentialError {
        CredentialError::unavailable(&self.upstream, why)
    }

    fn discoverer(&self) -> Discoverer<'_> {
        Discoverer {
            http: &self.http,
            upstream: &self.upstream,
            timeout: self.timeout,
        }
    }

    /// Discovery from scratch: calls the upstream with no token and follows its challenge.
    pub async fn discover(&self) -> Result<Discovery, CredentialError> {
        let challenge = if self.config.authorization_server.is_some() {
            None
        } else {
            self.discoverer().probe(&self.url).await?
        };
        self.discover_with(challenge.as_ref()).await
    }

    /// Discovery from a challenge already in hand (the 401 or the step-up 403 of a call).
    pub async fn discover_with(
        &self,
        challenge: Option<&Challenge>,
    ) -> Result<Discovery, CredentialError> {
        let d = self.discoverer();
        let (issuer, resource, prm_scopes) = match &self.config.authorization_server {
            Some(issuer) => (
                issuer.as_str().to_owned(),
                self.url.as_str().to_owned(),
                None,
            ),
            None => match d.resource_metadata(&self.url, challenge).await? {
                Some(prm) => {
                    let issuer = prm.authorization_servers.first().cloned().ok_or_else(|| {
                        self.unavailable(
                            "the protected-resource metadata names no authorization server",
                        )
                    })?;
                    (issuer, prm.resource, prm.scopes_supported)
                }
                // MCP 2025-03-26: no metadata; the upstream's origin is the authorization base.
                None => (
                    self.url.origin().ascii_serialization(),
                    self.url.as_str().to_owned(),
                    None,
                ),
            },
        };
        let server = match d.server_metadata(&issuer).await? {
            Some(meta) => meta,
            None if self.config.authorization_server.is_none()
                && issuer == self.url.origin().ascii_serialization() =>
            {
                legacy_default_metadata(&self.url)
            }
            None => {
                return Err(
                    self.unavailable("the upstream's authorization server publishes no metadata")
                );
            }
        };
        // MCP 2025-11-25 "Authorization Code Protection": without S256 advertised, refuse.
        let s256 = server
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"));
        if !s256 {
            return Err(self
                .unavailable("the upstream's authorization server does not advertise PKCE S256"));
        }
        let scopes = self.scopes(challenge, prm_scopes.as_deref(), &server);
        Ok(Discovery {
            resource,
            server,
            scopes,
        })
    }

    /// MCP "Scope Selection Strategy": config, else the challenge's `scope`, else the
    /// resource's `scopes_supported`; `offline_access` added when the authorization server
    /// offers it (for a refresh token).
    fn scopes(
        &self,
        challenge: Option<&Challenge>,
        prm_scopes: Option<&[String]>,
        server: &ServerMetadata,
    ) -> Vec<String> {
        let mut scopes: Vec<String> = if let Some(configured) = &self.config.scopes {
            configured.clone()
        } else if let Some(scope) = challenge.and_then(|c| c.scope.as_deref()) {
            scope.split_whitespace().map(str::to_owned).collect()
        } else {
            prm_scopes.map(<[String]>::to_vec).unwrap_or_default()
        };
        let offers_offline = server
            .scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == "offline_access"));
        if offers_offline && !scopes.is_empty() && !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".into());
        }
        scopes.truncate(64);
        scopes
    }

    /// The client to use: the configured one, a Client ID Metadata Document, or a new
    /// RFC 7591 registration (the caller should keep it; each grant carries its client).
    pub async fn register(
        &self,
        discovery: &Discovery,
        me: &ClientMetadata,
    ) -> Result<RegisteredClient, CredentialError> {
        let server = &discovery.server;
        let use_cimd =
            server.client_id_metadata_document_supported && me.metadata_document.is_some();
        match (self.config.registration, &self.preregistered) {
            (Registration::Auto | Registration::PreRegistered, Some((id, secret))) => {
                Ok(RegisteredClient {
                    client_id: id.clone(),
                    client_secret: secret.clone(),
                    auth: match (secret, self.config.client_auth) {
                        (None, _) => TokenAuth::None,
                        (Some(_), ClientAuth::ClientSecretBasic) => TokenAuth::ClientSecretBasic,
                        (Some(_), ClientAuth::ClientSecretPost) => TokenAuth::ClientSecretPost,
                    },
                    registration: Registration::PreRegistered,
                    issuer: server.issuer.clone(),
                })
            }
            (Registration::PreRegistered, None) => {
                Err(self.unavailable("no client_id is configured for this upstream"))
            }
            (Registration::MetadataDocument, _) | (Registration::Auto, None) if use_cimd => {
                let url = me
                    .metadata_document
                    .as_ref()
                    .map(Url::to_string)
                    .unwrap_or_default();
                Ok(RegisteredClient {
                    client_id: url,
                    client_secret: None,
                    auth: TokenAuth::None,
                    registration: Registration::MetadataDocument,
                    issuer: server.issuer.clone(),
                })
            }
            (Registration::MetadataDocument, _) => Err(self.unavailable(
                "the upstream's authorization server does not accept client metadata documents",
            )),
            (Registration::Dynamic | Registration::Auto, _) => {
                self.register_dynamically(server, me).await
            }
        }
    }

    /// RFC 7591. mcpgate is a confidential (web) client: it asks for `client_secret_basic`
    /// unless the server lists only other methods.
    async fn register_dynamically(
        &self,
        server: &ServerMetadata,
        me: &ClientMetadata,
    ) -> Result<RegisteredClient, CredentialError> {
        let Some(endpoint) = &server.registration_endpoint else {
            return Err(self.unavailable(
                "the upstream's authorization server has no registration endpoint: configure \
                 a client_id",
            ));
        };
        let supported = server
            .token_endpoint_auth_methods_supported
            .clone()
            .unwrap_or_else(|| vec!["client_secret_basic".into()]);
        let wanted = [
            TokenAuth::ClientSecretBasic,
            TokenAuth::ClientSecretPost,
            TokenAuth::None,
        ]
        .into_iter()
        .find(|a| supported.iter().any(|s| s == a.method()))
        .unwrap_or(TokenAuth::ClientSecretBasic);
        let body = serde_json::json!({
            "client_name": me.client_name,
            "redirect_uris": [me.redirect_uri.as_str()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": wanted.method(),
            "application_type": "web",
        });
        let response = self
            .http
            .post(endpoint.clone())
            .timeout(self.timeout)
            .header(http::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| send_error(&self.upstream, self.timeout, &e))?;
        let status = response.status();
        let bytes = read_limited(response, MAX_BODY)
            .await
            .map_err(|e| send_error(&self.upstream, self.timeout, &e))?;
        #[derive(Deserialize)]
        struct Registered {
            client_id: Option<String>,
            client_secret: Option<SecretString>,
            token_endpoint_auth_method: Option<String>,
            error: Option<String>,
        }
        let answer: Option<Registered> = serde_json::from_slice(&bytes).ok();
        match answer {
            Some(Registered {
                error: Some(code), ..
            }) => Err(CredentialError::Refused {
                upstream: self.upstream.clone(),
                error: error_code(&code),
            }),
            Some(Registered {
                client_id: Some(id),
                client_secret,
                token_endpoint_auth_method,
                ..
            }) if status.is_success() && !id.is_empty() => {
                let auth = token_endpoint_auth_method
                    .as_deref()
                    .and_then(TokenAuth::from_method)
                    .unwrap_or(wanted);
                let client_secret = client_secret.filter(|s| !s.is_empty());
                let auth = match (&client_secret, auth) {
                    (None, _) => TokenAuth::None,
                    (Some(_), a) => a,
                };
                Ok(RegisteredClient {
                    client_id: id,
                    client_secret: if auth == TokenAuth::None {
                        None
                    } else {
                        client_secret
                    },
                    auth,
                    registration: Registration::Dynamic,
                    issuer: server.issuer.clone(),
                })
            }
            _ => Err(self.unavailable(format!(
                "client registration failed (HTTP {})",
                status.as_u16()
            ))),
        }
    }

    /// The authorization URL to send the user's browser to, and what the callback needs.
    pub fn authorize(
        &self,
        discovery: Discovery,
        client: RegisteredClient,
        redirect_uri: Url,
    ) -> (Url, PendingAuthorization) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(
                discovery.server.authorization_endpoint.clone(),
            ))
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
        let (url, state) = oauth
            .authorize_url(CsrfToken::new_random)
            .add_scopes(discovery.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .add_extra_param("resource", discovery.resource.clone())
            .url();
        let pending = PendingAuthorization {
            state: state.secret().clone(),
            pkce_verifier: SecretString::new(verifier.secret().clone()),
            redirect_uri,
            client,
            discovery,
        };
        (url, pending)
    }

    /// Checks the callback (`state`, RFC 9207 `iss`) and exchanges the code.
    pub async fn exchange(
        &self,
        pending: &PendingAuthorization,
        callback: &Callback<'_>,
    ) -> Result<UserGrant, CredentialError> {
        if !mcpgate_crypto::constant_time_eq(callback.state.as_bytes(), pending.state.as_bytes()) {
            return Err(self.refused_callback("the state does not match"));
        }
        let server = &pending.discovery.server;
        match callback.iss {
            Some(iss) if iss != server.issuer => {
                return Err(self.refused_callback("the iss parameter names another issuer"));
            }
            None if server.authorization_response_iss_parameter_supported => {
                return Err(self.refused_callback("the iss parameter is missing"));
            }
            _ => {}
        }
        let oauth = self
            .token_client(&pending.client, &server.token_endpoint)
            .set_redirect_uri(RedirectUrl::from_url(pending.redirect_uri.clone()));
        let http = TimedClient {
            http: &self.http,
            timeout: self.timeout,
        };
        let answer = oauth
            .exchange_code(AuthorizationCode::new(callback.code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                pending.pkce_verifier.expose().to_owned(),
            ))
            .add_extra_param("resource", pending.discovery.resource.clone())
            .request_async(&http)
            .await
            .map_err(|e| self.token_error(e))?;
        Ok(UserGrant {
            access_token: SecretString::new(answer.access_token().secret().clone()),
            refresh_token: answer
                .refresh_token()
                .map(|t| SecretString::new(t.secret().clone())),
            expires_at: answer
                .expires_in()
                .map(|d| now_secs().saturating_add(d.as_secs())),
            scope: answer.scopes().map(|s| join_scopes(s)).or_else(|| {
                (!pending.discovery.scopes.is_empty()).then(|| pending.discovery.scopes.join(" "))
            }),
            client: pending.client.clone(),
            issuer: server.issuer.clone(),
            token_endpoint: server.token_endpoint.clone(),
            revocation_endpoint: server.revocation_endpoint.clone(),
            resource: pending.discovery.resource.clone(),
        })
    }

    /// A refresh (RFC 6749 §6). The answer's refresh token replaces the old one when the
    /// server rotates it: persist the returned grant before using its access token.
    /// `Refused { error: "invalid_grant" }`: the connection is over.
    pub async fn refresh(&self, grant: &UserGrant) -> Result<UserGrant, CredentialError> {
        let Some(refresh_token) = &grant.refresh_token else {
            return Err(CredentialError::AccountNotConnected {
                upstream: self.upstream.clone(),
            });
        };
        let http = TimedClient {
            http: &self.http,
            timeout: self.timeout,
        };
        let rt = RefreshToken::new(refresh_token.expose().to_owned());
        let answer = self
            .token_client(&grant.client, &grant.token_endpoint)
            .exchange_refresh_token(&rt)
            .add_extra_param("resource", grant.resource.clone())
            .request_async(&http)
            .await
            .map_err(|e| self.token_error(e))?;
        Ok(UserGrant {
            access_token: SecretString::new(answer.access_token().secret().clone()),
            refresh_token: answer
                .refresh_token()
                .map(|t| SecretString::new(t.secret().clone()))
                .or_else(|| grant.refresh_token.clone()),
            expires_at: answer
                .expires_in()
                .map(|d| now_secs().saturating_add(d.as_secs())),
            scope: answer
                .scopes()
                .map(|s| join_scopes(s))
                .or_else(|| grant.scope.clone()),
            ..grant.clone()
        })
    }

    /// RFC 7009 at the grant's revocation endpoint (the refresh token, which takes the access
    /// token with it, else the access token). `Ok(false)`: the server offers no revocation.
    /// Written by hand: `oauth2` refuses a plain-http endpoint even on loopback.
    pub async fn revoke(&self, grant: &UserGrant) -> Result<bool, CredentialError> {
        let Some(endpoint) = &grant.revocation_endpoint else {
            return Ok(false);
        };
        let (token, hint) = match &grant.refresh_token {
            Some(rt) => (rt.expose(), "refresh_token"),
            None => (grant.access_token.expose(), "access_token"),
        };
        let mut form = vec![
            ("token", token.to_owned()),
            ("token_type_hint", hint.to_owned()),
        ];
        let mut request = self
            .http
            .post(endpoint.clone())
            .timeout(self.timeout)
            .header(http::header::ACCEPT, "application/json");
        let client = &grant.client;
        match (client.auth, &client.client_secret) {
            (TokenAuth::ClientSecretBasic, Some(secret)) => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(enc(&client.client_id), Some(enc(secret.expose())));
            }
            (TokenAuth::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", client.client_id.clone()));
                form.push(("client_secret", secret.expose().to_owned()));
            }
            _ => form.push(("client_id", client.client_id.clone())),
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| send_error(&self.upstream, self.timeout, &e))?;
        let status = response.status();
        // RFC 7009 §2.2: 200 whether or not the token was still valid.
        if status.is_success() {
            return Ok(true);
        }
        Err(self.unavailable(format!(
            "the authorization server did not revoke the token (HTTP {})",
            status.as_u16()
        )))
    }

    fn refused_callback(&self, why: &str) -> CredentialError {
        tracing::warn!(upstream = %self.upstream, why, "upstream authorization callback refused");
        CredentialError::Refused {
            upstream: self.upstream.clone(),
            error: "invalid_request".into(),
        }
    }

    fn token_client(
        &self,
        client: &RegisteredClient,
        token_endpoint: &Url,
    ) -> BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        let mut oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
            .set_token_uri(TokenUrl::from_url(token_endpoint.clone()))
            .set_auth_type(match client.auth {
                TokenAuth::ClientSecretPost => AuthType::RequestBody,
                _ => AuthType::BasicAuth,
            });
        if client.auth != TokenAuth::None
            && let Some(secret) = &client.client_secret
        {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        oauth
    }

    fn token_error(
        &self,
        e: RequestTokenError<
            HttpError,
            oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
        >,
    ) -> CredentialError {
        match e {
            RequestTokenError::ServerResponse(r) => CredentialError::Refused {
                upstream: self.upstream.clone(),
                error: error_code(r.error().as_ref()),
            },
            RequestTokenError::Request(HttpError::Send(e)) => {
                send_error(&self.upstream, self.timeout, &e)
            }
            RequestTokenError::Request(HttpError::Build(_)) => {
                self.unavailable("the token request could not be built")
            }
            RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
                self.unavailable("the token endpoint answered something unusable")
            }
        }
    }
}

fn join_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_round_trips_with_its_secrets_and_debug_redacts_them() {
        let grant = UserGrant {
            access_token: SecretString::new("at-1"),
            refresh_token: Some(SecretString::new("rt-1")),
            expires_at: Some(10),
            scope: None,
            client: RegisteredClient {
                client_id: "c".into(),
                client_secret: Some(SecretString::new("cs-1")),
                auth: TokenAuth::ClientSecretBasic,
                registration: Registration::Dynamic,
                issuer: "https://as.example".into(),
            },
            issuer: "https://as.example".into(),
            token_endpoint: Url::parse("https://as.example/token")
                .unwrap_or_else(|e| panic!("{e}")),
            revocation_endpoint: None,
            resource: "https://api.example/mcp".into(),
        };
        let json = serde_json::to_string(&grant).unwrap_or_default();
        let back: UserGrant = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, grant);
        let shown = format!("{grant:?}");
        assert!(!shown.contains("at-1") && !shown.contains("rt-1") && !shown.contains("cs-1"));
    }
}
