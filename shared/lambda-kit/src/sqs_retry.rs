//! When the messages of an SQS batch that must come back do come back.
//!
//! Without help a batch item failure waits for the queue's visibility timeout, which AWS
//! wants at six times the function timeout (90 minutes for 900 s). With a [`Requeue`] the
//! kit shortens that after each batch with one `ChangeMessageVisibilityBatch` request per
//! ten messages:
//! - a message that failed comes back after [`RetryBackoff::delay`]: exponential in its
//!   receive count, capped, with jitter, so a throttled backlog spreads out instead of
//!   returning at once;
//! - a message not started (too little of the invocation left) comes back at once
//!   (visibility 0): another consumer takes it.
//!
//! A request that fails changes nothing for the batch: it is logged (ids and the error
//! only) and its messages wait for the queue's own timeout, as without a [`Requeue`].

use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;
use bedrock::Deadline;

/// SQS takes a visibility timeout of at most 12 hours.
pub const MAX_VISIBILITY_SECONDS: u32 = 43_200;

/// ChangeMessageVisibilityBatch takes at most ten entries.
const ENTRIES_PER_REQUEST: usize = 10;

/// Bounded exponential backoff with jitter, in whole seconds (SQS's unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    base_seconds: u32,
    max_seconds: u32,
}

impl RetryBackoff {
    /// Starts at `base_seconds` after a first receive, doubles with each further receive
    /// and never exceeds `max_seconds` (itself at most [`MAX_VISIBILITY_SECONDS`]).
    pub fn new(base_seconds: u32, max_seconds: u32) -> Self {
        let max_seconds = max_seconds.clamp(1, MAX_VISIBILITY_SECONDS);
        Self {
            base_seconds: base_seconds.clamp(1, max_seconds),
            max_seconds,
        }
    }

    /// The upper bound of the delay after receive `receive_count` (1 = the first):
    /// `base * 2^(receive_count - 1)`, at most the maximum.
    pub fn ceiling(&self, receive_count: u32) -> u32 {
        let doublings = receive_count.saturating_sub(1).min(31);
        let grown = u64::from(self.base_seconds) << doublings;
        u32::try_from(grown.min(u64::from(self.max_seconds))).unwrap_or(self.max_seconds)
    }

    /// The delay after receive `receive_count`, for `jitter` in `[0, 1)`: "equal jitter",
    /// between half the [`ceiling`](Self::ceiling) (rounded up) and the ceiling, so that a
    /// failed message never comes back at once and messages that failed together spread
    /// over the second half.
    pub fn delay(&self, receive_count: u32, jitter: f64) -> u32 {
        let ceiling = self.ceiling(receive_count);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = f64::from(ceiling) / 2.0;
        // At most `ceiling`, so the conversion cannot overflow.
        let seconds = (half + half * jitter).ceil() as u32;
        seconds.clamp(1, ceiling)
    }
}

/// Why a message of a batch must come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Return {
    /// It was handled and failed (or its body is not a notification).
    Failed,
    /// It was left unstarted: too little of the invocation was left.
    NotStarted,
}

/// A message the batch answer lists as a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unfinished {
    /// The SQS message id.
    pub(crate) id: String,
    /// The handle of this receive; without one the visibility cannot be changed.
    pub(crate) receipt_handle: Option<String>,
    /// `ApproximateReceiveCount` (`None`: unknown, taken as a first receive).
    pub(crate) receive_count: Option<u32>,
    /// Why it comes back.
    pub(crate) why: Return,
}

/// One visibility change: the message `id` (its receipt handle) becomes visible again
/// after `seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VisibilityChange {
    pub(crate) id: String,
    pub(crate) receipt_handle: String,
    pub(crate) seconds: u32,
}

/// Brings the batch item failures of one queue back sooner than its visibility timeout
/// (see the module documentation). The SQS client is built on the first batch with a
/// failure, not at cold start.
#[derive(Debug, Clone)]
pub struct Requeue {
    queue_url: String,
    backoff: RetryBackoff,
    sdk: SdkConfig,
    client: Arc<OnceLock<aws_sdk_sqs::Client>>,
}

