//! Configuration of an upstream's `credentials`: one table tagged by `kind`, or a list of them
//! ([`UpstreamCredentialsConfig`]). Each kind's table is here, with its checks.

mod checks;
mod list;
mod user;

use mcpgate_core::{FieldError, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

pub(crate) use checks::load_secret;
use checks::{check_header_name, check_nonempty, check_url};
pub use list::UpstreamCredentialsConfig;
pub use user::{MAX_USER_SECRET_LEN, Registration, UserOAuthConfig, UserSecretConfig};

/// RFC 8693 token type URIs (§3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Longest lifetime of an identity assertion: it is a per-request credential.
pub const MAX_ASSERTION_TTL_SECS: u64 = 60;

/// One credential kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialsConfig {
    /// The upstream needs no credentials.
    None,
    /// A fixed header value (an API key, a bearer token mcpgate was given).
    Static(StaticConfig),
    /// The user's own access token at an identity provider mcpgate signs people in with.
    LoginToken(LoginTokenConfig),
    /// mcpgate's own client at the upstream's authorization server (RFC 6749 §4.4).
    ClientCredentials(ClientCredentialsConfig),
    /// RFC 8693 token exchange at a security token service, per user.
    TokenExchange(TokenExchangeConfig),
    /// AWS Signature Version 4 over the request (Cargo feature `aws-sigv4`).
    AwsSigv4(AwsSigv4Config),
    /// A short-lived EdDSA JWT saying who the user is, signed by mcpgate.
    IdentityAssertion(IdentityAssertionConfig),
    /// The user's own token at the upstream's authorization server: mcpgate is an OAuth
    /// client there, and each user connects their account once.
    UserOauth(UserOAuthConfig),
    /// The user's own API key or personal access token, entered on mcpgate's page.
    UserSecret(UserSecretConfig),
}

impl CredentialsConfig {
    /// The config name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Static(_) => "static",
            Self::LoginToken(_) => "login_token",
            Self::ClientCredentials(_) => "client_credentials",
            Self::TokenExchange(_) => "token_exchange",
            Self::AwsSigv4(_) => "aws_sigv4",
            Self::IdentityAssertion(_) => "identity_assertion",
            Self::UserOauth(_) => "user_oauth",
            Self::UserSecret(_) => "user_secret",
        }
    }

    /// The header this kind sets (SigV4 sets `authorization` and the `x-amz-*` headers).
    pub(crate) fn header(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Static(c) => Some(c.header.to_ascii_lowercase()),
            Self::LoginToken(c) => Some(c.header.to_ascii_lowercase()),
            Self::ClientCredentials(c) => Some(c.header.to_ascii_lowercase()),
            Self::TokenExchange(c) => Some(c.header.to_ascii_lowercase()),
            Self::AwsSigv4(_) => Some("authorization".into()),
            Self::IdentityAssertion(c) => Some(c.header.to_ascii_lowercase()),
            Self::UserOauth(c) => Some(c.header.to_ascii_lowercase()),
            Self::UserSecret(c) => Some(c.header.to_ascii_lowercase()),
        }
    }

    /// Every problem of this entry, with paths under `path` (e.g. `upstreams[0].credentials`).
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let at = |field: &str| format!("{path}.{field}");
        match self {
            Self::None => {}
            Self::Static(c) => {
                check_header_name(&c.header, &at("header"), &mut errors);
                let sources = usize::from(c.value.is_some())
                    + usize::from(c.value_file.is_some())
                    + usize::from(c.value_env.is_some())
                    + usize::from(c.sealed);
                if sources != 1 {
                    errors.push(FieldError::new(
                        path,
                        "set exactly one of value, value_file, value_env or sealed = true",
                    ));
                } else if !c.sealed
                    && let Err(e) = load_secret(
                        path,
                        ("value", c.value.as_ref()),
                        ("value_file", c.value_file.as_deref()),
                        ("value_env", c.value_env.as_deref()),
                    )
                {
                    errors.push(e);
                }
            }
            Self::LoginToken(c) => {
                check_nonempty(&c.provider, &at("provider"), &mut errors);
                c.token_header().validate(path, &mut errors);
            }
            Self::ClientCredentials(c) => {
                match (&c.token_endpoint, &c.issuer) {
                    (Some(u), None) => check_url(u, &at("token_endpoint"), &mut errors),
                    (None, Some(u)) => check_url(u, &at("issuer"), &mut errors),
                    _ => errors.push(FieldError::new(
                        path,
                        "set exactly one of token_endpoint or issuer (for discovery)",
                    )),
                }
                c.client().validate(path, true, &mut errors);
                c.token_header().validate(path, &mut errors);
                c.timing().validate(path, &mut errors);
            }
            Self::TokenExchange(c) => {
                check_url(&c.token_endpoint, &at("token_endpoint"), &mut errors);
                c.client().validate(path, false, &mut errors);
                match (&c.subject_token, &c.provider) {
                    (SubjectToken::LoginToken, None) => errors.push(FieldError::new(
                        at("provider"),
                        "subject_token = \"login_token\" needs the provider whose token is exchanged",
                    )),
                    (SubjectToken::LoginToken, Some(p)) => {
                        check_nonempty(p, &at("provider"), &mut errors)
                    }
                    (SubjectToken::IdentityAssertion, Some(_)) => errors.push(FieldError::new(
                        at("provider"),
                        "only subject_token = \"login_token\" takes a provider",
                    )),
                    (SubjectToken::IdentityAssertion, None) => {}
                }
                check_nonempty(
                    &c.requested_token_type,
                    &at("requested_token_type"),
                    &mut errors,
                );
                c.token_header().validate(path, &mut errors);
                c.timing().validate(path, &mut errors);
            }
            Self::AwsSigv4(c) => {
                check_nonempty(&c.service, &at("service"), &mut errors);
                match &c.region {
                    None => errors.push(FieldError::new(
                        at("region"),
                        "aws_sigv4 needs the region to sign for (e.g. \"eu-west-1\")",
                    )),
                    Some(r) => check_nonempty(r, &at("region"), &mut errors),
                }
                c.credentials.validate(&at("credentials"), &mut errors);
                if c.refresh_before_secs == 0 {
                    errors.push(FieldError::new(at("refresh_before_secs"), "must be > 0"));
                }
            }
            Self::IdentityAssertion(c) => {
                check_header_name(&c.header, &at("header"), &mut errors);
                if c.ttl_secs == 0 || c.ttl_secs > MAX_ASSERTION_TTL_SECS {
                    errors.push(FieldError::new(
                        at("ttl_secs"),
                        format!("must be 1 to {MAX_ASSERTION_TTL_SECS} seconds"),
                    ));
                }
                if let Some(aud) = &c.audience {
                    check_nonempty(aud, &at("audience"), &mut errors);
                }
            }
            Self::UserOauth(c) => c.validate(path, &mut errors),
            Self::UserSecret(c) => c.validate(path, &mut errors),
        }
        errors
    }
}

