//! The function's limits and knobs, read once per cold start from the environment.

use bedrock::params::MAX_GEN_LEN_LIMIT;
use serde::{Deserialize, Serialize};
use settings::{ConfigError, Settings, in_range};

/// Limits and knobs of the translate function; each field is a `TRANSLATE_*` variable
/// (the README's table, checked against this struct by a test, says what each means).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Largest HTTP request body or task input, in bytes.
    pub max_body_bytes: usize,
    /// Largest text to translate, in UTF-8 bytes.
    pub max_text_bytes: usize,
    /// Largest S3 object read, in bytes (UTF-16 text takes up to twice its UTF-8 size).
    pub max_object_bytes: u64,
    /// Most glossary entries.
    pub max_glossary_entries: usize,
    /// Longest glossary term or translation, in characters.
    pub max_term_chars: usize,
    /// Chunks translated at once.
    pub concurrency: usize,
    /// Most tokens generated per model call.
    pub max_gen_len: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_text_bytes: 200 * 1024,
            max_object_bytes: 400 * 1024,
            max_glossary_entries: 100,
            max_term_chars: 200,
            concurrency: 4,
            max_gen_len: MAX_GEN_LEN_LIMIT,
        }
    }
}

impl Settings for Config {
    const PREFIX: &'static str = "TRANSLATE_";

    fn validate(&self) -> Result<(), ConfigError> {
        const MAX_SIZE: usize = u32::MAX as usize;
        in_range("TRANSLATE_MAX_BODY_BYTES", self.max_body_bytes, 1, MAX_SIZE)?;
        in_range("TRANSLATE_MAX_TEXT_BYTES", self.max_text_bytes, 1, MAX_SIZE)?;
        in_range(
            "TRANSLATE_MAX_OBJECT_BYTES",
            self.max_object_bytes,
            1,
            u64::from(u32::MAX),
        )?;
        in_range(
            "TRANSLATE_MAX_GLOSSARY_ENTRIES",
            self.max_glossary_entries,
            1,
            MAX_SIZE,
        )?;
        in_range("TRANSLATE_MAX_TERM_CHARS", self.max_term_chars, 1, MAX_SIZE)?;
        in_range("TRANSLATE_CONCURRENCY", self.concurrency, 1, 32)?;
        in_range(
            "TRANSLATE_MAX_GEN_LEN",
            self.max_gen_len,
            1,
            MAX_GEN_LEN_LIMIT,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<const N: usize>(pairs: [(&str, &str); N]) -> Result<Config, ConfigError> {
        settings::from_vars(pairs)
    }

    #[test]
    fn defaults_when_unset_and_values_when_set() {
        assert_eq!(read([]).unwrap(), Config::default());
        let config = read([
            ("TRANSLATE_CONCURRENCY", "8"),
            ("TRANSLATE_MAX_GEN_LEN", " 512 "),
            ("TRANSLATE_MAX_TEXT_BYTES", ""),
        ])
        .unwrap();
        assert_eq!(config.concurrency, 8);
        assert_eq!(config.max_gen_len, 512);
        assert_eq!(config.max_text_bytes, Config::default().max_text_bytes);
    }

    #[test]
    fn out_of_range_values_name_the_variable() {
        for (name, value) in [
            ("TRANSLATE_CONCURRENCY", "0"),
            ("TRANSLATE_CONCURRENCY", "33"),
            ("TRANSLATE_MAX_GEN_LEN", "4096"),
            ("TRANSLATE_MAX_BODY_BYTES", "lots"),
        ] {
            let err = read([(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{err}");
        }
    }
}
