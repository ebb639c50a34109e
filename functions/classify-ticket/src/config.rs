//! Settings read once per cold start: input limits, generation length and the taxonomy.

use serde::{Deserialize, Serialize};
use settings::{ConfigError, Settings, in_range};

use crate::taxonomy::Taxonomy;

/// The default of `CLASSIFY_REVIEW_BELOW_CONFIDENCE`: a model less than even odds sure of
/// its category has a person look.
pub const DEFAULT_REVIEW_BELOW_CONFIDENCE: f64 = 0.5;

/// The default of `CLASSIFY_MAX_GEN_LEN`, which each call reserves from the
/// tokens-per-minute quota. The longest well-formed answer with the built-in taxonomy
/// (longest names, a rationale at its 300-character cap, pretty-printed JSON) takes
/// 129 Llama 3.2 tokens in English, 154 in Spanish, 198 in Thai and 209 in Hindi (the
/// rationale may follow the ticket's language); 256 is 1.22 times the worst. Sizing it to
/// the worst (224) would save 32 of the 700 or more tokens a call reserves (the system
/// prompt alone is 423), while an answer cut off costs a repair call that reserves its
/// prompt and `max_gen_len` again.
pub const DEFAULT_MAX_GEN_LEN: u32 = 256;

/// Size limits on a ticket, checked before any model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest HTTP body or Step Functions input, in bytes (`CLASSIFY_MAX_REQUEST_BYTES`).
    pub max_request_bytes: usize,
    /// Longest subject, in characters (`CLASSIFY_MAX_SUBJECT_CHARS`).
    pub max_subject_chars: usize,
    /// Longest body, in characters (`CLASSIFY_MAX_BODY_CHARS`).
    pub max_body_chars: usize,
    /// Largest `metadata` object, in bytes of compact JSON (`CLASSIFY_MAX_METADATA_BYTES`).
    pub max_metadata_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        ClassifySettings::default().limits()
    }
}

/// The environment variables of classify-ticket (the README's table lists them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassifySettings {
    /// Largest HTTP body or task input, in bytes.
    pub classify_max_request_bytes: usize,
    /// Longest subject, in characters.
    pub classify_max_subject_chars: usize,
    /// Longest body, in characters.
    pub classify_max_body_chars: usize,
    /// Largest `metadata`, in bytes of compact JSON.
    pub classify_max_metadata_bytes: usize,
    /// `max_gen_len` of each model call.
    pub classify_max_gen_len: u32,
    /// A classification whose confidence is below this (0-1) gets `needs_review`.
    pub classify_review_below_confidence: f64,
    /// `TAXONOMY_JSON`: the taxonomy, inline.
    pub taxonomy_json: Option<String>,
    /// `TAXONOMY_FILE`: a path to the taxonomy.
    pub taxonomy_file: Option<String>,
}

impl Default for ClassifySettings {
    fn default() -> Self {
        Self {
            classify_max_request_bytes: 64 * 1024,
            classify_max_subject_chars: 500,
            classify_max_body_chars: 20_000,
            classify_max_metadata_bytes: 4 * 1024,
            classify_max_gen_len: DEFAULT_MAX_GEN_LEN,
            classify_review_below_confidence: DEFAULT_REVIEW_BELOW_CONFIDENCE,
            taxonomy_json: None,
            taxonomy_file: None,
        }
    }
}

impl ClassifySettings {
    /// The size limits these settings set.
    pub fn limits(&self) -> Limits {
        Limits {
            max_request_bytes: self.classify_max_request_bytes,
            max_subject_chars: self.classify_max_subject_chars,
            max_body_chars: self.classify_max_body_chars,
            max_metadata_bytes: self.classify_max_metadata_bytes,
        }
    }
}

impl Settings for ClassifySettings {
    const PREFIX: &'static str = "";