impl Requeue {
    /// Changes visibilities on the queue at `queue_url` (the one the function's event
    /// source mapping reads) with clients over `sdk`.
    pub fn new(sdk: &SdkConfig, queue_url: impl Into<String>, backoff: RetryBackoff) -> Self {
        Self {
            queue_url: queue_url.into(),
            backoff,
            sdk: sdk.clone(),
            client: Arc::new(OnceLock::new()),
        }
    }

    /// The visibility each unfinished message gets, `jitter` drawing a number in `[0, 1)`
    /// per failed message. Messages without a receipt handle are left out.
    pub(crate) fn changes(
        &self,
        unfinished: &[Unfinished],
        mut jitter: impl FnMut() -> f64,
    ) -> Vec<VisibilityChange> {
        unfinished
            .iter()
            .filter_map(|message| {
                let receipt_handle = message.receipt_handle.clone()?;
                let seconds = match message.why {
                    Return::NotStarted => 0,
                    Return::Failed => self
                        .backoff
                        .delay(message.receive_count.unwrap_or(1), jitter()),
                };
                Some(VisibilityChange {
                    id: message.id.clone(),
                    receipt_handle,
                    seconds,
                })
            })
            .collect()
    }

    /// Sends the changes for `unfinished`, within `deadline`. Never fails: what cannot be
    /// changed is logged and waits for the queue's visibility timeout.
    pub(crate) async fn apply(&self, unfinished: &[Unfinished], deadline: Deadline) {
        let changes = self.changes(unfinished, rand::random::<f64>);
        if changes.is_empty() {
            return;
        }
        let client = self
            .client
            .get_or_init(|| aws_sdk_sqs::Client::new(&self.sdk));
        for chunk in changes.chunks(ENTRIES_PER_REQUEST) {
            let remaining = deadline.remaining();
            match tokio::time::timeout(remaining, self.send(client, chunk)).await {
                Ok(()) => {}
                Err(_) => {
                    tracing::warn!(
                        messages = chunk.len(),
                        "visibility change not confirmed before the deadline; unchanged messages wait for the queue's visibility timeout"
                    );
                }
            }
        }
    }

    async fn send(&self, client: &aws_sdk_sqs::Client, chunk: &[VisibilityChange]) {
        let mut request = client
            .change_message_visibility_batch()
            .queue_url(&self.queue_url);
        for (n, change) in chunk.iter().enumerate() {
            let entry = ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(format!("m{n}"))
                .receipt_handle(&change.receipt_handle)
                .visibility_timeout(i32::try_from(change.seconds).unwrap_or(i32::MAX))
                .build();
            match entry {
                Ok(entry) => request = request.entries(entry),
                Err(e) => {
                    tracing::warn!(message_id = change.id, error = %e, "visibility entry not built")
                }
            }
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(e) => {
                let ids: Vec<&str> = chunk.iter().map(|c| c.id.as_str()).collect();
                tracing::warn!(
                    message_ids = ?ids,
                    error = %aws_sdk_sqs::error::DisplayErrorContext(&e),
                    "visibility not changed; the messages wait for the queue's visibility timeout"
                );
                return;
            }
        };
        let entry_of = |entry_id: &str| {
            entry_id
                .strip_prefix('m')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| chunk.get(n))
        };
        for failed in output.failed() {
            let change = entry_of(failed.id());
            tracing::warn!(
                message_id = change.map(|c| c.id.as_str()),
                code = failed.code(),
                reason = failed.message(),
                "visibility not changed; the message waits for the queue's visibility timeout"
            );
        }
        for done in output.successful() {
            if let Some(change) = entry_of(done.id()) {
                tracing::info!(
                    message_id = change.id,
                    visible_in_seconds = change.seconds,
                    "message comes back"
                );
            }
        }
    }
}