/// `kind = "static"`: `header: value`, the value from exactly one of `value`, `value_file`,
/// `value_env`, or `sealed = true` (set through the admin API, stored sealed in the database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// The header to set (default `authorization`); the value is used as it is, so a bearer
    /// token is written `Bearer …`.
    #[serde(default = "default_header")]
    pub header: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretString>,
    /// A file holding the value (surrounding whitespace is trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_file: Option<String>,
    /// An environment variable holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_env: Option<String>,
    #[serde(default)]
    pub sealed: bool,
}

/// Where a token goes: `header` (default `authorization`) as `"{scheme} {token}"`, or the bare
/// token when `scheme` is empty. (Fields of the kind's table: serde cannot combine flattening
/// with `deny_unknown_fields`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub name: String,
    pub scheme: String,
}

impl TokenHeader {
    fn validate(&self, path: &str, errors: &mut Vec<FieldError>) {
        check_header_name(&self.name, &format!("{path}.header"), errors);
        if self.scheme.contains(char::is_whitespace) {
            errors.push(FieldError::new(
                format!("{path}.scheme"),
                "must be one word (e.g. \"Bearer\") or empty",
            ));
        }
    }
}

/// `kind = "login_token"`: the user's access token at `provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginTokenConfig {
    /// The `id` of a configured identity provider.
    pub provider: String,
    /// The header the token goes in (default `authorization`).
    #[serde(default = "default_header")]
    pub header: String,
    /// Written before the token (default `Bearer`); empty: the bare token.
    #[serde(default = "default_scheme")]
    pub scheme: String,
}

/// How mcpgate authenticates as an OAuth client at a token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// mcpgate's client registration at an authorization server (fields of the kind's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_auth: ClientAuth,
}

