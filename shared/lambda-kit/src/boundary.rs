//! The boundary's own settings, shared by every function.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use settings::{ConfigError, Settings, in_range};

use crate::sync_budget::SyncRates;

/// How the boundary treats requests, read once per cold start; each field is a variable
/// (`API_TIME_BUDGET_MS`, `API_PROMPT_TOKENS_PER_SECOND`, `API_GENERATION_TOKENS_PER_SECOND`,
/// `S3_FORCE_PATH_STYLE`; the project README's table says more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoundarySettings {
    /// The most an HTTP request may take, in milliseconds.
    pub api_time_budget_ms: u64,
    /// Prompt tokens the model is assumed to read per second, for the estimate that
    /// refuses synchronous requests which cannot finish in the budget.
    pub api_prompt_tokens_per_second: u32,
    /// Tokens the model is assumed to generate per second, for the same estimate.
    pub api_generation_tokens_per_second: u32,
    /// Path-style S3 addressing (for local S3 servers).
    pub s3_force_path_style: bool,
    /// Serve function-URL requests as streamed Server-Sent Events (`RESPONSE_STREAMING`;
    /// the streaming functions of the template) instead of buffered responses.
    pub response_streaming: bool,
}

impl Default for BoundarySettings {
    fn default() -> Self {
        Self {
            api_time_budget_ms: 28_000,
            // Assumptions for Llama 3.2 3B on Bedrock on demand (README: "Synchronous
            // budget"); replace them with measured figures.
            api_prompt_tokens_per_second: 10_000,
            api_generation_tokens_per_second: 100,
            s3_force_path_style: false,
            response_streaming: false,
        }
    }
}

impl Settings for BoundarySettings {
    const PREFIX: &'static str = "";

    fn validate(&self) -> Result<(), ConfigError> {
        in_range(
            "API_TIME_BUDGET_MS",
            self.api_time_budget_ms,
            1_000,
            900_000,
        )?;
        in_range(
            "API_PROMPT_TOKENS_PER_SECOND",
            self.api_prompt_tokens_per_second,
            1,
            10_000_000,
        )?;
        in_range(
            "API_GENERATION_TOKENS_PER_SECOND",
            self.api_generation_tokens_per_second,
            1,
            100_000,
        )
    }
}

impl BoundarySettings {
    /// The HTTP time budget.
    pub fn api_time_budget(&self) -> Duration {
        Duration::from_millis(self.api_time_budget_ms)
    }

    /// The rates that estimate a synchronous request's model time.
    pub fn sync_rates(&self) -> SyncRates {
        SyncRates {
            prompt_tokens_per_second: self.api_prompt_tokens_per_second,
            generation_tokens_per_second: self.api_generation_tokens_per_second,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<const N: usize>(pairs: [(&str, &str); N]) -> Result<BoundarySettings, ConfigError> {
        settings::from_vars(pairs)
    }

    #[test]
    fn defaults_and_bad_values() {
        assert_eq!(read([]).unwrap(), BoundarySettings::default());
        let s = read([
            ("API_TIME_BUDGET_MS", "10000"),
            ("S3_FORCE_PATH_STYLE", "true"),
        ])
        .unwrap();
        assert_eq!(s.api_time_budget(), Duration::from_secs(10));
        assert!(s.s3_force_path_style);
        for (name, value) in [
            ("S3_FORCE_PATH_STYLE", "TRUE"),
            ("API_TIME_BUDGET_MS", "5"),
            ("API_TIME_BUDGET_MS", "soon"),
            ("API_GENERATION_TOKENS_PER_SECOND", "0"),
            ("API_PROMPT_TOKENS_PER_SECOND", "fast"),
        ] {
            assert_eq!(read([(name, value)]).unwrap_err().variable, name);
        }
    }
}