/// The backoff from a function's settings (read at cold start), each checked under its
/// variable's name: the maximum 1 to [`MAX_VISIBILITY_SECONDS`], the base 1 to the maximum.
pub fn check_backoff(
    base_variable: &'static str,
    base_seconds: u32,
    max_variable: &'static str,
    max_seconds: u32,
) -> Result<RetryBackoff, settings::ConfigError> {
    settings::in_range(max_variable, max_seconds, 1, MAX_VISIBILITY_SECONDS)?;
    settings::in_range(base_variable, base_seconds, 1, max_seconds)?;
    Ok(RetryBackoff::new(base_seconds, max_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_per_receive_up_to_the_cap() {
        let b = RetryBackoff::new(30, 900);
        let ceilings: Vec<u32> = (1..=7).map(|n| b.ceiling(n)).collect();
        assert_eq!(ceilings, [30, 60, 120, 240, 480, 900, 900]);
        // Unknown or absurd counts stay in bounds, without overflow.
        assert_eq!(b.ceiling(0), 30);
        assert_eq!(b.ceiling(u32::MAX), 900);
        assert_eq!(RetryBackoff::new(1, 43_200).ceiling(40), 43_200);
    }

    #[test]
    fn jitter_keeps_the_delay_between_half_the_ceiling_and_the_ceiling() {
        let b = RetryBackoff::new(30, 900);
        for n in 1..=10 {
            let ceiling = b.ceiling(n);
            let low = b.delay(n, 0.0);
            let high = b.delay(n, 0.999_999);
            assert_eq!(low, ceiling.div_ceil(2), "receive {n}");
            assert_eq!(high, ceiling, "receive {n}");
            for step in 0..100 {
                let d = b.delay(n, f64::from(step) / 100.0);
                assert!((low..=high).contains(&d), "receive {n}: {d}");
            }
        }
        // Out-of-range jitter is clamped; NaN counts as none.
        assert_eq!(b.delay(1, -3.0), 15);
        assert_eq!(b.delay(1, 7.0), 30);
        assert_eq!(b.delay(1, f64::NAN), 15);
        // A one-second base never gives 0 (which would mean "at once").
        assert_eq!(RetryBackoff::new(1, 900).delay(1, 0.0), 1);
    }

    #[test]
    fn the_delay_grows_with_receives() {
        let b = RetryBackoff::new(30, 900);
        let at_half: Vec<u32> = (1..=7).map(|n| b.delay(n, 0.5)).collect();
        assert!(at_half.windows(2).all(|w| w[0] <= w[1]), "{at_half:?}");
        assert!(at_half[0] < at_half[4], "{at_half:?}");
    }

    #[test]
    fn settings_are_checked_and_named() {
        assert_eq!(
            check_backoff("B", 30, "M", 900).unwrap(),
            RetryBackoff::new(30, 900)
        );
        assert_eq!(check_backoff("B", 0, "M", 900).unwrap_err().variable, "B");
        assert_eq!(check_backoff("B", 901, "M", 900).unwrap_err().variable, "B");
        assert_eq!(check_backoff("B", 1, "M", 0).unwrap_err().variable, "M");
        assert_eq!(
            check_backoff("B", 1, "M", 43_201).unwrap_err().variable,
            "M"
        );
        // The constructor clamps instead.
        assert_eq!(RetryBackoff::new(0, 50_000).ceiling(1), 1);
        assert_eq!(RetryBackoff::new(100, 10).ceiling(1), 10);
    }

    #[test]
    fn failed_messages_back_off_and_unstarted_ones_come_back_at_once() {
        let requeue = Requeue::new(
            &SdkConfig::builder().build(),
            "https://sqs.us-east-1.amazonaws.com/1/uploads",
            RetryBackoff::new(30, 900),
        );
        let message = |id: &str, receives, why| Unfinished {
            id: id.into(),
            receipt_handle: Some(format!("h-{id}")),
            receive_count: receives,
            why,
        };
        let unfinished = [
            message("a", Some(1), Return::Failed),
            message("b", Some(3), Return::Failed),
            message("c", None, Return::Failed),
            message("d", Some(2), Return::NotStarted),
            Unfinished {
                receipt_handle: None,
                ..message("e", Some(1), Return::Failed)
            },
        ];
        let changes = requeue.changes(&unfinished, || 0.999_999);
        let seconds: Vec<(&str, &str, u32)> = changes
            .iter()
            .map(|c| (c.id.as_str(), c.receipt_handle.as_str(), c.seconds))
            .collect();
        assert_eq!(
            seconds,
            [
                ("a", "h-a", 30),
                ("b", "h-b", 120),
                ("c", "h-c", 30),
                ("d", "h-d", 0)
            ]
        );
        // The client is built only when a change is sent.
        assert!(requeue.client.get().is_none());
    }
}
