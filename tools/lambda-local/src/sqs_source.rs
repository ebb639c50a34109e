//! An SQS event source mapping's settings, with Lambda's defaults and limits for standard
//! queues.

use std::ops::RangeInclusive;
use std::time::Duration;

/// Lambda's default batch size for SQS.
pub const DEFAULT_SQS_BATCH_SIZE: u32 = 10;
/// Lambda's batch sizes for standard queues (above 10 a batching window of 1 s or more is
/// required).
pub const SQS_BATCH_SIZES: RangeInclusive<u32> = 1..=10_000;
/// Lambda's longest `MaximumBatchingWindowInSeconds`.
pub const MAX_SQS_BATCHING_WINDOW: Duration = Duration::from_secs(300);
/// Lambda's range for `ScalingConfig.MaximumConcurrency`.
pub const SQS_MAXIMUM_CONCURRENCY: RangeInclusive<u32> = 2..=1000;

/// An SQS queue consumed by a function, as an event source mapping does it: batches of up
/// to `batch_size` messages, gathered for up to `batching_window`, invoked synchronously,
/// deleted when the function succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsSource {
    /// The function invoked.
    pub function: String,
    /// The queue's URL, `http(s)://HOST/ACCOUNT/NAME`.
    pub queue_url: String,
    /// `BatchSize`: most messages per invocation (default 10).
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds`: how long a batch gathers messages before the
    /// invocation (default 0: what the first receive returned).
    pub batching_window: Duration,
    /// `ScalingConfig.MaximumConcurrency`: most invocations in flight (none: the function's
    /// workers are the only bound).
    pub maximum_concurrency: Option<u32>,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`: the function's
    /// `batchItemFailures` name the messages to keep; the others are deleted.
    pub report_batch_item_failures: bool,
}

impl SqsSource {
    /// A mapping with Lambda's defaults: batches of 10, no window, no concurrency cap,
    /// whole-batch success or failure.
    pub fn new(function: impl Into<String>, queue_url: impl Into<String>) -> Self {
        Self {
            function: function.into(),
            queue_url: queue_url.into(),
            batch_size: DEFAULT_SQS_BATCH_SIZE,
            batching_window: Duration::ZERO,
            maximum_concurrency: None,
            report_batch_item_failures: false,
        }
    }

    /// Sets the batch size.
    #[must_use]
    pub fn batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets the batching window.
    #[must_use]
    pub fn batching_window(mut self, window: Duration) -> Self {
        self.batching_window = window;
        self
    }

    /// Sets the maximum concurrency.
    #[must_use]
    pub fn maximum_concurrency(mut self, maximum: u32) -> Self {
        self.maximum_concurrency = Some(maximum);
        self
    }

    /// Turns `ReportBatchItemFailures` on or off.
    #[must_use]
    pub fn report_batch_item_failures(mut self, on: bool) -> Self {
        self.report_batch_item_failures = on;
        self
    }

    /// Checks the settings against Lambda's limits and the queue URL's shape.
    pub(crate) fn check(&self) -> Result<(), String> {
        QueueUrl::parse(&self.queue_url)?;
        if !SQS_BATCH_SIZES.contains(&self.batch_size) {
            return Err("the batch size must be 1 to 10000".to_owned());
        }
        if self.batching_window > MAX_SQS_BATCHING_WINDOW
            || self.batching_window.subsec_nanos() != 0
        {
            return Err("the batching window must be whole seconds, 0 to 300".to_owned());
        }
        if self.batch_size > 10 && self.batching_window < Duration::from_secs(1) {
            return Err("a batch size over 10 needs a batching window of 1 s or more".to_owned());
        }
        if let Some(maximum) = self.maximum_concurrency
            && !SQS_MAXIMUM_CONCURRENCY.contains(&maximum)
        {
            return Err("the maximum concurrency must be 2 to 1000".to_owned());
        }
        Ok(())
    }
}

/// A queue URL's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueUrl {
    /// `scheme://host[:port]`, the endpoint when none is configured.
    pub(crate) origin: String,
    /// The region named by an AWS host (`sqs.REGION.amazonaws.com`), if any.
    pub(crate) region: Option<String>,
    /// The owner's account id.
    pub(crate) account: String,
    /// The queue name.
    pub(crate) name: String,
}

impl QueueUrl {
    /// Parses `http(s)://HOST/ACCOUNT/NAME`.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let invalid = || format!("`{url}` is not a queue URL (http(s)://HOST/ACCOUNT/NAME)");
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        if scheme != "http" && scheme != "https" {
            return Err(invalid());
        }
        let mut parts = rest.trim_end_matches('/').split('/');
        let (Some(host), Some(account), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let valid_name = |text: &str| {
            !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        };
        if host.is_empty() || !valid_name(account) || !valid_name(name) {
            return Err(invalid());
        }
        let hostname = host.split(':').next().unwrap_or(host);
        let region = hostname
            .strip_prefix("sqs.")
            .and_then(|rest| rest.split_once('.'))
            .filter(|(_, domain)| domain.starts_with("amazonaws."))
            .map(|(region, _)| region.to_owned());
        Ok(Self {
            origin: format!("{scheme}://{host}"),
            region,
            account: account.to_owned(),
            name: name.to_owned(),
        })
    }

    /// `arn:aws:sqs:REGION:ACCOUNT:NAME`.
    pub(crate) fn arn(&self, region: &str) -> String {
        format!("arn:aws:sqs:{region}:{}:{}", self.account, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_queue_urls() {
        let local = QueueUrl::parse("http://127.0.0.1:5000/123456789012/uploads").expect("ok");
        assert_eq!(local.origin, "http://127.0.0.1:5000");
        assert_eq!(local.region, None);
        assert_eq!(
            local.arn("us-east-1"),
            "arn:aws:sqs:us-east-1:123456789012:uploads"
        );
        let aws =
            QueueUrl::parse("https://sqs.eu-west-1.amazonaws.com/111122223333/q.fifo").expect("ok");
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(aws.name, "q.fifo");
        for bad in [
            "uploads",
            "ftp://h/1/q",
            "http://h/q",
            "http://h/1/q/extra",
            "http:///1/q",
            "http://h/1/q?x=1",
        ] {
            assert!(QueueUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn checks_lambdas_limits() {
        let url = "http://127.0.0.1:5000/123456789012/uploads";
        let ok = SqsSource::new("f", url);
        assert!(ok.check().is_ok());
        assert!(
            ok.clone()
                .batch_size(100)
                .batching_window(Duration::from_secs(1))
                .maximum_concurrency(2)
                .check()
                .is_ok()
        );
        for bad in [
            ok.clone().batch_size(0),
            ok.clone().batch_size(11),
            ok.clone()
                .batch_size(10_001)
                .batching_window(Duration::from_secs(5)),
            ok.clone().batching_window(Duration::from_secs(301)),
            ok.clone().batching_window(Duration::from_millis(1500)),
            ok.clone().maximum_concurrency(1),
            ok.clone().maximum_concurrency(1001),
            SqsSource::new("f", "not a url"),
        ] {
            assert!(bad.check().is_err(), "{bad:?} accepted");
        }
    }
}
