//! The AWS SDK configuration every client in the project starts from.

pub mod trust;

use std::time::Duration;

use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::identity::IdentityCache;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::ProvideRegion;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_bedrockruntime::config::SharedCredentialsProvider;
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

pub use trust::Trust;

/// The HTTPS client for the SDK clients: hyper and rustls with the `ring` crypto
/// provider, which keeps a function's bootstrap well under the SDK default (`aws-lc`),
/// trusting the embedded Amazon Trust Services roots ([`Trust::Embedded`]).
pub fn https_client() -> SharedHttpClient {
    https_client_trusting(trust::embedded())
}

/// [`https_client`] trusting `trust_store` (see [`Trust::store`]).
pub fn https_client_trusting(trust_store: TrustStore) -> SharedHttpClient {
    let tls = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        // Infallible today: the builder only stores its inputs.
        .unwrap_or_default();
    Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https()
}

/// Loads the SDK configuration from the environment, where Lambda puts it:
///
/// - region: `AWS_REGION`, else `AWS_DEFAULT_REGION`;
/// - credentials, resolved on the first request and cached until they expire:
///   `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` (the execution
///   role's, on Lambda), else the container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`
///   or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`: ECS, EKS Pod Identity);
/// - endpoints: `AWS_ENDPOINT_URL_<SERVICE>` (e.g. `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`), else
///   `AWS_ENDPOINT_URL`; both are ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`;
/// - the SDK's standard retries (3 attempts) and its 3.1 s connect timeout;
/// - HTTPS through [`https_client_trusting`] the trust store the environment chooses
///   ([`Trust::from_env`]).
///
/// Nothing else: no shared config or credentials files (`AWS_PROFILE`, SSO, assume-role,
/// credential processes), web identity or instance metadata. Their code, and the STS client
/// they need, would be most of `aws-config` in every function's binary.
pub async fn load_config() -> Result<SdkConfig, ::settings::ConfigError> {
    let trust = Trust::from_env()?;
    tracing::debug!(?trust, "HTTPS trust store");
    let http_client = https_client_trusting(trust.store()?);
    let container = EcsCredentialsProvider::builder()
        .configure(&ProviderConfig::default().with_http_client(http_client.clone()))
        .build();
    let credentials = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("EcsContainer", container);
    let endpoints = EnvEndpoints::from_env();
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(EnvironmentVariableRegionProvider::new().region().await)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .identity_cache(IdentityCache::lazy().build())
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(SDK_CONNECT_TIMEOUT)
                .build(),
        )
        .http_client(http_client);
    builder.set_endpoint_url(endpoints.global());
    Ok(builder.service_config(endpoints).build())
}

/// The SDK's default connect timeout (`aws-config`'s default chain sets the same).
const SDK_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// Endpoint overrides from the environment: the SDK clients ask it for `AWS_ENDPOINT_URL`
/// with their service id, and get `AWS_ENDPOINT_URL_<SERVICE ID>` (upper case, spaces as
/// underscores) or else `AWS_ENDPOINT_URL`, as `aws-config` resolves them.
#[derive(Debug)]
struct EnvEndpoints {
    var: fn(&str) -> Option<String>,
}

const GLOBAL_ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL";

impl EnvEndpoints {
    fn from_env() -> Self {
        Self::new(|name| std::env::var(name).ok())
    }

    /// Overrides read through `var`; none when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is
    /// `true`.
    fn new(var: fn(&str) -> Option<String>) -> Self {
        let ignore = var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Self {
            var: if ignore { |_| None } else { var },
        }
    }

    fn global(&self) -> Option<String> {
        (self.var)(GLOBAL_ENDPOINT_VAR)
    }
}

impl LoadServiceConfig for EnvEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != GLOBAL_ENDPOINT_VAR {
            return None;
        }
        let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
        (self.var)(&format!("{GLOBAL_ENDPOINT_VAR}_{service}")).or_else(|| self.global())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(endpoints: &EnvEndpoints, service_id: &str) -> Option<String> {
        let key = ServiceConfigKey::builder()
            .service_id(service_id)
            .env(GLOBAL_ENDPOINT_VAR)
            .profile("endpoint_url")
            .build()
            .expect("key");
        endpoints.load_config(key)
    }

    fn local_stack(name: &str) -> Option<String> {
        match name {
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME" => Some("http://127.0.0.1:4001".into()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:4000".into()),
            _ => None,
        }
    }

    #[test]
    fn a_service_override_wins_over_the_global_one() {
        let endpoints = EnvEndpoints::new(local_stack);
        let bedrock = endpoint(&endpoints, "Bedrock Runtime");
        assert_eq!(bedrock.as_deref(), Some("http://127.0.0.1:4001"));
        let s3 = endpoint(&endpoints, "S3");
        assert_eq!(s3.as_deref(), Some("http://127.0.0.1:4000"));
        assert_eq!(endpoints.global().as_deref(), Some("http://127.0.0.1:4000"));
    }

    #[test]
    fn no_override_leaves_the_default_endpoint() {
        let endpoints = EnvEndpoints::new(|_| None);
        assert_eq!(endpoint(&endpoints, "S3"), None);
        assert_eq!(endpoints.global(), None);
    }

    #[test]
    fn overrides_can_be_ignored() {
        fn ignored(name: &str) -> Option<String> {
            match name {
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" => Some("TRUE".into()),
                _ => local_stack(name),
            }
        }
        let endpoints = EnvEndpoints::new(ignored);
        assert_eq!(endpoint(&endpoints, "Bedrock Runtime"), None);
        assert_eq!(endpoints.global(), None);
    }

    #[test]
    fn other_settings_are_not_read_here() {
        let key = ServiceConfigKey::builder()
            .service_id("S3")
            .env("AWS_MAX_ATTEMPTS")
            .profile("max_attempts")
            .build()
            .expect("key");
        assert_eq!(EnvEndpoints::new(local_stack).load_config(key), None);
    }
}
