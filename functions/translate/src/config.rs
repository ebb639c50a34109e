//! The function's limits and knobs, read once per cold start from the environment.

use bedrock::params::MAX_GEN_LEN_LIMIT;
use lambda_kit::TaskError;

/// Limits and knobs of the translate function.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `TRANSLATE_MAX_BODY_BYTES` | largest HTTP request body | 262144 |
/// | `TRANSLATE_MAX_TEXT_BYTES` | largest text to translate (UTF-8 bytes) | 204800 |
/// | `TRANSLATE_MAX_OBJECT_BYTES` | largest S3 object read | 409600 |
/// | `TRANSLATE_MAX_GLOSSARY_ENTRIES` | most glossary entries | 100 |
/// | `TRANSLATE_MAX_TERM_CHARS` | longest glossary term or translation, in characters | 200 |
/// | `TRANSLATE_CONCURRENCY` | chunks translated at once (1-32) | 4 |
/// | `TRANSLATE_MAX_GEN_LEN` | most tokens generated per model call (1-2048) | 2048 |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest HTTP request body in bytes.
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

/// The environment variables [`Config::from_env`] reads.
pub const ENV_VARS: [&str; 7] = [
    "TRANSLATE_MAX_BODY_BYTES",
    "TRANSLATE_MAX_TEXT_BYTES",
    "TRANSLATE_MAX_OBJECT_BYTES",
    "TRANSLATE_MAX_GLOSSARY_ENTRIES",
    "TRANSLATE_MAX_TERM_CHARS",
    "TRANSLATE_CONCURRENCY",
    "TRANSLATE_MAX_GEN_LEN",
];

impl Config {
    /// Reads the configuration from the process environment (see [`ENV_VARS`]).
    pub fn from_env() -> Result<Self, TaskError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a variable name to its value); unset or
    /// blank variables keep their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, TaskError> {
        let defaults = Self::default();
        let number = |name: &'static str, default: u64, max: u64| -> Result<u64, TaskError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        TaskError::InvalidInput(format!(
                            "{name} must be an integer from 1 to {max}, got {raw:?}"
                        ))
                    }),
            }
        };
        let size = |name, default: usize| {
            number(name, default as u64, u64::from(u32::MAX))
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        Ok(Self {
            max_body_bytes: size("TRANSLATE_MAX_BODY_BYTES", defaults.max_body_bytes)?,
            max_text_bytes: size("TRANSLATE_MAX_TEXT_BYTES", defaults.max_text_bytes)?,
            max_object_bytes: number(
                "TRANSLATE_MAX_OBJECT_BYTES",
                defaults.max_object_bytes,
                u64::from(u32::MAX),
            )?,
            max_glossary_entries: size(
                "TRANSLATE_MAX_GLOSSARY_ENTRIES",
                defaults.max_glossary_entries,
            )?,
            max_term_chars: size("TRANSLATE_MAX_TERM_CHARS", defaults.max_term_chars)?,
            concurrency: usize::try_from(number(
                "TRANSLATE_CONCURRENCY",
                defaults.concurrency as u64,
                32,
            )?)
            .unwrap_or(defaults.concurrency),
            max_gen_len: u32::try_from(number(
                "TRANSLATE_MAX_GEN_LEN",
                defaults.max_gen_len.into(),
                MAX_GEN_LEN_LIMIT.into(),
            )?)
            .unwrap_or(defaults.max_gen_len),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_unset_and_values_when_set() {
        assert_eq!(Config::from_lookup(|_| None).unwrap(), Config::default());
        let config = Config::from_lookup(|name| match name {
            "TRANSLATE_CONCURRENCY" => Some("8".into()),
            "TRANSLATE_MAX_GEN_LEN" => Some(" 512 ".into()),
            "TRANSLATE_MAX_TEXT_BYTES" => Some("".into()),
            _ => None,
        })
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
            let err = Config::from_lookup(|n| (n == name).then(|| value.to_owned())).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
