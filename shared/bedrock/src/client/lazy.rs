//! The Bedrock SDK client, built on its first use: a function that never calls the model
//! (the jobs function) does not build it during its cold start.

use std::ops::Deref;
use std::sync::OnceLock;

use aws_sdk_bedrockruntime::{Client, Config};

/// An SDK client built from its configuration on first use, then kept.
pub(crate) struct LazyClient {
    config: Config,
    client: OnceLock<Client>,
}

impl LazyClient {
    /// The client `config` will build.
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            client: OnceLock::new(),
        }
    }

    /// Whether the client has been built (by a first call).
    #[cfg(test)]
    pub(crate) fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

impl Deref for LazyClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client
            .get_or_init(|| Client::from_conf(self.config.clone()))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region};

    use super::*;

    #[test]
    fn built_on_first_use_then_kept() {
        let config = Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let lazy = LazyClient::new(config);
        assert!(!lazy.is_built());
        let first: *const Client = &*lazy;
        assert!(lazy.is_built());
        assert_eq!(lazy.config().region(), Some(&Region::new("us-east-1")));
        assert!(std::ptr::eq(first, &*lazy));
    }
}
