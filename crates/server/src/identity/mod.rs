//! The identity service: who a federated user is (`UserContext`), and their current provider
//! access token, without asking the identity provider on every request.
//!
//! - User context is cached per provider grant with a TTL and loaded single-flight: N
//!   concurrent requests of one user with a cold cache make one user-info call.
//! - Provider tokens are refreshed before they expire (with skew) or after the provider
//!   answers 401, once per grant: single-flight inside this process (keyed by grant and the
//!   version read) and leased across replicas through storage (`claim_refresh_lease`). The
//!   rotated refresh token is written (with the new access token, in one statement) before
//!   either is used; waiters re-read the grant instead of refreshing again.
//! - `invalid_grant` ends the grant: the client gets 401 and signs in again.
//!
//! - A refresh runs in a task of its own: a request that gives up (the client went away, or
//!   `auth.provider_timeout_secs` passed and it got 504) cannot cancel it between the provider
//!   rotating the refresh token and mcpgate storing the new one, which would sign the user out.
//!
//! Why this cannot deadlock: the only waiting is on a loader future (moka's single-flight) or
//! on a short sleep before re-reading the grant. A refresh loader never calls back into
//! `context` or `refresh` for the same key — it talks to storage and the provider only — so no
//! future ever waits on itself, and no lock, permit or database connection is held while the
//! provider is called (storage hands out units of work, never connections).

pub mod refresh;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use mcpgate_core::{IdentityProvider, ProviderError, SecretString, UserContext};
use mcpgate_crypto::{Place, SecretBox};
use mcpgate_providers::Registry;
use mcpgate_storage::{ProviderGrant, StorageError, Store};

use crate::error::{ApiError, Challenge};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The grant is dead (`invalid_grant`) or gone: sign in again.
    #[error("the identity provider ended the sign-in; sign in again")]
    SignInAgain,
    #[error("identity provider: {0}")]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("a sealed provider token could not be opened: {0}")]
    Sealed(String),
    #[error("provider {0:?} is not configured")]
    UnknownProvider(String),
    #[error("the identity provider did not answer within {0:?}")]
    TimedOut(Duration),
}

