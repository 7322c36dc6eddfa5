//! Token-endpoint answers: the response type the `oauth2`/`openidconnect` clients parse into
//! (lenient about numbers sent as strings, keeping provider extras), its conversion into a
//! [`TokenSet`], and the classification of a failed token request.

use std::time::Duration;

use mcpgate_core::{ProviderError, SecretString, TokenSet};
use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, ErrorResponse, RefreshToken, RequestTokenError, Scope};
use serde::{Deserialize, Serialize};

use crate::classify::token_error;
use crate::http::HttpError;
use crate::numbers::lenient_seconds;
use crate::oidc_client::KitIdToken;

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the body.
    Post,
    /// A public client: only `client_id` in the body.
    None,
}

impl ClientAuth {
    /// The `oauth2` crate's name for it.
    pub fn auth_type(self) -> oauth2::AuthType {
        match self {
            Self::Basic => oauth2::AuthType::BasicAuth,
            Self::Post | Self::None => oauth2::AuthType::RequestBody,
        }
    }
}

static BEARER: BasicTokenType = BasicTokenType::Bearer;

/// A token-endpoint answer. `expires_in` and `refresh_expires_in` may be numbers or numeric
/// strings (GitHub's 2020 beta, Salesforce); a missing `expires_in` is *unknown*, never "one
/// hour". Unknown fields (`session_state`, `not-before-policy`, `instance_url`, …) are kept in
/// `extra`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KitTokenResponse {
    pub access_token: AccessToken,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// Keycloak `refresh_expires_in`, GitHub `refresh_token_expires_in`.
    #[serde(
        default,
        deserialize_with = "lenient_seconds",
        alias = "refresh_token_expires_in"
    )]
    pub refresh_expires_in: Option<i64>,
    #[serde(default)]
    pub id_token: Option<KitIdToken>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl oauth2::TokenResponse for KitTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// mcpgate only uses bearer tokens; the field as sent is in `token_type`.
    fn token_type(&self) -> &BasicTokenType {
        &BEARER
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// Parsed by [`KitTokenResponse::into_token_set`] (GitHub separates with commas).
    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

impl
    openidconnect::TokenResponse<
        crate::oidc_client::ExtraClaims,
        openidconnect::core::CoreGenderClaim,
        openidconnect::core::CoreJweContentEncryptionAlgorithm,
        openidconnect::core::CoreJwsSigningAlgorithm,
    > for KitTokenResponse
{
    fn id_token(&self) -> Option<&KitIdToken> {
        self.id_token.as_ref()
    }
}

impl KitTokenResponse {
    /// The tokens, with lifetimes turned into instants. `requested_scopes` stand in when the
    /// response does not list the granted scopes (RFC 6749 §5.1: then they are as requested).
    pub fn into_token_set(self, now: i64, requested_scopes: &[String]) -> TokenSet {
        let scopes = match &self.scope {
            // Space-separated per RFC 6749; GitHub OAuth Apps use commas.
            Some(s) => s
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => requested_scopes.to_vec(),
        };
        TokenSet {
            access_token: SecretString::new(self.access_token.into_secret()),
            refresh_token: self
                .refresh_token
                .map(RefreshToken::into_secret)
                .filter(|t| !t.is_empty())
                .map(SecretString::new),
            id_token: self.id_token.map(|t| SecretString::new(t.to_string())),
            expires_at: self.expires_in.filter(|s| *s > 0).map(|s| now + s),
            // Keycloak sends 0 for offline tokens: no idle expiry.
            refresh_expires_at: self.refresh_expires_in.filter(|s| *s > 0).map(|s| now + s),
            scopes,
        }
    }
}

/// Classifies a failed token request made with the `oauth2` crate. The HTTP client already
/// turned 5xx and 429 into transient errors; an error body at another status is classified by
/// its `error` code; a 200 body with an `error` field (GitHub) is classified the same way.
pub fn request_token_error<T: ErrorResponse + Serialize>(
    e: RequestTokenError<HttpError, T>,
) -> ProviderError {
    match e {
        RequestTokenError::Request(e) => e.classify("token endpoint"),
        RequestTokenError::ServerResponse(body) => match serde_json::to_vec(&body) {
            Ok(json) => token_error(reqwest::StatusCode::BAD_REQUEST, &json),
            Err(e) => ProviderError::Misconfigured(format!("token endpoint: {e}")),
        },
        RequestTokenError::Parse(why, body) => {
            let has_error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .is_some_and(|v| v.get("error").is_some_and(|e| e.is_string()));
            if has_error {
                token_error(reqwest::StatusCode::OK, &body)
            } else {
                ProviderError::Misconfigured(format!("token endpoint: unexpected response: {why}"))
            }
        }
        RequestTokenError::Other(why) => {
            ProviderError::Misconfigured(format!("token endpoint: {why}"))
        }
    }
}

/// Revokes a token at an RFC 7009 endpoint with the client's token-endpoint authentication.
/// 200 is success, also for a token that was already invalid (RFC 7009 §2.2).
///
/// Not through `oauth2`'s `revoke_token`: oauth2 5 refuses any revocation URL that is not
/// https, with no exception for loopback, where development and test providers live.
pub async fn revoke(
    http: &crate::HttpClient,
    url: &url::Url,
    client_id: &str,
    client_secret: Option<&SecretString>,
    auth: ClientAuth,
    token: &str,
    token_type_hint: &str,
) -> Result<(), ProviderError> {
    let mut fields = vec![("token", token), ("token_type_hint", token_type_hint)];
    let mut request = http
        .reqwest()
        .post(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    match (auth, client_secret.map(SecretString::expose)) {
        (ClientAuth::Basic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(enc(client_id), Some(enc(secret)));
        }
        (ClientAuth::Post, Some(secret)) => {
            fields.push(("client_id", client_id));
            fields.push(("client_secret", secret));
        }
        _ => fields.push(("client_id", client_id)),
    }
    let response = request
        .form(&fields)
        .send()
        .await
        .map_err(|e| crate::send_error("revocation endpoint", &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| crate::send_error("revocation endpoint", &e))?;
    Err(token_error(status, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Option<KitTokenResponse> {
        serde_json::from_str(body).ok()
    }

    #[test]
    fn string_numbers_and_keycloak_fields() {
        let body = r#"{"access_token":"a","expires_in":"300","refresh_token":"r",
            "refresh_expires_in":"1800","session_state":"s","not-before-policy":0,
            "token_type":"Bearer","scope":"openid email"}"#;
        let set = parse(body).map(|r| r.into_token_set(1000, &[]));
        let set = set.unwrap_or_default();
        assert_eq!(set.expires_at, Some(1300));
        assert_eq!(set.refresh_expires_at, Some(2800));
        assert_eq!(set.scopes, ["openid", "email"]);
        assert_eq!(
            set.refresh_token.map(|t| t.expose().to_owned()),
            Some("r".into())
        );
    }

    #[test]
    fn missing_expiry_is_unknown() {
        let set = parse(r#"{"access_token":"a","scope":"repo,gist"}"#)
            .map(|r| r.into_token_set(1000, &[]))
            .unwrap_or_default();
        assert_eq!(set.expires_at, None);
        assert_eq!(set.refresh_expires_at, None);
        assert_eq!(set.scopes, ["repo", "gist"]);
    }

    #[test]
    fn errors_with_200_are_classified() {
        let body = br#"{"error":"bad_refresh_token","error_description":"x"}"#.to_vec();
        let why = serde_json::from_slice::<KitTokenResponse>(&body).err();
        assert!(why.is_some(), "an error body is not a token response");
        let parse_error = serde_path_to_error_stand_in(&body);
        let e = request_token_error::<oauth2::basic::BasicErrorResponse>(parse_error);
        assert!(matches!(e, ProviderError::InvalidGrant(_)), "{e:?}");
    }

    fn serde_path_to_error_stand_in(
        body: &[u8],
    ) -> RequestTokenError<HttpError, oauth2::basic::BasicErrorResponse> {
        let mut de = serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize::<_, KitTokenResponse>(&mut de) {
            Err(e) => RequestTokenError::Parse(e, body.to_vec()),
            Ok(_) => RequestTokenError::Other("parsed".into()),
        }
    }

    #[test]
    fn scope_defaults_to_the_request() {
        let set = parse(r#"{"access_token":"a","expires_in":60}"#)
            .map(|r| r.into_token_set(0, &["openid".to_owned()]))
            .unwrap_or_default();
        assert_eq!(set.scopes, ["openid"]);
        assert_eq!(set.expires_at, Some(60));
    }
}
