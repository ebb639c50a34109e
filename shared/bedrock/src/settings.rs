//! Client settings, read once per cold start from the environment.

use std::time::Duration;

use crate::BedrockError;
use crate::budget::{BEDROCK_CONTEXT_WINDOW, ContextBudget};
use crate::metrics::{DEFAULT_NAMESPACE, Metrics, MetricsSink};
use crate::model::{DEFAULT_MODEL_ID, ModelSelection};
use crate::retry::RetryPolicy;

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
    /// The model's context window.
    pub budget: ContextBudget,
    /// Optional guardrail for both operations.
    pub guardrail: Option<Guardrail>,
    /// Where call metrics go.
    pub metrics: Metrics,
}

/// The environment variables [`ClientSettings::from_env`] reads.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `BEDROCK_MODEL_ID` | model id, inference profile id or ARN | `us.meta.llama3-2-3b-instruct-v1:0` |
/// | `BEDROCK_FALLBACK_MODEL_IDS` | comma-separated fallbacks, in order | none |
/// | `BEDROCK_CONTEXT_WINDOW` | context window in tokens | 131072 |
/// | `BEDROCK_MAX_ATTEMPTS` | attempts per model (1-10) | 4 |
/// | `BEDROCK_RETRY_BASE_MS` / `BEDROCK_RETRY_MAX_MS` | backoff base and cap | 250 / 8000 |
/// | `BEDROCK_MIN_ATTEMPT_MS` | least time an attempt needs before the deadline | 2000 |
/// | `BEDROCK_GUARDRAIL_ID` / `BEDROCK_GUARDRAIL_VERSION` | guardrail (both or neither) | none |
/// | `BEDROCK_METRICS_NAMESPACE` | EMF namespace | `TextProcessing/Bedrock` |
/// | `BEDROCK_METRICS` | `stdout` or `off` | `stdout` |
pub const ENV_VARS: [&str; 11] = [
    "BEDROCK_MODEL_ID",
    "BEDROCK_FALLBACK_MODEL_IDS",
    "BEDROCK_CONTEXT_WINDOW",
    "BEDROCK_MAX_ATTEMPTS",
    "BEDROCK_RETRY_BASE_MS",
    "BEDROCK_RETRY_MAX_MS",
    "BEDROCK_MIN_ATTEMPT_MS",
    "BEDROCK_GUARDRAIL_ID",
    "BEDROCK_GUARDRAIL_VERSION",
    "BEDROCK_METRICS_NAMESPACE",
    "BEDROCK_METRICS",
];