impl From<&IdentityError> for ApiError {
    fn from(e: &IdentityError) -> Self {
        match e {
            IdentityError::SignInAgain => ApiError::Challenge {
                status: axum::http::StatusCode::UNAUTHORIZED,
                challenge: Challenge {
                    error: Some("invalid_token"),
                    description: Some(
                        "the identity provider ended the sign-in; sign in again".into(),
                    ),
                    ..Default::default()
                },
            },
            IdentityError::Provider(ProviderError::Transient(d)) => {
                ApiError::BadGateway(format!("identity provider unavailable: {d}"))
            }
            IdentityError::TimedOut(after) => ApiError::GatewayTimeout(format!(
                "the identity provider did not answer within {} s",
                after.as_secs_f32()
            )),
            IdentityError::Storage(s) => ApiError::Unavailable(s.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// What a federated user's identity provider says about them, as cached: the provider, the
/// context, and a number that changes each time the context is fetched again (so caches
/// derived from it, such as the user's RBAC grants, can key on it).
///
/// A user signed in with several providers (linked by their verified email) has one context
/// per provider: the newest grant's is this one, the others are `linked`, and the mapping
/// rules read all of them ([`Self::identities`]).
#[derive(Debug)]
pub struct FederatedContext {
    pub provider_id: String,
    pub user: UserContext,
    pub generation: u64,
    /// The contexts of the user's newest live grant at each other provider, newest first.
    pub linked: Vec<Arc<FederatedContext>>,
}

impl FederatedContext {
    fn new(provider_id: &str, user: UserContext) -> Arc<Self> {
        Arc::new(Self {
            provider_id: provider_id.to_owned(),
            user,
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            linked: Vec::new(),
        })
    }

    /// The newest grant's context with the others linked; its generation changes whenever
    /// any of theirs does.
    fn combined(mut contexts: Vec<Arc<Self>>) -> Option<Arc<Self>> {
        use std::hash::{Hash, Hasher};
        if contexts.len() <= 1 {
            return contexts.pop();
        }
        let newest = contexts.remove(0);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        newest.generation.hash(&mut h);
        for c in &contexts {
            c.generation.hash(&mut h);
        }
        Some(Arc::new(Self {
            provider_id: newest.provider_id.clone(),
            user: newest.user.clone(),
            generation: h.finish(),
            linked: contexts,
        }))
    }

    /// What the RBAC mapping rules read: this provider's facts and every linked one's.
    pub fn identities(&self) -> Vec<mcpgate_rbac::Identity<'_>> {
        std::iter::once(self)
            .chain(self.linked.iter().map(|c| &**c))
            .map(|c| mcpgate_rbac::Identity {
                provider: &c.provider_id,
                user: &c.user,
            })
            .collect()
    }
}

/// Live grants read per user (one per provider counts; older ones at the same provider are
/// skipped).
const MAX_LIVE_GRANTS: i64 = 50;

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A grant as read, with its access token opened.
#[derive(Debug, Clone)]
pub struct GrantSnapshot {
    pub id: String,
    pub user_id: String,
    pub version: i64,
    pub provider_id: String,
    pub access_token: SecretString,
    pub expires_at: Option<i64>,
    pub has_refresh_token: bool,
}

/// Cheap to clone: one shared state (a refresh task holds a clone).
#[derive(Clone)]
pub struct IdentityService {
    inner: Arc<Inner>,
}

impl std::ops::Deref for IdentityService {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

pub struct Inner {
    store: Store,
    providers: Arc<Registry>,
    secret_box: Arc<SecretBox>,
    contexts: moka::future::Cache<String, Arc<FederatedContext>>,
    /// The user's newest live grant at each provider, newest first.
    grant_of_user: moka::future::Cache<String, Arc<[String]>>,
    refreshing: moka::future::Cache<(String, i64), Arc<GrantSnapshot>>,
    /// This process's name in refresh leases.
    owner: String,
    skew_ms: i64,
    lease_ttl: Duration,
    /// mcpgate's own token checks: a dead grant ends the user's mcpgate tokens too.
    tokens: Arc<crate::oauth::validate::TokenValidator>,
    /// How long a request waits for the provider (see `auth.provider_timeout_secs`).
    timeout: Duration,
}

/// Where a grant's sealed columns live (the AAD binds each to its row).
pub fn place<'a>(column: &'a str, grant_id: &'a str) -> Place<'a> {
    Place::new("provider_grants", column, grant_id)
}

impl IdentityService {
    pub fn new(
        store: Store,
        providers: Arc<Registry>,
        secret_box: Arc<SecretBox>,
        context_ttl: Duration,
        skew: Duration,
        timeout: Duration,
        tokens: Arc<crate::oauth::validate::TokenValidator>,
    ) -> Self {
        let inner = Inner {
            store,
            providers,
            secret_box,
            contexts: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(context_ttl)
                .build(),
            grant_of_user: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            refreshing: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            owner: format!("mcpgate-{}", mcpgate_storage::new_id()),
            skew_ms: i64::try_from(skew.as_millis()).unwrap_or(30_000),
            lease_ttl: Duration::from_secs(30),
            tokens,
            timeout,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    pub fn secret_box(&self) -> &SecretBox {
        &self.secret_box
    }

    fn provider(&self, id: &str) -> Result<&Arc<dyn IdentityProvider>, IdentityError> {
        self.providers
            .get(id)
            .ok_or_else(|| IdentityError::UnknownProvider(id.to_owned()))
    }

    /// The user's identity-provider context, or `None` for local accounts; waits for the
    /// provider at most `auth.provider_timeout_secs`.
    pub async fn context_for_user(
        &self,
        user_id: &str,
    ) -> Result<Option<Arc<FederatedContext>>, Arc<IdentityError>> {
        tokio::time::timeout(self.timeout, self.context_for_user_untimed(user_id))
            .await
            .unwrap_or_else(|_| Err(Arc::new(IdentityError::TimedOut(self.timeout))))
    }

    async fn context_for_user_untimed(
        &self,
        user_id: &str,
    ) -> Result<Option<Arc<FederatedContext>>, Arc<IdentityError>> {
        let store = self.store.clone();
        let uid = user_id.to_owned();
        let grants = self
            .grant_of_user
            .try_get_with(uid.clone(), async move {
                let live = store.live_grants(&uid, MAX_LIVE_GRANTS).await?;
                let mut seen = std::collections::HashSet::new();
                let newest_per_provider: Arc<[String]> = live
                    .into_iter()
                    .filter(|g| seen.insert(g.provider_id.clone()))
                    .map(|g| g.id)
                    .collect();
                Ok::<_, IdentityError>(newest_per_provider)
            })
            .await?;
        // Every provider's facts count for the mapping rules, not only the last sign-in's.
        let mut contexts = Vec::with_capacity(grants.len());
        for grant_id in grants.iter() {
            contexts.push(self.context(grant_id).await?);
        }
        Ok(FederatedContext::combined(contexts))
    }

    /// The context of one grant: cached, loaded once for all concurrent callers.
    pub async fn context(
        &self,
        grant_id: &str,
    ) -> Result<Arc<FederatedContext>, Arc<IdentityError>> {
        let result = self
            .contexts
            .try_get_with(grant_id.to_owned(), self.load_context(grant_id))
            .await;
        if let Err(e) = &result
            && matches!(**e, IdentityError::SignInAgain)
        {
            self.forget_grant(grant_id).await;
        }
        result
    }

    async fn load_context(&self, grant_id: &str) -> Result<Arc<FederatedContext>, IdentityError> {
        let snapshot = self.current(grant_id).await?;
        let provider = self.provider(&snapshot.provider_id)?;
        let federated = |user| FederatedContext::new(&snapshot.provider_id, user);
        match provider.user_info(&snapshot.access_token).await {
            Ok(context) => Ok(federated(context)),
            // The provider refused a token we thought good: refresh once and retry once.
            Err(ProviderError::Unauthorized(_)) if snapshot.has_refresh_token => {
                let fresh = self.refresh(&snapshot.id, snapshot.version).await?;
                match provider.user_info(&fresh.access_token).await {
                    Ok(context) => Ok(federated(context)),
                    Err(ProviderError::Unauthorized(_) | ProviderError::InvalidGrant(_)) => {
                        Err(self.end_grant(&snapshot.id, &snapshot.user_id).await)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(ProviderError::Unauthorized(_) | ProviderError::InvalidGrant(_)) => {
                Err(self.end_grant(&snapshot.id, &snapshot.user_id).await)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The user's current provider access token (refreshed when due), for upstreams that
    /// need it. `None` for local accounts. Waits for the provider at most
    /// `auth.provider_timeout_secs`.
    pub async fn provider_token(
        &self,
        user_id: &str,
    ) -> Result<Option<SecretString>, IdentityError> {
        self.provider_token_at(user_id, None).await
    }

    /// [`Self::provider_token`] of the user's grant at one provider (`None`: the newest
    /// grant at any): what an upstream of that provider gets as the user's own credential.
    pub async fn provider_token_at(
        &self,
        user_id: &str,
        provider_id: Option<&str>,
    ) -> Result<Option<SecretString>, IdentityError> {
        let token = async {
            let grant = match provider_id {
                Some(p) => self.store.latest_live_grant_at(user_id, p).await?,
                None => self.store.latest_live_grant(user_id).await?,
            };
            let Some(grant) = grant else {
                return Ok(None);
            };
            Ok(Some(self.current(&grant.id).await?.access_token))
        };
        tokio::time::timeout(self.timeout, token)
            .await
            .unwrap_or(Err(IdentityError::TimedOut(self.timeout)))
    }

    /// Reads a grant and refreshes it first when its access token is about to expire.
    pub async fn current(&self, grant_id: &str) -> Result<GrantSnapshot, IdentityError> {
        let grant = self.store.get_grant(grant_id).await.map_err(|e| match e {
            StorageError::NotFound => IdentityError::SignInAgain,
            other => other.into(),
        })?;
        let snapshot = self.open(&grant)?;
        let due = snapshot
            .expires_at
            .is_some_and(|at| at.saturating_sub(self.skew_ms) <= mcpgate_storage::now_ms());
        if due && snapshot.has_refresh_token {
            return self.refresh(grant_id, snapshot.version).await;
        }
        Ok(snapshot)
    }

    fn open(&self, grant: &ProviderGrant) -> Result<GrantSnapshot, IdentityError> {
        if grant.dead_at.is_some() {
            return Err(IdentityError::SignInAgain);
        }
        let access = self
            .secret_box
            .open(&grant.access_token, &place("access_token", &grant.id))
            .map_err(|e| IdentityError::Sealed(e.to_string()))?;
        Ok(GrantSnapshot {
            id: grant.id.clone(),
            user_id: grant.user_id.clone(),
            version: grant.version,
            provider_id: grant.provider_id.clone(),
            access_token: SecretString::new(String::from_utf8_lossy(&access).into_owned()),
            expires_at: grant.expires_at,
            has_refresh_token: grant.refresh_token.is_some(),
        })
    }

    /// The provider ended the sign-in: the grant is dead, and so are the user's mcpgate
    /// tokens and sessions, so every MCP client of theirs signs in again (a federated user
    /// must not go on as if they were a local account, without the roles their provider's
    /// claims gave or took). Returns the error to answer with.
    pub async fn end_grant(&self, grant_id: &str, user_id: &str) -> IdentityError {
        tracing::info!(grant.id = %grant_id, user.id = %user_id, "the identity provider ended the sign-in");
        if let Err(e) = self.store.mark_grant_dead(grant_id).await {
            return e.into();
        }
        if let Err(e) = self.store.revoke_user_credentials(user_id, None).await {
            return e.into();
        }
        self.tokens.invalidate_user(user_id).await;
        self.forget_grant(grant_id).await;
        IdentityError::SignInAgain
    }

    /// Drops what this process cached about a grant (after it died or was replaced).
    pub async fn forget_grant(&self, grant_id: &str) {
        self.contexts.invalidate(grant_id).await;
        self.grant_of_user.invalidate_all();
    }

    /// Caches what the provider said about a grant's user at sign-in.
    pub async fn remember(&self, grant_id: &str, provider_id: &str, user: UserContext) {
        let context = FederatedContext::new(provider_id, user);
        self.contexts.insert(grant_id.to_owned(), context).await;
    }

    /// After a new sign-in: the user's grant changed.
    pub async fn forget_user(&self, user_id: &str) {
        self.grant_of_user.invalidate(user_id).await;
    }
}

impl From<Arc<IdentityError>> for ApiError {
    fn from(e: Arc<IdentityError>) -> Self {
        ApiError::from(&*e)
    }
}

/// The identity service as the credential kinds see it: a user's own access token at one
/// provider (`login_token`, and token exchange of it), refreshed when due.
pub struct ProviderTokens(pub Arc<IdentityService>);

#[async_trait::async_trait]
impl mcpgate_credentials::ProviderTokens for ProviderTokens {
    async fn provider_token(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<SecretString>, mcpgate_credentials::CredentialError> {
        self.0
            .provider_token_at(user_id, Some(provider))
            .await
            .map_err(|e| match e {
                IdentityError::TimedOut(after) => mcpgate_credentials::CredentialError::Timeout {
                    upstream: format!("identity provider {provider}"),
                    after,
                },
                // A grant the provider ended: the user must sign in with it again.
                IdentityError::SignInAgain => mcpgate_credentials::CredentialError::NotConnected {
                    provider: provider.to_owned(),
                },
                other => mcpgate_credentials::CredentialError::Unavailable {
                    upstream: format!("identity provider {provider}"),
                    reason: other.to_string(),
                },
            })
    }
}
