//! Synchronous HTTP requests keep their time budget: a function estimates the model work a
//! request needs ([`Workload`]), the configured rates ([`SyncRates`]) turn it into a
//! duration, and a request whose estimate does not fit what is left of its deadline is
//! refused ([`TaskError::SyncBudgetExceeded`]) before any model call.
//!
//! The estimate is deliberately an upper bound on the generation: every call is counted
//! with its whole `max_gen_len`, as Bedrock may generate that much.

use std::time::Duration;

use bedrock::Deadline;

use crate::TaskError;

/// One model call: the tokens it sends and the most it may generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelCall {
    /// Estimated prompt tokens.
    pub prompt_tokens: u32,
    /// The call's `max_gen_len`.
    pub max_gen_len: u32,
}

/// `calls` calls alike, `concurrency` at a time, after the previous steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    call: ModelCall,
    calls: usize,
    concurrency: usize,
}

/// The model calls a request needs, in order: steps run one after the other, the calls of
/// one step with bounded concurrency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    steps: Vec<Step>,
}

impl Workload {
    /// No calls yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Then one call.
    #[must_use]
    pub fn then(self, call: ModelCall) -> Self {
        self.then_parallel(1, 1, call)
    }

    /// Then `calls` calls like `call`, `concurrency` at a time.
    #[must_use]
    pub fn then_parallel(mut self, calls: usize, concurrency: usize, call: ModelCall) -> Self {
        if calls > 0 {
            self.steps.push(Step {
                call,
                calls,
                concurrency: concurrency.max(1),
            });
        }
        self
    }

    /// Model calls in all.
    pub fn model_calls(&self) -> usize {
        self.steps.iter().map(|s| s.calls).sum()
    }
}

/// How fast the model is assumed to read prompts and generate, from `API_*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRates {
    /// Prompt tokens processed per second (time to the first token).
    pub prompt_tokens_per_second: u32,
    /// Tokens generated per second.
    pub generation_tokens_per_second: u32,
}

impl Default for SyncRates {
    fn default() -> Self {
        let boundary = crate::boundary::BoundarySettings::default();
        boundary.sync_rates()
    }
}

impl SyncRates {
    /// The estimated time of one call.
    fn call(&self, call: ModelCall) -> Duration {
        let seconds = f64::from(call.prompt_tokens)
            / f64::from(self.prompt_tokens_per_second.max(1))
            + f64::from(call.max_gen_len) / f64::from(self.generation_tokens_per_second.max(1));
        Duration::from_secs_f64(seconds)
    }

    /// The estimated time of `workload`: each step takes as many rounds of its call as its
    /// concurrency needs.
    pub fn estimate(&self, workload: &Workload) -> Duration {
        workload
            .steps
            .iter()
            .map(|step| {
                let rounds = step.calls.div_ceil(step.concurrency);
                self.call(step.call)
                    .saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
            })
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// Refuses `workload` when its estimate exceeds what is left before `deadline`.
    pub fn check(&self, workload: &Workload, deadline: Deadline) -> Result<(), TaskError> {
        let estimate = self.estimate(workload);
        let left = deadline.remaining();
        if estimate <= left {
            return Ok(());
        }
        tracing::info!(
            estimate_ms = u64::try_from(estimate.as_millis()).unwrap_or(u64::MAX),
            budget_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
            model_calls = workload.model_calls(),
            "refused: over the synchronous time budget"
        );
        Err(TaskError::SyncBudgetExceeded(format!(
            "this request needs an estimated {:.1} s of model time ({} model calls) but the \
             synchronous time budget leaves {:.1} s; send it with `Prefer: respond-async` or \
             as `POST /jobs` to run it asynchronously",
            estimate.as_secs_f64(),
            workload.model_calls(),
            left.as_secs_f64(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: SyncRates = SyncRates {
        prompt_tokens_per_second: 1000,
        generation_tokens_per_second: 100,
    };

    fn call(prompt_tokens: u32, max_gen_len: u32) -> ModelCall {
        ModelCall {
            prompt_tokens,
            max_gen_len,
        }
    }

    #[test]
    fn steps_add_up_and_concurrency_shares_a_step() {
        // 1 s of prompt + 2 s of generation per call.
        let one = Workload::new().then(call(1000, 200));
        assert_eq!(RATES.estimate(&one), Duration::from_secs(3));
        // 10 parts, 4 at a time: 3 rounds; then one combination call.
        let map_reduce = Workload::new()
            .then_parallel(10, 4, call(1000, 200))
            .then(call(500, 50));
        assert_eq!(RATES.estimate(&map_reduce), Duration::from_secs(10));
        assert_eq!(map_reduce.model_calls(), 11);
        assert_eq!(
            RATES.estimate(&Workload::new().then_parallel(0, 4, call(1, 1))),
            Duration::ZERO
        );
        // A concurrency of 0 is one at a time, not a division by zero.
        assert_eq!(
            RATES.estimate(&Workload::new().then_parallel(2, 0, call(0, 100))),
            Duration::from_secs(2)
        );
    }

    #[tokio::test]
    async fn work_over_the_budget_is_refused_with_the_way_out() {
        let deadline = Deadline::after(Duration::from_secs(100));
        let call = call(1000, 800);
        assert!(RATES.check(&Workload::new().then(call), deadline).is_ok());
        let err = RATES
            .check(&Workload::new().then_parallel(20, 1, call), deadline)
            .unwrap_err();
        assert_eq!(err.error_type(), "SyncBudgetExceeded");
        assert_eq!(err.http_status(), 422);
        assert!(!err.is_retryable());
        let message = err.public_message();
        for part in [
            "estimated 180.0 s",
            "20 model calls",
            "budget leaves ",
            "Prefer: respond-async",
            "POST /jobs",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
    }
}
