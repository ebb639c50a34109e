//! The AWS SDK configuration every client in the project starts from.

pub mod trust;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

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

/// Loads the standard AWS configuration chain (environment, profile, container and
/// instance credentials, `AWS_ENDPOINT_URL_*` overrides) with [`https_client_trusting`] the
/// trust store the environment chooses ([`Trust::from_env`]). Credentials are resolved on
/// the first request, not here.
pub async fn load_config() -> Result<SdkConfig, ::settings::ConfigError> {
    let trust = Trust::from_env()?;
    tracing::debug!(?trust, "HTTPS trust store");
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client_trusting(trust.store()?))
        .load()
        .await)
}
