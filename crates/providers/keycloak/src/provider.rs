//! The Keycloak provider: fixed realm endpoints, `openid` always requested, roles from the
//! verified JWT access token.

use std::time::Duration;

use async_trait::async_trait;
use mcpgate_core::{
    AuthorizationRequest, Capabilities, FieldError, IdentityProvider, ProviderError,
    ProviderSettings, SecretString, TokenSet, UserContext,
};
use mcpgate_provider_kit::{
    EndpointSource, FixedEndpoints, MIN_REFETCH, OidcClient, OidcConfig, check_common,
    client_secret, looks_like_jws, parse_options, parse_url, shared_client, user_context,
};
use serde_json::Value;
use url::Url;

use crate::{DESCRIPTOR, Options, capabilities, roles, validate};

/// A configured Keycloak realm.
#[derive(Debug)]
pub struct KeycloakProvider {
    id: String,
    display_name: String,
    realm: String,
    endpoints: FixedEndpoints,
    rp: OidcClient,
}

impl KeycloakProvider {
    /// Validates the settings (every problem reported) and builds the provider.
    pub fn from_settings(settings: &ProviderSettings) -> Result<Self, Vec<FieldError>> {
        Self::with_jwks_refetch_interval(settings, MIN_REFETCH)
    }

    /// As [`Self::from_settings`], with the minimum time between JWKS refetches on unknown key
    /// ids (tests shorten it).
    pub fn with_jwks_refetch_interval(
        settings: &ProviderSettings,
        jwks_min_refetch: Duration,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = check_common(settings);
        let options = match parse_options::<Options>(settings) {
            Ok(options) => {
                errors.extend(validate(&options));
                Some(options)
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let secret = client_secret(settings)
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let http = shared_client().map_err(|e| errors.push(FieldError::new("", e.to_string())));
        let (Some(options), Ok(http), true) = (options, http, errors.is_empty()) else {
            return Err(errors);
        };
        let (issuer, endpoints) = realm_endpoints(&options).map_err(|e| vec![e])?;
        let mut config = OidcConfig::new(issuer, settings.client_id.clone());
        config.auth = options.token_auth.client_auth(secret.is_some());
        config.id_token_leeway =
            mcpgate_provider_kit::id_token_leeway(options.id_token_leeway_secs)
                .map_err(|e| vec![e])?;
        config.client_secret = secret;
        config.scopes = settings.scopes.clone();
        config.endpoints = EndpointSource::Fixed(Box::new(endpoints.clone()));
        config.jwks_min_refetch = jwks_min_refetch;
        if let Some(hint) = &options.idp_hint {
            config
                .extra_authorize_params
                .push(("kc_idp_hint".into(), hint.clone()));
        }
        Ok(Self {
            id: settings.id.clone(),
            display_name: settings
                .display_name
                .clone()
                .unwrap_or_else(|| DESCRIPTOR.display_name.to_owned()),
            realm: options.realm,
            endpoints,
            rp: OidcClient::new(config, http),
        })
    }

    /// The realm's issuer, `{server_url}/realms/{realm}`.
    pub fn issuer(&self) -> &str {
        &self.rp.config().issuer
    }

    pub fn endpoints(&self) -> &FixedEndpoints {
        &self.endpoints
    }

    /// The scopes requested (`openid` first).
    pub fn scopes(&self) -> &[String] {
        self.rp.scopes()
    }

    /// Verifies a Keycloak JWT access token (signature, `iss`, `exp`; `aud` is usually
    /// `account`, so it is not checked, but `azp` must be this client when present).
    pub async fn verify_access_token(&self, token: &str) -> Result<Value, ProviderError> {
        let claims = self.rp.verify_jwt_access_token(token).await?;
        let azp = claims.get("azp").and_then(Value::as_str);
        if azp.is_some_and(|azp| azp != self.rp.config().client_id) {
            return Err(ProviderError::Unauthorized(format!(
                "access token issued to {azp:?}, not this client"
            )));
        }
        Ok(claims)
    }
}

/// `{server_url}/realms/{realm}` and its `protocol/openid-connect/*` endpoints.
fn realm_endpoints(options: &Options) -> Result<(String, FixedEndpoints), FieldError> {
    let mut base = parse_url("options.server_url", &options.server_url)?;
    base.path_segments_mut()
        .map_err(|()| FieldError::new("options.server_url", "cannot be a base URL"))?
        .pop_if_empty()
        .extend(["realms", &options.realm]);
    let issuer = base.as_str().trim_end_matches('/').to_owned();
    let endpoint = |name: &str| -> Result<Url, FieldError> {
        Url::parse(&format!("{issuer}/protocol/openid-connect/{name}"))
            .map_err(|e| FieldError::new("options.server_url", e.to_string()))
    };
    let endpoints = FixedEndpoints {
        authorization: endpoint("auth")?,
        token: endpoint("token")?,
        userinfo: endpoint("userinfo")?,
        jwks: endpoint("certs")?,
        revocation: Some(endpoint("revoke")?),
    };
    Ok((issuer, endpoints))
}

#[async_trait]
impl IdentityProvider for KeycloakProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        DESCRIPTOR.kind
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        self.rp.authorization_url(request).await
    }

    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<TokenSet, ProviderError> {
        let (tokens, _id_claims) = self
            .rp
            .exchange_code(code, pkce_verifier, redirect_uri, nonce)
            .await?;
        Ok(tokens)
    }

    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        self.rp.refresh(refresh_token).await
    }

    async fn revoke(&self, refresh_token: &SecretString) -> Result<(), ProviderError> {
        self.rp
            .revoke_refresh_token(DESCRIPTOR.kind, refresh_token)
            .await
    }

    /// A JWT access token is verified and read directly: Keycloak's default client scopes put
    /// the profile, email and role claims in it, so no userinfo call is needed (and a revoked
    /// session is noticed at the next refresh, within the access token's short lifetime). An
    /// opaque token goes to the userinfo endpoint, whose claims then carry the roles.
    async fn user_info(&self, access_token: &SecretString) -> Result<UserContext, ProviderError> {
        let claims = if looks_like_jws(access_token.expose()) {
            self.verify_access_token(access_token.expose()).await?
        } else {
            self.rp.userinfo(access_token).await?
        };
        let mut context = user_context(claims)?;
        let mut all_roles = roles::realm_roles(&context.claims);
        all_roles.extend(roles::client_roles(&context.claims));
        context.roles = all_roles;
        context.tenant.insert("realm".into(), self.realm.clone());
        Ok(context)
    }
}
