//! The runtime contract: [`CredentialSource`] (one per upstream, built from its config) and the
//! two traits through which the server lends what this crate must not own (the database and
//! the identity service).

use std::fmt;

use async_trait::async_trait;
use mcpgate_core::SecretString;

use crate::{Caller, CredentialError, CredentialSnapshot, OutgoingRequest};

/// Turns (user, request) into the credential for one upstream. Built once per upstream by
/// [`crate::build`]; cheap to share behind an `Arc`.
#[async_trait]
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The credential for this user's request. Never blocks on a slow network call for longer
    /// than the timeout configured for the kind.
    async fn resolve(
        &self,
        caller: &Caller<'_>,
        request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError>;
}

/// The user's own access token at an identity provider. The server implements it over
/// `IdentityService::provider_token` (which refreshes the grant when due, one refresh per
/// grant across replicas).
#[async_trait]
pub trait ProviderTokens: Send + Sync {
    /// `Ok(None)`: the user has no live grant at `provider` (they must sign in with it).
    async fn provider_token(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<SecretString>, CredentialError>;
}

/// Static secrets set through the admin API and stored sealed; the server opens them with its
/// `SecretBox` (AAD = table/column/row) and should cache the opened value.
#[async_trait]
pub trait SealedSecrets: Send + Sync {
    /// `Ok(None)`: no secret has been set for this upstream yet.
    async fn upstream_secret(
        &self,
        upstream: &str,
    ) -> Result<Option<SecretString>, CredentialError>;
}

/// Several kinds on one upstream (e.g. `identity_assertion` + `aws_sigv4`). Header kinds run
/// first; a signing kind runs last and signs the request with their headers on it.
#[derive(Debug)]
pub(crate) struct Combined {
    pub(crate) headers: Vec<Box<dyn CredentialSource>>,
    pub(crate) signer: Option<Box<dyn CredentialSource>>,
}

#[async_trait]
impl CredentialSource for Combined {
    async fn resolve(
        &self,
        caller: &Caller<'_>,
        request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let mut snapshot = CredentialSnapshot::empty();
        for source in &self.headers {
            snapshot = snapshot.merge(source.resolve(caller, request).await?);
        }
        let Some(signer) = &self.signer else {
            return Ok(snapshot);
        };
        if snapshot.is_empty() {
            return signer.resolve(caller, request).await;
        }
        let mut headers = request.headers.clone();
        for (name, value) in snapshot.headers() {
            headers.insert(name.clone(), value.clone());
        }
        let signed = OutgoingRequest {
            headers: &headers,
            ..*request
        };
        let signature = signer.resolve(caller, &signed).await?;
        Ok(snapshot.merge(signature))
    }
}

/// Kind `none`: nothing is added.
#[derive(Debug)]
pub(crate) struct NoCredentials;

#[async_trait]
impl CredentialSource for NoCredentials {
    async fn resolve(
        &self,
        _caller: &Caller<'_>,
        _request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        Ok(CredentialSnapshot::empty())
    }
}
