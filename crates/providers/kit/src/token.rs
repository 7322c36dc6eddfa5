//! Token-endpoint requests (RFC 6749 §4.1.3, §6) in form or JSON, with the client secret in
//! HTTP Basic or in the body, and the response parsed leniently into a [`TokenSet`].

use mcpgate_core::{ProviderError, SecretString, TokenBodyFormat, TokenSet};
use serde::Deserialize;
use url::Url;

use crate::classify::{send_error, token_error};
use crate::numbers::lenient_seconds;

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

/// A client of one token endpoint.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    pub url: Url,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub auth: ClientAuth,
    pub body: TokenBodyFormat,
}

/// A token-endpoint answer. Unknown fields (`session_state`, `not-before-policy`, …) are kept
/// in `extra`.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: Option<String>,
    pub token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub expires_in: Option<i64>,
    pub refresh_token: Option<String>,
    /// Keycloak `refresh_expires_in`, GitHub `refresh_token_expires_in`.
    #[serde(
        default,
        deserialize_with = "lenient_seconds",
        alias = "refresh_token_expires_in"
    )]
    pub refresh_expires_in: Option<i64>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl TokenResponse {
    /// Parses a token-endpoint body; an answer without an access token is an error even with
    /// HTTP 200 (GitHub sends errors that way).
    pub fn parse(status: reqwest::StatusCode, body: &[u8]) -> Result<Self, ProviderError> {
        if !status.is_success() {
            return Err(token_error(status, body));
        }
        let parsed: Self = serde_json::from_slice(body).map_err(|e| {
            ProviderError::Misconfigured(format!("token endpoint: unexpected response: {e}"))
        })?;
        if parsed.error.is_some() {
            return Err(token_error(status, body));
        }
        if parsed.access_token.as_deref().is_none_or(str::is_empty) {
            return Err(ProviderError::Misconfigured(
                "token endpoint: the response has no access_token".into(),
            ));
        }
        Ok(parsed)
    }

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
            access_token: SecretString::new(self.access_token.unwrap_or_default()),
            refresh_token: self
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::new),
            id_token: self
                .id_token
                .filter(|t| !t.is_empty())
                .map(SecretString::new),
            expires_at: self.expires_in.filter(|s| *s > 0).map(|s| now + s),
            // Keycloak sends 0 for offline tokens: no idle expiry.
            refresh_expires_at: self.refresh_expires_in.filter(|s| *s > 0).map(|s| now + s),
            scopes,
        }
    }
}

impl TokenEndpoint {
    /// A POST to `url` with the client credentials and `params` in the configured body format.
    fn authenticated_post(
        &self,
        http: &reqwest::Client,
        url: &Url,
        params: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let mut fields: Vec<(&str, &str)> = params.to_vec();
        let secret = self.client_secret.as_ref().map(SecretString::expose);
        let mut request = http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match (self.auth, secret) {
            (ClientAuth::Basic, Some(secret)) => {
                // RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(enc(&self.client_id), Some(enc(secret)));
            }
            (ClientAuth::Post, Some(secret)) => {
                fields.push(("client_id", &self.client_id));
                fields.push(("client_secret", secret));
            }
            _ => fields.push(("client_id", &self.client_id)),
        }
        match self.body {
            TokenBodyFormat::Form => request.form(&fields),
            TokenBodyFormat::Json => {
                let map: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                    .collect();
                request.json(&map)
            }
        }
    }

    /// Revokes a token at an RFC 7009 endpoint with the same client authentication. 200 is
    /// success, also for a token that was already invalid (RFC 7009 §2.2).
    pub async fn revoke(
        &self,
        http: &reqwest::Client,
        revocation_url: &Url,
        token: &str,
        token_type_hint: &str,
    ) -> Result<(), ProviderError> {
        let response = self
            .authenticated_post(
                http,
                revocation_url,
                &[("token", token), ("token_type_hint", token_type_hint)],
            )
            .send()
            .await
            .map_err(|e| send_error("revocation endpoint", &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| send_error("revocation endpoint", &e))?;
        Err(match token_error(status, &body) {
            ProviderError::InvalidGrant(why) => ProviderError::Misconfigured(why),
            other => other,
        })
    }

    /// POSTs a grant (`params` without client credentials) and parses the answer.
    pub async fn request(
        &self,
        http: &reqwest::Client,
        params: &[(&str, &str)],
    ) -> Result<TokenResponse, ProviderError> {
        let request = self.authenticated_post(http, &self.url, params);
        let started = std::time::Instant::now();
        let grant = params
            .iter()
            .find(|(k, _)| *k == "grant_type")
            .map_or("", |(_, v)| *v);
        let result = async {
            let response = request
                .send()
                .await
                .map_err(|e| send_error("token endpoint", &e))?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| send_error("token endpoint", &e))?;
            TokenResponse::parse(status, &body)
        }
        .await;
        // One event per call, never a token or secret.
        tracing::debug!(
            provider.host = self.url.host_str().unwrap_or_default(),
            grant_type = grant,
            ok = result.is_ok(),
            error = result.as_ref().err().map(tracing::field::display),
            latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "provider token request"
        );
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn string_numbers_and_keycloak_fields() {
        let body = br#"{"access_token":"a","expires_in":"300","refresh_token":"r",
            "refresh_expires_in":"1800","session_state":"s","not-before-policy":0,
            "token_type":"Bearer","scope":"openid email"}"#;
        let set = TokenResponse::parse(StatusCode::OK, body)
            .map(|r| r.into_token_set(1000, &[]))
            .ok();
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
        let set = TokenResponse::parse(
            StatusCode::OK,
            br#"{"access_token":"a","scope":"repo,gist"}"#,
        )
        .map(|r| r.into_token_set(1000, &[]))
        .unwrap_or_default();
        assert_eq!(set.expires_at, None);
        assert_eq!(set.refresh_expires_at, None);
        assert_eq!(set.scopes, ["repo", "gist"]);
    }

    #[test]
    fn errors_with_200_are_errors() {
        let e = TokenResponse::parse(StatusCode::OK, br#"{"error":"bad_refresh_token"}"#).err();
        assert!(matches!(e, Some(ProviderError::InvalidGrant(_))), "{e:?}");
        let e = TokenResponse::parse(StatusCode::OK, br#"{"token_type":"bearer"}"#).err();
        assert!(matches!(e, Some(ProviderError::Misconfigured(_))), "{e:?}");
    }

    #[test]
    fn scope_defaults_to_the_request() {
        let set = TokenResponse::parse(StatusCode::OK, br#"{"access_token":"a","expires_in":60}"#)
            .map(|r| r.into_token_set(0, &["openid".to_owned()]))
            .unwrap_or_default();
        assert_eq!(set.scopes, ["openid"]);
        assert_eq!(set.expires_at, Some(60));
    }
}
