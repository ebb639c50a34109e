//! Settings read once per cold start: input limits, generation length and the taxonomy.

use crate::taxonomy::{Taxonomy, TaxonomyError};

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
        Self {
            max_request_bytes: 64 * 1024,
            max_subject_chars: 500,
            max_body_chars: 20_000,
            max_metadata_bytes: 4 * 1024,
        }
    }
}

/// Default `max_gen_len` for a classification answer (a small JSON object).
pub const DEFAULT_MAX_GEN_LEN: u32 = 256;

/// Everything the handler needs besides the Bedrock client.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Input limits.
    pub limits: Limits,
    /// `max_gen_len` of each model call (`CLASSIFY_MAX_GEN_LEN`).
    pub max_gen_len: u32,
    /// Categories, priorities and routing (`TAXONOMY_JSON` / `TAXONOMY_FILE`).
    pub taxonomy: Taxonomy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_gen_len: DEFAULT_MAX_GEN_LEN,
            taxonomy: Taxonomy::builtin(),
        }
    }
}

/// A setting that cannot be used; the function refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A numeric variable is not a number in its range.
    #[error("{name} must be an integer from {min} to {max}, got {value:?}")]
    Number {
        /// The variable.
        name: &'static str,
        /// What it holds.
        value: String,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// The taxonomy is missing, unreadable or invalid.
    #[error(transparent)]
    Taxonomy(#[from] TaxonomyError),
}

/// The environment variables [`Config::from_env`] reads, besides the Bedrock client's.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `CLASSIFY_MAX_REQUEST_BYTES` | largest request body / task input | 65536 |
/// | `CLASSIFY_MAX_SUBJECT_CHARS` | longest subject | 500 |
/// | `CLASSIFY_MAX_BODY_CHARS` | longest body | 20000 |
/// | `CLASSIFY_MAX_METADATA_BYTES` | largest `metadata` (compact JSON) | 4096 |
/// | `CLASSIFY_MAX_GEN_LEN` | `max_gen_len` per model call (32-2048) | 256 |
/// | `TAXONOMY_JSON` / `TAXONOMY_FILE` | taxonomy inline or from a file (not both) | built-in |
pub const ENV_VARS: [&str; 7] = [
    "CLASSIFY_MAX_REQUEST_BYTES",
    "CLASSIFY_MAX_SUBJECT_CHARS",
    "CLASSIFY_MAX_BODY_CHARS",
    "CLASSIFY_MAX_METADATA_BYTES",
    "CLASSIFY_MAX_GEN_LEN",
    "TAXONOMY_JSON",
    "TAXONOMY_FILE",
];

impl Config {
    /// Reads the settings from the process environment (see [`ENV_VARS`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable name to its value).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: usize, min: u64, max: u64| match lookup(name)
            .filter(|v| !v.trim().is_empty())
        {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(ConfigError::Number {
                    name,
                    value,
                    min,
                    max,
                }),
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_request_bytes: number(
                "CLASSIFY_MAX_REQUEST_BYTES",
                defaults.max_request_bytes,
                1,
                6 * 1024 * 1024,
            )?,
            max_subject_chars: number(
                "CLASSIFY_MAX_SUBJECT_CHARS",
                defaults.max_subject_chars,
                1,
                100_000,
            )?,
            max_body_chars: number(
                "CLASSIFY_MAX_BODY_CHARS",
                defaults.max_body_chars,
                1,
                2_000_000,
            )?,
            max_metadata_bytes: number(
                "CLASSIFY_MAX_METADATA_BYTES",
                defaults.max_metadata_bytes,
                2,
                1024 * 1024,
            )?,
        };
        let max_gen_len = number(
            "CLASSIFY_MAX_GEN_LEN",
            DEFAULT_MAX_GEN_LEN as usize,
            32,
            u64::from(bedrock::params::MAX_GEN_LEN_LIMIT),
        )?;
        Ok(Self {
            limits,
            max_gen_len: u32::try_from(max_gen_len).unwrap_or(DEFAULT_MAX_GEN_LEN),
            taxonomy: Taxonomy::from_lookup(&lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_unset() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.limits.max_body_chars, 20_000);
        assert_eq!(config.limits.max_request_bytes, 65_536);
    }

    #[test]
    fn reads_every_limit() {
        let config = Config::from_lookup(|name| {
            Some(
                match name {
                    "CLASSIFY_MAX_REQUEST_BYTES" => "1000",
                    "CLASSIFY_MAX_SUBJECT_CHARS" => "10",
                    "CLASSIFY_MAX_BODY_CHARS" => " 20 ",
                    "CLASSIFY_MAX_METADATA_BYTES" => "30",
                    "CLASSIFY_MAX_GEN_LEN" => "64",
                    _ => return None,
                }
                .into(),
            )
        })
        .unwrap();
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
            ("CLASSIFY_MAX_REQUEST_BYTES", "-1"),
        ] {
            let err = Config::from_lookup(|n| (n == name).then(|| value.to_owned())).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let err =
            Config::from_lookup(|n| (n == "TAXONOMY_JSON").then(|| "[]".to_owned())).unwrap_err();
        assert!(matches!(err, ConfigError::Taxonomy(_)), "{err}");
    }
}
