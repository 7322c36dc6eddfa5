//! Kind `static`: one header with a fixed value, read once at start-up from a file or the
//! environment, or opened per request from the sealed store the server lends.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderName, HeaderValue};

use crate::{
    Caller, CredentialError, CredentialSnapshot, CredentialSource, OutgoingRequest, SealedSecrets,
};

pub(crate) enum StaticValue {
    /// Loaded at build time, marked sensitive.
    Loaded(HeaderValue),
    /// Set through the admin API; the server opens it (and may cache the opened value).
    Sealed(Arc<dyn SealedSecrets>),
}

pub(crate) struct StaticHeader {
    pub(crate) upstream: String,
    pub(crate) header: HeaderName,
    pub(crate) value: StaticValue,
}

impl fmt::Debug for StaticHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.value {
            StaticValue::Loaded(_) => "config",
            StaticValue::Sealed(_) => "sealed",
        };
        f.debug_struct("StaticHeader")
            .field("upstream", &self.upstream)
            .field("header", &self.header)
            .field("from", &from)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CredentialSource for StaticHeader {
    async fn resolve(
        &self,
        _caller: &Caller<'_>,
        _request: &OutgoingRequest<'_>,
    ) -> Result<CredentialSnapshot, CredentialError> {
        let value = match &self.value {
            StaticValue::Loaded(v) => v.clone(),
            StaticValue::Sealed(store) => {
                let secret = store
                    .upstream_secret(&self.upstream)
                    .await?
                    .ok_or_else(|| {
                        CredentialError::unavailable(
                            &self.upstream,
                            "no secret has been set for this upstream",
                        )
                    })?;
                HeaderValue::from_str(secret.expose()).map_err(|_| {
                    CredentialError::unavailable(
                        &self.upstream,
                        "the stored secret is not a valid header value",
                    )
                })?
            }
        };
        Ok(CredentialSnapshot::empty().with_header(self.header.clone(), value))
    }
}
