//! Retries with exponential backoff and full jitter, bounded by the invocation deadline;
//! per-attempt time limits.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::BedrockError;

/// How retryable failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per model, the first included (1 = no retries).
    pub max_attempts: u32,
    /// Backoff cap for the first retry; doubles each retry.
    pub base_delay: Duration,
    /// Largest backoff between two attempts.
    pub max_delay: Duration,
    /// Least time an attempt needs; no attempt starts with less left before the deadline.
    pub min_attempt_time: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            min_attempt_time: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (1-based): uniform in
    /// `[0, min(max_delay, base_delay * 2^(retry-1))]` ("full jitter").
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exp = retry.saturating_sub(1).min(20);
        let cap = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=cap_ms))
    }
}

/// How long one attempt may take, whatever the deadline leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptTimeouts {
    /// The most one InvokeModel attempt may take, from sending to the whole answer.
    pub invoke: Duration,
    /// The most a stream may stay silent: until its first chunk (which ends the attempt
    /// that retries cover) and between two chunks.
    pub stream_idle: Duration,
}

impl Default for AttemptTimeouts {
    /// 90 s per InvokeModel attempt: 2048 generated tokens at a slow 40 tokens/s plus the
    /// prompt of a full window take about 60 s. 30 s of stream silence: the first chunk
    /// follows the prompt's processing, later ones come every few tokens.
    fn default() -> Self {
        Self {
            invoke: Duration::from_secs(90),
            stream_idle: Duration::from_secs(30),
        }
    }
}

/// The time limit of one attempt (or one wait for a stream chunk): its own cap, or what
/// is left before the deadline when that is sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    after: Duration,
    by_deadline: bool,
}

impl Limit {
    /// The sooner of `cap` and the deadline.
    pub(crate) fn new(cap: Duration, deadline: Option<Deadline>) -> Self {
        match deadline.map(|d| d.remaining()) {
            Some(remaining) if remaining <= cap => Self {
                after: remaining,
                by_deadline: true,
            },
            _ => Self {
                after: cap,
                by_deadline: false,
            },
        }
    }

    /// Runs `fut` within the limit. Running into the deadline is `DeadlineExceeded`;
    /// running into the attempt's own cap is a retryable `ModelTimeout`.
    pub(crate) async fn run<F: Future>(self, fut: F) -> Result<F::Output, BedrockError> {
        tokio::time::timeout(self.after, fut).await.map_err(|_| {
            if self.by_deadline {
                BedrockError::DeadlineExceeded {
                    attempts: 0,
                    remaining: Duration::ZERO,
                    message: format!(
                        "the model call was cut off at the deadline after {:?}",
                        self.after
                    ),
                }
            } else {
                BedrockError::ModelTimeout {
                    message: format!("no answer from Bedrock within {:?}", self.after),
                }
            }
        })
    }
}

/// The point in time by which a call must be done (for example the Lambda deadline
/// less a safety margin). It runs on tokio's clock, so tests can pause time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(tokio::time::Instant);

impl Deadline {
    /// A deadline at `at`.
    pub fn at(at: Instant) -> Self {
        Self(tokio::time::Instant::from_std(at))
    }

    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        Self(tokio::time::Instant::now() + after)
    }

    /// Time left until the deadline (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// The instant itself.
    pub fn instant(&self) -> Instant {
        self.0.into_std()
    }
}

/// Decides whether another attempt may start, and after how long a pause.
pub(crate) struct RetryState<'a> {
    policy: &'a RetryPolicy,
    deadline: Option<Deadline>,
    /// Attempts made on the current model.
    pub(crate) model_attempts: u32,
    /// Attempts made in total.
    pub(crate) total_attempts: u32,
}

impl<'a> RetryState<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy, deadline: Option<Deadline>) -> Self {
        Self {
            policy,
            deadline,
            model_attempts: 0,
            total_attempts: 0,
        }
    }

    /// Starts counting attempts for the next model.
    pub(crate) fn next_model(&mut self) {
        self.model_attempts = 0;
    }

    /// Checks that an attempt can still finish in time, then counts it.
    pub(crate) fn begin_attempt(&mut self, why: &str) -> Result<(), BedrockError> {
        if let Some(deadline) = self.deadline {
            let remaining = deadline.remaining();
            if remaining < self.policy.min_attempt_time {
                return Err(self.deadline_error(remaining, why));
            }
        }
        self.model_attempts += 1;
        self.total_attempts += 1;
        Ok(())
    }

    /// After a retryable failure: the pause before the next attempt on this model, or
    /// `None` when attempts are used up. Fails with `DeadlineExceeded` when the pause
    /// would leave too little time for another attempt.
    pub(crate) fn pause_before_retry(
        &self,
        err: &BedrockError,
    ) -> Result<Option<Duration>, BedrockError> {
        if self.model_attempts >= self.policy.max_attempts {
            return Ok(None);
        }
        let pause = self.policy.backoff(self.model_attempts, &mut rand::rng());
        if let Some(deadline) = self.deadline {
            let remaining = deadline.remaining();
            if remaining < pause + self.policy.min_attempt_time {
                return Err(self.deadline_error(remaining, &err.to_string()));
            }
        }
        Ok(Some(pause))
    }

    pub(crate) fn deadline_error(&self, remaining: Duration, why: &str) -> BedrockError {
        BedrockError::DeadlineExceeded {
            attempts: self.total_attempts,
            remaining,
            message: format!(
                "no attempt can finish before the deadline (needs {:?}); last: {why}",
                self.policy.min_attempt_time
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn backoff_is_capped_and_jittered() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for retry in 1..=10 {
            let cap = Duration::from_millis(100 * (1 << (retry - 1))).min(Duration::from_secs(1));
            for _ in 0..50 {
                let d = policy.backoff(retry, &mut rng);
                assert!(d <= cap, "retry {retry}: {d:?} > {cap:?}");
                seen.insert(d);
            }
        }
        assert!(seen.len() > 100, "jitter should spread delays");
    }

    #[test]
    fn no_attempt_starts_without_enough_time() {
        let policy = RetryPolicy::default();
        let mut state = RetryState::new(&policy, Some(Deadline::after(Duration::from_millis(500))));
        let err = state.begin_attempt("first").unwrap_err();
        assert_eq!(err.error_type(), "DeadlineExceeded");
        assert_eq!(state.total_attempts, 0);
    }

    #[test]
    fn attempts_are_bounded_per_model() {
        let policy = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let mut state = RetryState::new(&policy, None);
        let err = BedrockError::Throttled {
            message: "x".into(),
        };
        state.begin_attempt("").unwrap();
        assert!(state.pause_before_retry(&err).unwrap().is_some());
        state.begin_attempt("").unwrap();
        assert!(state.pause_before_retry(&err).unwrap().is_none());
        state.next_model();
        state.begin_attempt("").unwrap();
        assert_eq!((state.model_attempts, state.total_attempts), (1, 3));
    }
}