impl ClientConfig {
    /// `required`: client credentials need a client; a token exchange may be unauthenticated.
    fn validate(&self, path: &str, required: bool, errors: &mut Vec<FieldError>) {
        match &self.client_id {
            None if required => {
                errors.push(FieldError::new(format!("{path}.client_id"), "is required"))
            }
            Some(id) => check_nonempty(id, &format!("{path}.client_id"), errors),
            None => {}
        }
        let any_secret = self.client_secret.is_some()
            || self.client_secret_file.is_some()
            || self.client_secret_env.is_some();
        if any_secret && self.client_id.is_none() {
            errors.push(FieldError::new(
                format!("{path}.client_id"),
                "a client secret is set without the client_id it belongs to",
            ));
        }
        if (required || self.client_id.is_some() || any_secret)
            && let Err(e) = self.secret(path)
        {
            errors.push(e);
        }
    }

    pub(crate) fn secret(&self, path: &str) -> Result<SecretString, FieldError> {
        load_secret(
            path,
            ("client_secret", self.client_secret.as_ref()),
            ("client_secret_file", self.client_secret_file.as_deref()),
            ("client_secret_env", self.client_secret_env.as_deref()),
        )
    }
}

/// Timeout and cache timing of a token kind (fields of the kind's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTiming {
    pub timeout_ms: Option<u64>,
    pub expiry_skew_secs: u64,
    pub unknown_expiry_ttl_secs: u64,
}

impl TokenTiming {
    fn validate(&self, path: &str, errors: &mut Vec<FieldError>) {
        if self.timeout_ms == Some(0) {
            errors.push(FieldError::new(format!("{path}.timeout_ms"), "must be > 0"));
        }
        if self.unknown_expiry_ttl_secs == 0 {
            errors.push(FieldError::new(
                format!("{path}.unknown_expiry_ttl_secs"),
                "must be > 0",
            ));
        }
    }
}

/// `kind = "client_credentials"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsConfig {
    /// The token endpoint, or …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<Url>,
    /// … the issuer, whose RFC 8414 (then OIDC) metadata names the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    /// An environment variable holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Space-separated scopes to ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// RFC 8707 resource indicator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The header the token goes in (default `authorization`).
    #[serde(default = "default_header")]
    pub header: String,
    /// Written before the token (default `Bearer`); empty: the bare token.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Longest wait for the token endpoint (and discovery). Unset: the upstream's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// A token is fetched again this long before it expires.
    #[serde(default = "default_skew")]
    pub expiry_skew_secs: u64,
    /// How long to use a token whose response had no `expires_in`.
    #[serde(default = "default_unknown_ttl")]
    pub unknown_expiry_ttl_secs: u64,
}

/// What a token exchange presents as `subject_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectToken {
    /// The user's access token at `provider`.
    LoginToken,
    /// An identity assertion mcpgate signs for the user (audience = the STS token endpoint).
    IdentityAssertion,
}

/// `kind = "token_exchange"` (RFC 8693).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeConfig {
    /// The STS token endpoint.
    pub token_endpoint: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    /// An environment variable holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    pub subject_token: SubjectToken,
    /// With `subject_token = "login_token"`: the provider whose token is exchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default = "default_requested_token_type")]
    pub requested_token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The header the token goes in (default `authorization`).
    #[serde(default = "default_header")]
    pub header: String,
    /// Written before the token (default `Bearer`); empty: the bare token.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Longest wait for the token endpoint (and discovery). Unset: the upstream's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// A token is fetched again this long before it expires.
    #[serde(default = "default_skew")]
    pub expiry_skew_secs: u64,
    /// How long to use a token whose response had no `expires_in`.
    #[serde(default = "default_unknown_ttl")]
    pub unknown_expiry_ttl_secs: u64,
}

