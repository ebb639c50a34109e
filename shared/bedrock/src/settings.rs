//! Client settings, read once per cold start from the environment.

use std::time::Duration;

use ::settings::{ConfigError, Settings, in_range};
use serde::{Deserialize, Serialize};

use crate::BedrockError;
use crate::budget::{BEDROCK_CONTEXT_WINDOW, ContextBudget, Counter, MIN_CONTEXT_WINDOW};
use crate::metrics::{DEFAULT_NAMESPACE, Metrics, MetricsSink};
use crate::model::{DEFAULT_MODEL_ID, ModelId, ModelSelection};
use crate::pricing::{DEFAULT_INPUT_PER_1K, DEFAULT_OUTPUT_PER_1K, Price, Pricing};
use crate::retry::{AttemptTimeouts, RetryPolicy};

/// A Bedrock Guardrail applied to every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrail {
    /// Guardrail id or ARN.
    pub identifier: String,
    /// Guardrail version (`DRAFT` or a number).
    pub version: String,
}

/// Everything the client needs besides the AWS SDK configuration.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// Primary model and fallbacks.
    pub models: ModelSelection,
    /// Retry and deadline behaviour.
    pub retry: RetryPolicy,
    /// Time limits of one attempt.
    pub timeouts: AttemptTimeouts,
    /// The model's context window.
    pub budget: ContextBudget,
    /// Optional guardrail for both operations.
    pub guardrail: Option<Guardrail>,
    /// Where call metrics go.
    pub metrics: Metrics,
    /// What each model's tokens cost.
    pub pricing: Pricing,
}

/// The `BEDROCK_*` environment variables, as read by [`ClientSettings::from_env`]; each
/// field is a variable (the project README's table says what each means and is checked
/// against this struct by a test).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BedrockEnv {
    /// Model id, inference profile id or ARN.
    pub model_id: String,
    /// Comma-separated fallback models, in order.
    pub fallback_model_ids: String,
    /// The model's context window, in tokens.
    pub context_window: u32,
    /// How prompts are counted against the window where the estimate cannot decide.
    pub token_count: TokenCount,
    /// Attempts per model.
    pub max_attempts: u32,
    /// Backoff base, in milliseconds.
    pub retry_base_ms: u64,
    /// Backoff cap, in milliseconds.
    pub retry_max_ms: u64,
    /// Least time an attempt needs before the deadline, in milliseconds.
    pub min_attempt_ms: u64,
    /// The most one InvokeModel attempt may take, in milliseconds.
    pub attempt_timeout_ms: u64,
    /// The most a stream may stay silent (first chunk, between chunks), in milliseconds.
    pub stream_idle_timeout_ms: u64,
    /// Guardrail id or ARN (with the version).
    pub guardrail_id: Option<String>,
    /// Guardrail version (with the id).
    pub guardrail_version: Option<String>,
    /// CloudWatch EMF namespace.
    pub metrics_namespace: String,
    /// Where call metrics go.
    pub metrics: MetricsOutput,
    /// USD per 1,000 prompt tokens of every model not in `model_prices`.
    pub price_input_per_1k_tokens: String,
    /// USD per 1,000 generated tokens of every model not in `model_prices`.
    pub price_output_per_1k_tokens: String,
    /// Per-model prices, `model-id=input/output,...` (USD per 1,000 tokens).
    pub model_prices: String,
}

/// How prompts are counted where the estimate cannot decide (`BEDROCK_TOKEN_COUNT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenCount {
    /// The exact Llama 3 count: the models on Bedrock (Llama 3.x share the tokenizer).
    #[default]
    Llama3,
    /// The estimate only: for a model with another tokenizer (a local stand-in), where the
    /// Llama 3 count means nothing and the estimate's margin is all there is.
    Estimate,
}

/// Where call metrics go (`BEDROCK_METRICS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsOutput {
    /// EMF lines on standard output.
    #[default]
    Stdout,
    /// No metrics.
    Off,
}

impl Default for BedrockEnv {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        let timeouts = AttemptTimeouts::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            model_id: DEFAULT_MODEL_ID.into(),
            fallback_model_ids: String::new(),
            context_window: BEDROCK_CONTEXT_WINDOW,
            token_count: TokenCount::Llama3,
            max_attempts: retry.max_attempts,
            retry_base_ms: ms(retry.base_delay),
            retry_max_ms: ms(retry.max_delay),
            min_attempt_ms: ms(retry.min_attempt_time),
            attempt_timeout_ms: ms(timeouts.invoke),
            stream_idle_timeout_ms: ms(timeouts.stream_idle),
            guardrail_id: None,
            guardrail_version: None,
            metrics_namespace: DEFAULT_NAMESPACE.into(),
            metrics: MetricsOutput::Stdout,
            price_input_per_1k_tokens: DEFAULT_INPUT_PER_1K.into(),
            price_output_per_1k_tokens: DEFAULT_OUTPUT_PER_1K.into(),
            model_prices: String::new(),
        }
    }
}