impl ClientSettings {
    /// Reads the settings from the process environment (see [`ENV_VARS`]).
    pub fn from_env() -> Result<Self, BedrockError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable name to its value).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, BedrockError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let models = ModelSelection::parse(
            get("BEDROCK_MODEL_ID")
                .as_deref()
                .unwrap_or(DEFAULT_MODEL_ID),
            get("BEDROCK_FALLBACK_MODEL_IDS").as_deref().unwrap_or(""),
        )?;
        let number = |name: &'static str,
                      default: u64,
                      range: (u64, u64),
                      allowed: &'static str| match get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (range.0..=range.1).contains(n))
                .ok_or(BedrockError::InvalidParameter {
                    field: name,
                    value: raw,
                    allowed,
                }),
        };
        let window = number(
            "BEDROCK_CONTEXT_WINDOW",
            BEDROCK_CONTEXT_WINDOW.into(),
            (256, 10_000_000),
            "an integer from 256 to 10000000",
        )?;
        let budget = ContextBudget::new(u32::try_from(window).unwrap_or(BEDROCK_CONTEXT_WINDOW))?;
        let defaults = RetryPolicy::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let retry = RetryPolicy {
            max_attempts: u32::try_from(number(
                "BEDROCK_MAX_ATTEMPTS",
                defaults.max_attempts.into(),
                (1, 10),
                "an integer from 1 to 10",
            )?)
            .unwrap_or(defaults.max_attempts),
            base_delay: Duration::from_millis(number(
                "BEDROCK_RETRY_BASE_MS",
                ms(defaults.base_delay),
                (1, 60_000),
                "milliseconds from 1 to 60000",
            )?),
            max_delay: Duration::from_millis(number(
                "BEDROCK_RETRY_MAX_MS",
                ms(defaults.max_delay),
                (1, 300_000),
                "milliseconds from 1 to 300000",
            )?),
            min_attempt_time: Duration::from_millis(number(
                "BEDROCK_MIN_ATTEMPT_MS",
                ms(defaults.min_attempt_time),
                (0, 900_000),
                "milliseconds from 0 to 900000",
            )?),
        };
        let guardrail = match (
            get("BEDROCK_GUARDRAIL_ID"),
            get("BEDROCK_GUARDRAIL_VERSION"),
        ) {
            (None, None) => None,
            (Some(identifier), Some(version)) => Some(Guardrail {
                identifier: identifier.trim().to_owned(),
                version: version.trim().to_owned(),
            }),
            (id, _) => {
                return Err(BedrockError::InvalidParameter {
                    field: if id.is_some() {
                        "BEDROCK_GUARDRAIL_VERSION"
                    } else {
                        "BEDROCK_GUARDRAIL_ID"
                    },
                    value: "unset".into(),
                    allowed: "set together with the other guardrail variable",
                });
            }
        };
        let sink = match get("BEDROCK_METRICS").as_deref().map(str::trim) {
            None | Some("stdout") => MetricsSink::Stdout,
            Some("off") => MetricsSink::Disabled,
            Some(other) => {
                return Err(BedrockError::InvalidParameter {
                    field: "BEDROCK_METRICS",
                    value: other.to_owned(),
                    allowed: "stdout or off",
                });
            }
        };
        let namespace =
            get("BEDROCK_METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        Ok(Self {
            models,
            retry,
            budget,
            guardrail,
            metrics: Metrics::new(namespace.trim(), sink),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<ClientSettings, BedrockError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ClientSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_without_environment() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.models.primary().as_str(), DEFAULT_MODEL_ID);
        assert_eq!(s.budget.context_window(), 131_072);
        assert_eq!(s.retry, RetryPolicy::default());
        assert!(s.guardrail.is_none());
        assert_eq!(s.metrics.namespace(), DEFAULT_NAMESPACE);
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
            ("BEDROCK_MAX_ATTEMPTS", "2"),
            ("BEDROCK_RETRY_BASE_MS", "10"),
            ("BEDROCK_RETRY_MAX_MS", "20"),
            ("BEDROCK_MIN_ATTEMPT_MS", "0"),
            ("BEDROCK_GUARDRAIL_ID", "gr-123"),
            ("BEDROCK_GUARDRAIL_VERSION", "DRAFT"),
            ("BEDROCK_METRICS_NAMESPACE", "Custom"),
            ("BEDROCK_METRICS", "off"),
        ])
        .unwrap();
        assert_eq!(s.models.models().len(), 2);
        assert_eq!(s.budget.context_window(), 8192);
        assert_eq!(s.retry.max_attempts, 2);
        assert_eq!(s.retry.max_delay, Duration::from_millis(20));
        assert_eq!(s.retry.min_attempt_time, Duration::ZERO);
        assert_eq!(s.guardrail.unwrap().version, "DRAFT");
        assert_eq!(s.metrics.namespace(), "Custom");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("BEDROCK_CONTEXT_WINDOW", "lots"),
            ("BEDROCK_MAX_ATTEMPTS", "0"),
            ("BEDROCK_MAX_ATTEMPTS", "11"),
            ("BEDROCK_RETRY_BASE_MS", "-1"),
            ("BEDROCK_METRICS", "loud"),
            ("BEDROCK_GUARDRAIL_ID", "gr-1"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.error_type(), "InvalidParameter");
            assert!(err.to_string().contains("BEDROCK_"), "{name}: {err}");
        }
        let err = settings(&[("BEDROCK_MODEL_ID", "nonsense")]).unwrap_err();
        assert!(err.to_string().contains("model_id"));
    }
}
