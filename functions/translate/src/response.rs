//! What a translation returns, to HTTP callers and Step Functions alike.

use serde::Serialize;
use text::Language;

use crate::document::DocumentRef;
use crate::glossary::GlossaryViolation;
use bedrock::UsageTotals;

/// The result of a translation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranslationResponse {
    /// The translated text (the text itself when source and target are the same);
    /// left out when it was written to S3 (`output_key`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub translation: String,
    /// The source language, given or detected.
    pub source_language: Language,
    /// Whether the source language was detected rather than given.
    pub detected: bool,
    pub target_language: Language,
    /// The model that translated; `null` when no model call was needed.
    pub model: Option<String>,
    /// Chunks the text was translated in.
    pub chunks: usize,
    /// Tokens and calls spent.
    pub usage: UsageTotals,
    /// Glossary terms the translation does not render as required.
    pub glossary_violations: Vec<GlossaryViolation>,
    /// The S3 object translated, for document input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentRef>,
    /// Where the translation was written, when the task asked for `output_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
}
