//! Token, call and cost totals over the model calls of one document, ticket or translation.

use serde::Serialize;

use crate::{Completion, Cost};

/// Tokens and calls spent on one unit of work; every function reports this shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageTotals {
    /// Prompt tokens, as the model counted them.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub generation_tokens: u64,
    /// Model calls that answered.
    pub model_calls: u32,
    /// Attempts, retries and fallbacks included.
    pub attempts: u32,
    /// What the calls' tokens cost, each at its answering model's price (`cost_usd`).
    #[serde(rename = "cost_usd")]
    pub cost: Cost,
}

impl UsageTotals {
    /// The totals of one finished call.
    pub fn of(completion: &Completion) -> Self {
        Self {
            prompt_tokens: u64::from(completion.usage.prompt_tokens),
            generation_tokens: u64::from(completion.usage.generation_tokens),
            model_calls: 1,
            attempts: completion.attempts,
            cost: completion.usage.cost,
        }
    }

    /// Adds one finished call.
    pub fn add(&mut self, completion: &Completion) {
        *self += Self::of(completion);
    }
}

impl std::ops::AddAssign for UsageTotals {
    fn add_assign(&mut self, other: Self) {
        self.prompt_tokens += other.prompt_tokens;
        self.generation_tokens += other.generation_tokens;
        self.model_calls += other.model_calls;
        self.attempts += other.attempts;
        self.cost += other.cost;
    }
}
