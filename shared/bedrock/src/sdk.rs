//! The AWS SDK configuration every client in the project starts from.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The HTTPS client for the SDK clients: hyper and rustls with the `ring` crypto
/// provider, which keeps a function's bootstrap well under the SDK default (`aws-lc`).
pub fn https_client() -> SharedHttpClient {
    Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Loads the standard AWS configuration chain (environment, profile, container and
/// instance credentials, `AWS_ENDPOINT_URL_*` overrides) with [`https_client`].
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}