/// Checked when converted into [`ClientSettings`].
impl Settings for BedrockEnv {
    const PREFIX: &'static str = "BEDROCK_";
}

impl ClientSettings {
    /// Reads the settings from the process environment (see [`BedrockEnv`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        ::settings::from_env::<BedrockEnv>()?.try_into()
    }
}

impl TryFrom<BedrockEnv> for ClientSettings {
    type Error = ConfigError;

    fn try_from(env: BedrockEnv) -> Result<Self, ConfigError> {
        let models =
            ModelSelection::parse(&env.model_id, &env.fallback_model_ids).map_err(|e| {
                let variable = if ModelId::parse(&env.model_id).is_err() {
                    "BEDROCK_MODEL_ID"
                } else {
                    "BEDROCK_FALLBACK_MODEL_IDS"
                };
                ConfigError::new(variable, e.to_string())
            })?;
        in_range(
            "BEDROCK_CONTEXT_WINDOW",
            env.context_window,
            MIN_CONTEXT_WINDOW,
            10_000_000,
        )?;
        let budget = ContextBudget::new(env.context_window)
            .map_err(|e| {
                ConfigError::new("BEDROCK_CONTEXT_WINDOW", BedrockError::from(e).to_string())
            })?
            .with_counter(match env.token_count {
                TokenCount::Llama3 => Counter::Exact,
                TokenCount::Estimate => Counter::Estimate,
            });
        in_range("BEDROCK_MAX_ATTEMPTS", env.max_attempts, 1, 10)?;
        in_range("BEDROCK_RETRY_BASE_MS", env.retry_base_ms, 1, 60_000)?;
        in_range("BEDROCK_RETRY_MAX_MS", env.retry_max_ms, 1, 300_000)?;
        in_range("BEDROCK_MIN_ATTEMPT_MS", env.min_attempt_ms, 0, 900_000)?;
        in_range(
            "BEDROCK_ATTEMPT_TIMEOUT_MS",
            env.attempt_timeout_ms,
            1_000,
            900_000,
        )?;
        in_range(
            "BEDROCK_STREAM_IDLE_TIMEOUT_MS",
            env.stream_idle_timeout_ms,
            1_000,
            900_000,
        )?;
        let timeouts = AttemptTimeouts {
            invoke: Duration::from_millis(env.attempt_timeout_ms),
            stream_idle: Duration::from_millis(env.stream_idle_timeout_ms),
        };
        let retry = RetryPolicy {
            max_attempts: env.max_attempts,
            base_delay: Duration::from_millis(env.retry_base_ms),
            max_delay: Duration::from_millis(env.retry_max_ms),
            min_attempt_time: Duration::from_millis(env.min_attempt_ms),
        };
        let guardrail = match (env.guardrail_id, env.guardrail_version) {
            (None, None) => None,
            (Some(identifier), Some(version)) => Some(Guardrail {
                identifier,
                version,
            }),
            (id, _) => {
                let (variable, other) = if id.is_some() {
                    ("BEDROCK_GUARDRAIL_VERSION", "BEDROCK_GUARDRAIL_ID")
                } else {
                    ("BEDROCK_GUARDRAIL_ID", "BEDROCK_GUARDRAIL_VERSION")
                };
                return Err(ConfigError::new(
                    variable,
                    format!("is unset; set it together with {other}"),
                ));
            }
        };
        let default_price = Price::per_1k(
            env.price_input_per_1k_tokens.trim(),
            env.price_output_per_1k_tokens.trim(),
        )
        .map_err(|e| {
            let variable = if e.starts_with("input") {
                "BEDROCK_PRICE_INPUT_PER_1K_TOKENS"
            } else {
                "BEDROCK_PRICE_OUTPUT_PER_1K_TOKENS"
            };
            ConfigError::new(variable, e)
        })?;
        let overrides = Pricing::parse_overrides(&env.model_prices)
            .map_err(|e| ConfigError::new("BEDROCK_MODEL_PRICES", e))?;
        let sink = match env.metrics {
            MetricsOutput::Stdout => MetricsSink::Stdout,
            MetricsOutput::Off => MetricsSink::Disabled,
        };
        Ok(Self {
            models,
            retry,
            timeouts,
            budget,
            guardrail,
            metrics: Metrics::new(env.metrics_namespace, sink),
            pricing: Pricing::new(default_price, overrides),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<ClientSettings, ConfigError> {
        ::settings::from_vars::<BedrockEnv>(vars.iter().copied())?.try_into()
    }

    #[test]
    fn defaults_without_environment() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.models.primary().as_str(), DEFAULT_MODEL_ID);
        assert_eq!(s.budget.context_window(), 131_072);
        assert_eq!(s.budget.counter(), Counter::Exact);
        assert_eq!(s.retry, RetryPolicy::default());
        assert_eq!(s.timeouts, AttemptTimeouts::default());
        assert!(s.guardrail.is_none());
        assert_eq!(s.metrics.namespace(), DEFAULT_NAMESPACE);
        assert_eq!(
            s.pricing.cost(DEFAULT_MODEL_ID, 1_000, 1_000).to_string(),
            "0.0003"
        );
    }

    #[test]
    fn reads_every_variable() {
        let s = settings(&[
            ("BEDROCK_MODEL_ID", "meta.llama3-2-3b-instruct-v1:0"),
            (
                "BEDROCK_FALLBACK_MODEL_IDS",
                "eu.meta.llama3-2-3b-instruct-v1:0",
            ),
            ("BEDROCK_CONTEXT_WINDOW", "8192"),
            ("BEDROCK_TOKEN_COUNT", "estimate"),
            ("BEDROCK_MAX_ATTEMPTS", "2"),
            ("BEDROCK_RETRY_BASE_MS", "10"),
            ("BEDROCK_RETRY_MAX_MS", "20"),
            ("BEDROCK_MIN_ATTEMPT_MS", "0"),
            ("BEDROCK_ATTEMPT_TIMEOUT_MS", "45000"),
            ("BEDROCK_STREAM_IDLE_TIMEOUT_MS", "5000"),
            ("BEDROCK_GUARDRAIL_ID", "gr-123"),
            ("BEDROCK_GUARDRAIL_VERSION", "DRAFT"),
            ("BEDROCK_METRICS_NAMESPACE", "Custom"),
            ("BEDROCK_METRICS", "off"),
            ("BEDROCK_PRICE_INPUT_PER_1K_TOKENS", "0.001"),
            ("BEDROCK_PRICE_OUTPUT_PER_1K_TOKENS", "0.002"),
            (
                "BEDROCK_MODEL_PRICES",
                "eu.meta.llama3-2-3b-instruct-v1:0=0.0005/0.0006",
            ),
        ])
        .unwrap();
        assert_eq!(s.models.models().len(), 2);
        assert_eq!(s.budget.context_window(), 8192);
        assert_eq!(s.budget.counter(), Counter::Estimate);
        assert_eq!(s.retry.max_attempts, 2);
        assert_eq!(s.retry.max_delay, Duration::from_millis(20));
        assert_eq!(s.retry.min_attempt_time, Duration::ZERO);
        assert_eq!(s.timeouts.invoke, Duration::from_secs(45));
        assert_eq!(s.timeouts.stream_idle, Duration::from_secs(5));
        assert_eq!(s.guardrail.unwrap().version, "DRAFT");
        assert_eq!(s.metrics.namespace(), "Custom");
        assert_eq!(
            s.pricing
                .cost("meta.llama3-2-3b-instruct-v1:0", 1_000, 1_000)
                .to_string(),
            "0.003"
        );
        assert_eq!(
            s.pricing
                .cost("eu.meta.llama3-2-3b-instruct-v1:0", 1_000, 1_000)
                .to_string(),
            "0.0011"
        );
        assert_eq!(::settings::variables::<BedrockEnv>().len(), 17);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value, culprit) in [
            ("BEDROCK_CONTEXT_WINDOW", "lots", "BEDROCK_CONTEXT_WINDOW"),
            ("BEDROCK_MAX_ATTEMPTS", "0", "BEDROCK_MAX_ATTEMPTS"),
            ("BEDROCK_MAX_ATTEMPTS", "11", "BEDROCK_MAX_ATTEMPTS"),
            ("BEDROCK_RETRY_BASE_MS", "-1", "BEDROCK_RETRY_BASE_MS"),
            (
                "BEDROCK_ATTEMPT_TIMEOUT_MS",
                "10",
                "BEDROCK_ATTEMPT_TIMEOUT_MS",
            ),
            (
                "BEDROCK_STREAM_IDLE_TIMEOUT_MS",
                "0",
                "BEDROCK_STREAM_IDLE_TIMEOUT_MS",
            ),
            ("BEDROCK_METRICS", "loud", "BEDROCK_METRICS"),
            ("BEDROCK_GUARDRAIL_ID", "gr-1", "BEDROCK_GUARDRAIL_VERSION"),
            ("BEDROCK_MODEL_ID", "nonsense", "BEDROCK_MODEL_ID"),
            (
                "BEDROCK_FALLBACK_MODEL_IDS",
                "x,y",
                "BEDROCK_FALLBACK_MODEL_IDS",
            ),
            (
                "BEDROCK_PRICE_INPUT_PER_1K_TOKENS",
                "-0.1",
                "BEDROCK_PRICE_INPUT_PER_1K_TOKENS",
            ),
            (
                "BEDROCK_PRICE_OUTPUT_PER_1K_TOKENS",
                "1e-4",
                "BEDROCK_PRICE_OUTPUT_PER_1K_TOKENS",
            ),
            (
                "BEDROCK_MODEL_PRICES",
                "us.meta.llama3-2-3b-instruct-v1:0=0.1",
                "BEDROCK_MODEL_PRICES",
            ),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, culprit, "{name}={value}: {err}");
        }
    }
}
