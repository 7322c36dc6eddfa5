//! Kind `token_exchange`: RFC 8693 at a security token service. The subject token is the
//! user's provider token or an mcpgate identity assertion; the issued token is cached per
//! (upstream, user) until expiry minus skew, one exchange for concurrent callers of one user.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderName;
use url::Url;

use crate::config::{ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TokenHeader, TokenTiming};
use crate::identity_assertion::AssertionSigner;
use crate::login_token::user_token;
use crate::oauth::{OAuthClient, token_request};
use crate::token_cache::{CachedToken, TokenCache};
use crate::{
    Caller, CredentialError, CredentialSnapshot, CredentialSource, OutgoingRequest, ProviderTokens,
};

/// Lifetime of the assertion presented as a subject token: it is used at once.
const SUBJECT_ASSERTION_TTL_SECS: u64 = 30;

pub(crate) enum Subject {
    LoginToken {
        provider: String,
        tokens: Arc<dyn ProviderTokens>,
    },
    Assertion(Arc<AssertionSigner>),
}

/// A cache key: the upstream and the user, never a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct UserKey {
    upstream: String,
    user_id: String,
}

pub(crate) struct TokenExchange {
    pub(crate) upstream: String,
    pub(crate) endpoint: Url,
    pub(crate) client: Option<OAuthClient>,
    pub(crate) subject: Subject,
    pub(crate) requested_token_type: String,
    pub(crate) audience: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) header_name: HeaderName,
    pub(crate) header: TokenHeader,
    pub(crate) timing: TokenTiming,
    pub(crate) timeout: Duration,
    pub(crate) http: reqwest::Client,
    pub(crate) cache: TokenCache<UserKey>,
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = match &self.subject {
            Subject::LoginToken { provider, .. } => format!("login_token:{provider}"),
            Subject::Assertion(_) => "identity_assertion".into(),
        };
        f.debug_struct("TokenExchange")
            .field("upstream", &self.upstream)
            .field("endpoint", &self.endpoint.as_str())
            .field("subject", &subject)
            .field("header", &self.header_name)
            .finish_non_exhaustive()
    }
}

impl TokenExchange {
    async fn exchange(&self, caller: &Caller<'_>) -> Result<CachedToken, CredentialError> {
        let (subject_token, subject_type) = match &self.subject {
            Subject::LoginToken { provider, tokens } => {
                let token = user_token(
                    tokens.as_ref(),
                    caller.user_id,
                    provider,
                    &self.upstream,
                    self.timeout,
                )
                .await?;
                (token.expose().to_owned(), ACCESS_TOKEN_TYPE)
            }
            Subject::Assertion(signer) => (
                signer.sign(
                    caller,
                    self.endpoint.as_str(),
                    SUBJECT_ASSERTION_TTL_SECS,
                    &self.upstream,
                )?,
                JWT_TOKEN_TYPE,
            ),
        };
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            ("subject_token", subject_token),
            ("subject_token_type", subject_type.to_owned()),
            ("requested_token_type", self.requested_token_type.clone()),
        ];
        for (name, value) in [
            ("audience", &self.audience),
            ("resource", &self.resource),
            ("scope", &self.scope),
        ] {
            if let Some(v) = value {
                form.push((name, v.clone()));
            }
        }
        let issued = token_request(
            &self.http,
            &self.endpoint,
            self.client.as_ref(),
            form,
            &self.upstream,
            self.timeout,
        )
        .await?;
        tracing::debug!(upstream = %self.upstream, user.id = %caller.user_id, "token exchanged");
        CachedToken::new(&issued, &self.header, &self.timing, &self.upstream)
    }
}

#[async_trait]
impl CredentialSource for TokenExchange {
    async fn resolve(
        &self,
        caller: &Caller<'_>,
        _request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let key = UserKey {
            upstream: self.upstream.clone(),
            user_id: caller.user_id.to_owned(),
        };
        let value = self
            .cache
            .get_or_fetch(key, self.exchange(caller), &self.upstream, self.timeout)
            .await?;
        Ok(CredentialSnapshot::empty().with_header(self.header_name.clone(), value))
    }
}
