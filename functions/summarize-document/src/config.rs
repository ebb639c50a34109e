//! Function settings, read once per cold start.

use lambda_kit::TaskError;
use lambda_kit::config::env_limit;

use crate::options::SummaryOptions;
use crate::summarize::Plan;

/// Settings from the environment (see the crate README for names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where results go; default: the source bucket.
    pub output_bucket: Option<String>,
    /// S3 uploads are only processed under this prefix (empty: everywhere).
    pub input_prefix: String,
    /// Prefix of summary records.
    pub summary_prefix: String,
    /// Prefix of failure records.
    pub failure_prefix: String,
    /// Prefix of the document workflow's result records.
    pub result_prefix: String,
    /// Largest S3 object read, in bytes.
    pub max_document_bytes: u64,
    /// Largest extracted text summarized, in bytes.
    pub max_text_bytes: u64,
    /// Largest HTTP body or inline task text, in bytes.
    pub max_request_bytes: u64,
    /// Map-reduce tuning.
    pub plan: Plan,
    /// Options for S3-triggered summaries (`SUMMARY_LENGTH`, `SUMMARY_FORMAT`).
    pub upload_options: SummaryOptions,
}

impl Config {
    /// Reads the settings.
    pub fn from_env() -> Result<Self, TaskError> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let defaults = Plan::default();
        let config = Self {
            output_bucket: std::env::var("OUTPUT_BUCKET")
                .ok()
                .filter(|b| !b.is_empty()),
            input_prefix: var("INPUT_PREFIX", "incoming/"),
            summary_prefix: var("SUMMARY_PREFIX", "summaries/"),
            failure_prefix: var("FAILURE_PREFIX", "failed/"),
            result_prefix: var("RESULT_PREFIX", "results/"),
            max_document_bytes: env_limit("MAX_DOCUMENT_BYTES", 20 * 1024 * 1024)?,
            max_text_bytes: env_limit("MAX_TEXT_BYTES", 4 * 1024 * 1024)?,
            max_request_bytes: env_limit("MAX_REQUEST_BYTES", 1024 * 1024)?,
            plan: Plan {
                concurrency: usize::try_from(env_limit(
                    "SUMMARY_CONCURRENCY",
                    defaults.concurrency as u64,
                )?)
                .unwrap_or(defaults.concurrency),
                overlap_per_mille: u32::try_from(env_limit(
                    "CHUNK_OVERLAP_PER_MILLE",
                    defaults.overlap_per_mille.into(),
                )?)
                .unwrap_or(defaults.overlap_per_mille)
                .min(250),
                part_summary_tokens: u32::try_from(env_limit(
                    "PART_SUMMARY_TOKENS",
                    defaults.part_summary_tokens.into(),
                )?)
                .unwrap_or(defaults.part_summary_tokens)
                .min(2048),
            },
            upload_options: upload_options()?,
        };
        if [
            &config.summary_prefix,
            &config.failure_prefix,
            &config.result_prefix,
        ]
        .iter()
        .any(|p| p.is_empty())
        {
            return Err(TaskError::InvalidInput(
                "SUMMARY_PREFIX, FAILURE_PREFIX and RESULT_PREFIX must not be empty".into(),
            ));
        }
        Ok(config)
    }

    /// Whether `key` is one of this function's own outputs (never processed: no loops).
    pub fn is_own_output(&self, key: &str) -> bool {
        [
            &self.summary_prefix,
            &self.failure_prefix,
            &self.result_prefix,
        ]
        .iter()
        .any(|p| key.starts_with(p.as_str()))
    }
}

/// `SUMMARY_LENGTH` (short/medium/long) and `SUMMARY_FORMAT` (paragraph/bullets) for
/// S3-triggered summaries.
fn upload_options() -> Result<SummaryOptions, TaskError> {
    let mut fields = serde_json::Map::new();
    for (var, field) in [("SUMMARY_LENGTH", "length"), ("SUMMARY_FORMAT", "format")] {
        if let Ok(value) = std::env::var(var) {
            fields.insert(field.into(), value.trim().to_ascii_lowercase().into());
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| TaskError::InvalidInput(format!("SUMMARY_LENGTH / SUMMARY_FORMAT: {e}")))
}