/// Where the AWS credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum AwsCredentialsSource {
    /// A fixed access key; the secret from exactly one of the three secret fields.
    Static {
        access_key_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key: Option<SecretString>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key_file: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key_env: Option<String>,
    },
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` of mcpgate's process.
    Env,
    /// A profile of the shared AWS files: its static keys, or a role it assumes (through STS)
    /// from another profile's keys. Never the instance metadata service.
    Profile {
        #[serde(default = "default_profile")]
        profile: String,
        /// The shared credentials file; unset: the default location.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials_file: Option<String>,
        /// The shared config file; unset: the default location.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_file: Option<String>,
    },
    /// STS `AssumeRole` in the signing region, signed with the `base` credentials.
    AssumeRole {
        role_arn: String,
        /// Unset: `mcpgate`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
        /// 900 to 43200; unset: STS's default (one hour).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_secs: Option<u64>,
        /// The STS endpoint (a VPC endpoint, a test STS); unset: the region's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sts_endpoint: Option<Url>,
        base: Box<AwsCredentialsSource>,
    },
}

impl AwsCredentialsSource {
    fn validate(&self, path: &str, errors: &mut Vec<FieldError>) {
        match self {
            Self::Env => {}
            Self::Static {
                access_key_id,
                secret_access_key,
                secret_access_key_file,
                secret_access_key_env,
            } => {
                check_nonempty(access_key_id, &format!("{path}.access_key_id"), errors);
                if let Err(e) = load_secret(
                    path,
                    ("secret_access_key", secret_access_key.as_ref()),
                    ("secret_access_key_file", secret_access_key_file.as_deref()),
                    ("secret_access_key_env", secret_access_key_env.as_deref()),
                ) {
                    errors.push(e);
                }
            }
            Self::Profile {
                profile,
                credentials_file,
                config_file,
            } => {
                check_nonempty(profile, &format!("{path}.profile"), errors);
                for (field, file) in [
                    ("credentials_file", credentials_file),
                    ("config_file", config_file),
                ] {
                    if let Some(f) = file
                        && let Err(e) = std::fs::metadata(f)
                    {
                        errors.push(FieldError::new(
                            format!("{path}.{field}"),
                            format!("cannot read {f:?}: {e}"),
                        ));
                    }
                }
            }
            Self::AssumeRole {
                role_arn,
                session_name,
                duration_secs,
                sts_endpoint,
                base,
                ..
            } => {
                if !role_arn.starts_with("arn:") {
                    errors.push(FieldError::new(
                        format!("{path}.role_arn"),
                        "must be a role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                    ));
                }
                if let Some(name) = session_name {
                    check_nonempty(name, &format!("{path}.session_name"), errors);
                }
                if let Some(d) = duration_secs
                    && !(900..=43_200).contains(d)
                {
                    errors.push(FieldError::new(
                        format!("{path}.duration_secs"),
                        "must be 900 to 43200 seconds",
                    ));
                }
                if let Some(url) = sts_endpoint {
                    check_url(url, &format!("{path}.sts_endpoint"), errors);
                }
                base.validate(&format!("{path}.base"), errors);
            }
        }
    }
}

fn default_profile() -> String {
    "default".into()
}

/// `kind = "aws_sigv4"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSigv4Config {
    /// The signing name of the service (e.g. `execute-api`, `lambda`, `bedrock`).
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub credentials: AwsCredentialsSource,
    /// Expiring credentials are resolved again this long before they expire.
    #[serde(default = "default_aws_refresh")]
    pub refresh_before_secs: u64,
}

/// `kind = "identity_assertion"`: a JWT (EdDSA) with iss = mcpgate's issuer, aud, sub, email,
/// roles, jti, valid `ttl_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityAssertionConfig {
    /// The header carrying the bare JWT.
    #[serde(default = "default_assertion_header")]
    pub header: String,
    /// At most 60.
    #[serde(default = "default_assertion_ttl")]
    pub ttl_secs: u64,
    /// `aud`; unset: the upstream's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

macro_rules! token_header {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn token_header(&self) -> TokenHeader {
                TokenHeader {
                    name: self.header.clone(),
                    scheme: self.scheme.clone(),
                }
            }
        }
    )*};
}
token_header!(
    LoginTokenConfig,
    UserOAuthConfig,
    UserSecretConfig,
    ClientCredentialsConfig,
    TokenExchangeConfig
);

macro_rules! client_and_timing {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn client(&self) -> ClientConfig {
                ClientConfig {
                    client_id: self.client_id.clone(),
                    client_secret: self.client_secret.clone(),
                    client_secret_file: self.client_secret_file.clone(),
                    client_secret_env: self.client_secret_env.clone(),
                    client_auth: self.client_auth,
                }
            }

            pub fn timing(&self) -> TokenTiming {
                TokenTiming {
                    timeout_ms: self.timeout_ms,
                    expiry_skew_secs: self.expiry_skew_secs,
                    unknown_expiry_ttl_secs: self.unknown_expiry_ttl_secs,
                }
            }
        }
    )*};
}
client_and_timing!(ClientCredentialsConfig, TokenExchangeConfig);

fn default_header() -> String {
    "authorization".into()
}
fn default_scheme() -> String {
    "Bearer".into()
}
fn default_skew() -> u64 {
    30
}
fn default_unknown_ttl() -> u64 {
    60
}
fn default_requested_token_type() -> String {
    ACCESS_TOKEN_TYPE.into()
}
fn default_aws_refresh() -> u64 {
    300
}
fn default_assertion_header() -> String {
    "x-mcpgate-assertion".into()
}
fn default_assertion_ttl() -> u64 {
    30
}
