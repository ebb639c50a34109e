//! What callers send: the HTTP body, the Step Functions task input, and their checks.

use lambda_kit::TaskError;
use serde::Deserialize;
use text::Language;

use crate::config::Config;
use crate::document::DocumentRef;
use crate::glossary::{Glossary, GlossaryEntry};

/// The body of `POST /translations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// The text to translate.
    pub text: String,
    /// The language to translate into: ISO 639-1 code or English name.
    pub target_language: String,
    /// The text's language; detected when absent.
    #[serde(default)]
    pub source_language: Option<String>,
    /// Terms with required renderings.
    #[serde(default)]
    pub glossary: Option<Vec<GlossaryEntry>>,
}

/// A Step Functions task input: `text`, or `bucket` and `key` of an S3 object holding the
/// text (UTF-8, or UTF-16 with a byte-order mark).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// The text to translate.
    #[serde(default)]
    pub text: Option<String>,
    /// The bucket of the S3 object to translate.
    #[serde(default)]
    pub bucket: Option<String>,
    /// The key of the S3 object to translate (not URL-encoded).
    #[serde(default)]
    pub key: Option<String>,
    /// The language to translate into: ISO 639-1 code or English name.
    pub target_language: String,
    /// The text's language; detected when absent.
    #[serde(default)]
    pub source_language: Option<String>,
    /// Terms with required renderings.
    #[serde(default)]
    pub glossary: Option<Vec<GlossaryEntry>>,
    /// With S3 input: write the translation to this key of the same bucket and leave it
    /// out of the result (Step Functions state must stay under 256 KB).
    #[serde(default)]
    pub output_key: Option<String>,
}

/// Where a task's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSource {
    /// Given inline.
    Text(String),
    /// An S3 object.
    Document(DocumentRef),
}

impl TaskInput {
    /// The text or the S3 object, exactly one of them.
    pub fn source(&mut self) -> Result<TaskSource, TaskError> {
        match (self.text.take(), self.bucket.take(), self.key.take()) {
            (Some(text), None, None) => Ok(TaskSource::Text(text)),
            (None, Some(bucket), Some(key)) => {
                Ok(TaskSource::Document(DocumentRef { bucket, key }))
            }
            _ => Err(TaskError::InvalidInput(
                "give either `text`, or `bucket` and `key` of an S3 object".into(),
            )),
        }
    }
}

/// Checked options of a translation request.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The language to translate into.
    pub target: Language,
    /// The text's language, if the caller named it.
    pub source: Option<Language>,
    /// The glossary (possibly empty).
    pub glossary: Glossary,
}

impl Options {
    /// Parses the languages (an unsupported one is `InvalidInput` listing the supported
    /// ones; a blank or `auto` source means "detect") and validates the glossary.
    pub fn parse(
        target_language: &str,
        source_language: Option<&str>,
        glossary: Option<Vec<GlossaryEntry>>,
        config: &Config,
    ) -> Result<Self, TaskError> {
        let target = language("target_language", target_language)?;
        let source = match source_language.map(str::trim) {
            None | Some("") => None,
            Some(s) if s.eq_ignore_ascii_case("auto") => None,
            Some(s) => Some(language("source_language", s)?),
        };
        let glossary = Glossary::new(
            glossary.unwrap_or_default(),
            config.max_glossary_entries,
            config.max_term_chars,
        )?;
        Ok(Self {
            target,
            source,
            glossary,
        })
    }
}

fn language(field: &str, value: &str) -> Result<Language, TaskError> {
    if value.trim().is_empty() {
        return Err(TaskError::InvalidInput(format!(
            "{field} is empty; supported: {}",
            Language::supported_list()
        )));
    }
    value
        .parse()
        .map_err(|e| TaskError::InvalidInput(format!("{field}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_by_code_or_name_and_auto_source() {
        let config = Config::default();
        let o = Options::parse("German", Some("auto"), None, &config).unwrap();
        assert_eq!((o.target, o.source), (Language::German, None));
        let o = Options::parse("th", Some(" EN "), None, &config).unwrap();
        assert_eq!(
            (o.target, o.source),
            (Language::Thai, Some(Language::English))
        );
        for (target, source) in [("ja", None), ("", None), ("de", Some("klingon"))] {
            let err = Options::parse(target, source, None, &config).unwrap_err();
            assert_eq!(err.error_type(), "InvalidInput");
            let msg = err.to_string();
            assert!(msg.contains("supported: en (English)"), "{msg}");
            assert!(msg.contains("_language"), "{msg}");
        }
    }
}
