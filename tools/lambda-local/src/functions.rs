//! The served functions by name, with the account-wide settings the APIs share.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::pool::Pool;

/// Lambda's synchronous payload limit (request and response), 6 MB.
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Lambda's asynchronous (`Event`) request limit, 256 KB.
pub const MAX_EVENT_PAYLOAD: usize = 256 * 1024;

/// Everything the Invoke API and the HTTP front need.
#[derive(Debug)]
pub(crate) struct Functions {
    pub(crate) pools: HashMap<String, Pool>,
    pub(crate) region: String,
    pub(crate) account_id: String,
    pub(crate) dlq_dir: Option<PathBuf>,
    pub(crate) async_retries: u32,
    pub(crate) async_retry_delay: Duration,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Functions {
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub(crate) fn arn(&self, name: &str) -> String {
        function_arn(&self.region, &self.account_id, name)
    }
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
pub(crate) fn function_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account_id}:function:{name}")
}
