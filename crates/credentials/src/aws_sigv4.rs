//! Kind `aws_sigv4` (Cargo feature `aws-sigv4`): AWS Signature Version 4 over the method, URL,
//! headers and the buffered body's SHA-256, computed by `aws-sigv4`.
//!
//! The seed report on an AWS proxy: credential resolution blocked the event loop and refreshes
//! raced. Here the credentials are resolved by one background task per upstream, which
//! refreshes them `refresh_before_secs` before they expire and publishes them on a `watch`
//! channel; the request path only reads the current value and never waits for a resolution.
//! One task, one resolution at a time: refreshes cannot race.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderName, HeaderValue};
use tokio::sync::watch;

use crate::{Caller, CredentialError, CredentialSnapshot, CredentialSource, OutgoingRequest};

/// First retry delay after a failed resolution; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A SigV4 signer for one upstream, with its background credential resolver.
pub struct AwsSigner {
    upstream: String,
    service: String,
    region: String,
    current: watch::Receiver<Option<Credentials>>,
}

impl fmt::Debug for AwsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Credentials`' own Debug redacts the secret; only the key id is shown here.
        let key_id = self
            .current
            .borrow()
            .as_ref()
            .map(|c| c.access_key_id().to_owned());
        f.debug_struct("AwsSigner")
            .field("upstream", &self.upstream)
            .field("service", &self.service)
            .field("region", &self.region)
            .field("access_key_id", &key_id)
            .finish()
    }
}

impl AwsSigner {
    /// Starts the background resolver and returns at once; outside a tokio runtime it is an
    /// error (there is nothing to run the resolver on). The task ends when the signer is
    /// dropped. `timeout` bounds each resolution.
    pub fn start(
        upstream: &str,
        service: &str,
        region: &str,
        provider: SharedCredentialsProvider,
        refresh_before: Duration,
        timeout: Duration,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "aws_sigv4 must be built inside the tokio runtime".to_owned())?;
        let (tx, rx) = watch::channel(None);
        runtime.spawn(resolve_loop(
            upstream.to_owned(),
            provider,
            tx,
            refresh_before,
            timeout,
        ));
        Ok(Self {
            upstream: upstream.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            current: rx,
        })
    }

    /// Waits until the first credentials are resolved, at most `timeout` (for start-up or a
    /// readiness check; the request path never waits).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.current.clone();
        tokio::time::timeout(timeout, rx.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The access key id in use (for logs and tests; not a secret).
    pub fn access_key_id(&self) -> Option<String> {
        self.current
            .borrow()
            .as_ref()
            .map(|c| c.access_key_id().to_owned())
    }

    /// Signs the request with the current credentials and returns the headers to add
    /// (`authorization`, `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token`).
    pub fn sign(
        &self,
        request: &OutgoingRequest<'_>,
        at: SystemTime,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let Some(credentials) = self.current.borrow().clone() else {
            return Err(CredentialError::unavailable(
                &self.upstream,
                "the AWS credentials are not resolved yet",
            ));
        };
        let identity = credentials.into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(at)
            .settings(settings)
            .build()
            .map_err(|_| CredentialError::unavailable(&self.upstream, "bad SigV4 parameters"))?
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
            .collect();
        let signable = SignableRequest::new(
            request.method.as_str(),
            request.url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(request.body),
        )
        .map_err(|_| CredentialError::unavailable(&self.upstream, "unsignable request"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|_| CredentialError::unavailable(&self.upstream, "SigV4 signing failed"))?
            .into_parts();
        let mut snapshot = CredentialSnapshot::empty();
        for (name, value) in instructions.headers() {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                CredentialError::unavailable(&self.upstream, "bad SigV4 header name")
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                CredentialError::unavailable(&self.upstream, "bad SigV4 header value")
            })?;
            snapshot = snapshot.with_header(name, value);
        }
        Ok(snapshot)
    }
}

#[async_trait]
impl CredentialSource for AwsSigner {
    async fn resolve(
        &self,
        _caller: &Caller<'_>,
        request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        self.sign(request, SystemTime::now())
    }
}

/// Resolves, publishes, sleeps until `refresh_before` ahead of expiry, again; retries failures
/// with backoff, keeping the last good credentials published meanwhile. Ends when every
/// receiver is gone.
async fn resolve_loop(
    upstream: String,
    provider: SharedCredentialsProvider,
    tx: watch::Sender<Option<Credentials>>,
    refresh_before: Duration,
    timeout: Duration,
) {
    let mut retry = FIRST_RETRY;
    loop {
        let wait = match tokio::time::timeout(timeout, provider.provide_credentials()).await {
            Ok(Ok(credentials)) => {
                retry = FIRST_RETRY;
                let expiry = credentials.expiry();
                tracing::debug!(upstream = %upstream, "AWS credentials resolved");
                tx.send_replace(Some(credentials));
                match expiry {
                    // Static and environment credentials do not expire: nothing to refresh.
                    None => return,
                    Some(at) => next_refresh(
                        at.duration_since(SystemTime::now()).unwrap_or_default(),
                        refresh_before,
                    ),
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(upstream = %upstream, error = %e, "AWS credentials not resolved");
                backoff(&mut retry)
            }
            Err(_) => {
                tracing::warn!(upstream = %upstream, "AWS credential resolution timed out");
                backoff(&mut retry)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = tx.closed() => return,
        }
    }
}

/// When to resolve again: `refresh_before` ahead of expiry, or at half the remaining life of
/// credentials that live shorter than that (so short-lived credentials are not resolved in a
/// tight loop); never sooner than one second.
fn next_refresh(remaining: Duration, refresh_before: Duration) -> Duration {
    if remaining > refresh_before {
        remaining - refresh_before
    } else {
        remaining / 2
    }
    .max(FIRST_RETRY)
}

/// The delay before the next attempt, doubling the one after it.
fn backoff(retry: &mut Duration) -> Duration {
    let now = *retry;
    *retry = (now * 2).min(MAX_RETRY);
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_timing() {
        let s = Duration::from_secs;
        assert_eq!(next_refresh(s(3600), s(300)), s(3300));
        // Shorter-lived than the refresh margin: half the remaining life, not every second.
        assert_eq!(next_refresh(s(600), s(900)), s(300));
        assert_eq!(next_refresh(s(0), s(300)), FIRST_RETRY);
        let mut retry = FIRST_RETRY;
        let waits: Vec<u64> = (0..8).map(|_| backoff(&mut retry).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