    fn validate(&self) -> Result<(), ConfigError> {
        in_range(
            "CLASSIFY_MAX_REQUEST_BYTES",
            self.classify_max_request_bytes,
            1,
            6 * 1024 * 1024,
        )?;
        in_range(
            "CLASSIFY_MAX_SUBJECT_CHARS",
            self.classify_max_subject_chars,
            1,
            100_000,
        )?;
        in_range(
            "CLASSIFY_MAX_BODY_CHARS",
            self.classify_max_body_chars,
            1,
            2_000_000,
        )?;
        in_range(
            "CLASSIFY_MAX_METADATA_BYTES",
            self.classify_max_metadata_bytes,
            2,
            1024 * 1024,
        )?;
        in_range(
            "CLASSIFY_MAX_GEN_LEN",
            self.classify_max_gen_len,
            32,
            bedrock::params::MAX_GEN_LEN_LIMIT,
        )?;
        in_range(
            "CLASSIFY_REVIEW_BELOW_CONFIDENCE",
            self.classify_review_below_confidence,
            0.0,
            1.0,
        )
    }
}

/// Everything the handler needs besides the Bedrock client.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Input limits.
    pub limits: Limits,
    /// `max_gen_len` of each model call.
    pub max_gen_len: u32,
    /// A classification whose confidence is below this gets `needs_review`.
    pub review_below_confidence: f64,
    /// Categories, priorities and routing.
    pub taxonomy: Taxonomy,
}

impl TryFrom<ClassifySettings> for Config {
    type Error = ConfigError;

    fn try_from(s: ClassifySettings) -> Result<Self, ConfigError> {
        let limits = s.limits();
        let json = s.taxonomy_json.as_deref();
        let file = s.taxonomy_file.as_deref();
        let taxonomy = Taxonomy::from_sources(json, file).map_err(|e| {
            let variable = if file.is_some() && json.is_none() {
                "TAXONOMY_FILE"
            } else {
                "TAXONOMY_JSON"
            };
            ConfigError::new(variable, e.to_string())
        })?;
        Ok(Self {
            limits,
            max_gen_len: s.classify_max_gen_len,
            review_below_confidence: s.classify_review_below_confidence,
            taxonomy,
        })
    }
}

impl Config {
    /// The settings in `vars` (name, value pairs), defaults for the rest.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Result<Self, ConfigError> {
        settings::from_vars::<ClassifySettings>(vars)?.try_into()
    }

    /// The defaults: built-in taxonomy and limits.
    pub fn builtin() -> Result<Self, ConfigError> {
        ClassifySettings::default().try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [(&str, &str); 0] = [];

    #[test]
    fn defaults_when_unset() {
        let config = Config::from_vars(NONE).unwrap();
        assert_eq!(config, Config::builtin().unwrap());
        assert_eq!(config.limits.max_body_chars, 20_000);
        assert_eq!(config.limits.max_request_bytes, 65_536);
        assert_eq!(config.max_gen_len, DEFAULT_MAX_GEN_LEN);
    }

    #[test]
    fn reads_every_limit() {
        let config = Config::from_vars([
            ("CLASSIFY_MAX_REQUEST_BYTES", "1000"),
            ("CLASSIFY_MAX_SUBJECT_CHARS", "10"),
            ("CLASSIFY_MAX_BODY_CHARS", " 20 "),
            ("CLASSIFY_MAX_METADATA_BYTES", "30"),
            ("CLASSIFY_MAX_GEN_LEN", "64"),
            ("CLASSIFY_REVIEW_BELOW_CONFIDENCE", "0.75"),
        ])
        .unwrap();
        assert_eq!(config.review_below_confidence, 0.75);
        assert_eq!(
            config.limits,
            Limits {
                max_request_bytes: 1000,
                max_subject_chars: 10,
                max_body_chars: 20,
                max_metadata_bytes: 30,
            }
        );
        assert_eq!(config.max_gen_len, 64);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("CLASSIFY_MAX_BODY_CHARS", "0"),
            ("CLASSIFY_MAX_BODY_CHARS", "lots"),
            ("CLASSIFY_MAX_GEN_LEN", "4096"),
            ("CLASSIFY_REVIEW_BELOW_CONFIDENCE", "1.5"),
            ("CLASSIFY_MAX_REQUEST_BYTES", "-1"),
            ("TAXONOMY_JSON", "[]"),
            ("TAXONOMY_FILE", "/no/such/taxonomy.json"),
        ] {
            let err = Config::from_vars([(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{err}");
        }
    }
}
