//! Where `aws_sigv4` gets its credentials: static keys, the process environment, a profile of
//! the shared AWS files, or STS `AssumeRole` over any of these. Each is an `aws-credential-types`
//! provider that the background resolver in `aws_sigv4` calls; none runs on the request path.
//!
//! aws-config is used without its default chain (which would probe the instance metadata
//! service) and without its default HTTPS client (aws-lc): STS calls go through an
//! `aws-smithy-http-client` on rustls with ring, like the rest of the workspace.

use std::fmt;
use std::sync::Arc;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::SystemTimeSource;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use mcpgate_core::FieldError;
use tokio::sync::OnceCell;

use crate::config::{AwsCredentialsSource, load_secret};

/// The provider for `source`, signing STS calls (if any) for `region`.
pub(crate) fn provider(
    source: &AwsCredentialsSource,
    region: &str,
    path: &str,
) -> Result<SharedCredentialsProvider, Vec<FieldError>> {
    let https_client = || {
        aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https()
    };
    Ok(match source {
        AwsCredentialsSource::Env => SharedCredentialsProvider::new(EnvCredentials),
        AwsCredentialsSource::Static {
            access_key_id,
            secret_access_key,
            secret_access_key_file,
            secret_access_key_env,
        } => {
            let secret = load_secret(
                path,
                ("secret_access_key", secret_access_key.as_ref()),
                ("secret_access_key_file", secret_access_key_file.as_deref()),
                ("secret_access_key_env", secret_access_key_env.as_deref()),
            )
            .map_err(|e| vec![e])?;
            SharedCredentialsProvider::new(Credentials::new(
                access_key_id,
                secret.expose(),
                None,
                None,
                "mcpgate-static",
            ))
        }
        AwsCredentialsSource::Profile {
            profile,
            credentials_file,
            config_file,
        } => {
            let mut files = EnvConfigFiles::builder();
            files = match credentials_file {
                Some(f) => files.with_file(EnvConfigFileKind::Credentials, f),
                None => files.include_default_credentials_file(true),
            };
            files = match config_file {
                Some(f) => files.with_file(EnvConfigFileKind::Config, f),
                None => files.include_default_config_file(true),
            };
            let config = ProviderConfig::empty()
                .with_http_client(https_client())
                .with_sleep_impl(TokioSleep::new())
                .with_time_source(SystemTimeSource::new())
                .with_region(Some(Region::new(region.to_owned())))
                .with_behavior_version(Some(BehaviorVersion::latest()));
            SharedCredentialsProvider::new(
                ProfileFileCredentialsProvider::builder()
                    .configure(&config)
                    .profile_name(profile)
                    .profile_files(files.build())
                    .build(),
            )
        }
        AwsCredentialsSource::AssumeRole {
            role_arn,
            session_name,
            external_id,
            duration_secs,
            sts_endpoint,
            base,
        } => {
            let base = provider(base, region, &format!("{path}.base"))?;
            let mut sdk = SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(region.to_owned()))
                .http_client(https_client())
                .sleep_impl(TokioSleep::new())
                .time_source(SystemTimeSource::new());
            if let Some(url) = sts_endpoint {
                sdk = sdk.endpoint_url(url.as_str().trim_end_matches('/'));
            }
            let mut builder = AssumeRoleProvider::builder(role_arn)
                .session_name(session_name.as_deref().unwrap_or("mcpgate"))
                .configure(&sdk.build());
            if let Some(id) = external_id {
                builder = builder.external_id(id);
            }
            if let Some(secs) = duration_secs {
                builder = builder.session_length(std::time::Duration::from_secs(*secs));
            }
            SharedCredentialsProvider::new(AssumeRole {
                role_arn: role_arn.clone(),
                pending: std::sync::Mutex::new(Some((builder, base))),
                built: OnceCell::new(),
            })
        }
    })
}

type PendingRole = (
    aws_config::sts::AssumeRoleProviderBuilder,
    SharedCredentialsProvider,
);

/// `AssumeRoleProvider` is built by an async function; building it on first use keeps
/// `crate::build` synchronous. The resolver task is its only caller.
struct AssumeRole {
    role_arn: String,
    pending: std::sync::Mutex<Option<PendingRole>>,
    built: OnceCell<Arc<AssumeRoleProvider>>,
}

impl fmt::Debug for AssumeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRole")
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl ProvideCredentials for AssumeRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let provider = self
                .built
                .get_or_try_init(|| async {
                    let pending = self
                        .pending
                        .lock()
                        .map_err(|_| CredentialsError::not_loaded("assume-role state poisoned"))?
                        .take();
                    let (builder, base) = pending.ok_or_else(|| {
                        CredentialsError::not_loaded("assume-role provider already consumed")
                    })?;
                    Ok::<_, CredentialsError>(Arc::new(builder.build_from_provider(base).await))
                })
                .await?;
            provider.provide_credentials().await
        })
    }
}

/// `source = "env"`: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional
/// `AWS_SESSION_TOKEN` of mcpgate's process.
#[derive(Debug)]
pub(crate) struct EnvCredentials;

impl ProvideCredentials for EnvCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        future::ProvideCredentials::ready(
            match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => Ok(Credentials::new(
                    id,
                    secret,
                    var("AWS_SESSION_TOKEN"),
                    None,
                    "mcpgate-env",
                )),
                _ => Err(CredentialsError::not_loaded(
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set",
                )),
            },
        )
    }
}
