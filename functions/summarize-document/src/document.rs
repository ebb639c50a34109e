//! One document: read it, extract its text, detect its language, summarize it, and build
//! the result record.

use std::time::Instant;

use bedrock::Deadline;
use lambda_kit::TaskError;
use lambda_kit::storage::StoredObject;
use serde::Serialize;
use text::Language;

use crate::App;
use crate::options::SummaryOptions;
use crate::summarize::summarize;

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub bucket: String,
    /// Key (decoded).
    pub key: String,
    /// ETag of the version read.
    pub etag: Option<String>,
    /// Version id, when versioned.
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// The S3 event's `sequencer`, which orders the versions of one key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

/// Timings of one document, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// Reading and extracting text.
    pub extract_ms: u64,
    /// Model calls.
    pub model_ms: u64,
    /// Everything.
    pub total_ms: u64,
}

/// The result record written to `summaries/<key>.json` and returned to callers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRecord {
    pub summary: String,
    /// The source object, when the text came from S3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Detected document language (`null` when undetermined).
    pub language: Option<Language>,
    /// Language of the summary.
    pub output_language: Language,
    /// Format of the source document.
    pub format: &'static str,
    /// The model that answered.
    pub model: String,
    /// Tokens and calls.
    pub usage: bedrock::UsageTotals,
    /// Parts the document was split into.
    pub parts: usize,
    /// Whether the summary hit its length limit.
    pub truncated: bool,
    /// The options used.
    pub options: SummaryOptions,
    pub timings: Timings,
}

/// Milliseconds since `since`.
pub(crate) fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Summarizes text that is already extracted.
pub async fn summarize_text(
    app: &App,
    text: &str,
    format: &'static str,
    source: Option<Source>,
    options: SummaryOptions,
    deadline: Deadline,
    started: Instant,
) -> Result<SummaryRecord, TaskError> {
    let extract_ms = ms(started);
    let (language, output_language) = check_text(app, text, &options)?;
    let model_started = Instant::now();
    // HTTP requests and their jobs (the only callers that stream the final call) run
    // their parts within the HTTP share; the queue, batch and task lanes within theirs.
    let plan = if options.stream {
        app.config.http_plan()
    } else {
        app.config.plan()
    };
    let summary = summarize(&app.llama, text, &options, output_language, &plan, deadline).await?;
    Ok(SummaryRecord {
        summary: summary.summary,
        source,
        language,
        output_language,
        format,
        model: summary.model,
        usage: summary.usage,
        parts: summary.parts,
        truncated: summary.truncated,
        options,
        timings: Timings {
            extract_ms,
            model_ms: ms(model_started),
            total_ms: ms(started),
        },
    })
}

/// Refuses text over the limit or without content, before any model call; gives the
/// detected language and the summary's language.
pub(crate) fn check_text(
    app: &App,
    text: &str,
    options: &SummaryOptions,
) -> Result<(Option<Language>, Language), TaskError> {
    if text.len() as u64 > app.config.max_text_bytes {
        return Err(TaskError::InputTooLarge(format!(
            "the document's text is {} bytes; the limit is {}",
            text.len(),
            app.config.max_text_bytes
        )));
    }
    if text.trim().is_empty() {
        return Err(TaskError::UnsupportedDocument(
            "the document contains no text".into(),
        ));
    }
    let language = text::detect_confident(text).map(|d| d.language);
    Ok((
        language,
        options.language.or(language).unwrap_or(Language::English),
    ))
}

/// Summarizes text sent inline (HTTP body or task input).
pub async fn summarize_inline(
    app: &App,
    text: &str,
    options: SummaryOptions,
    deadline: Deadline,
) -> Result<SummaryRecord, TaskError> {
    summarize_text(app, text, "text", None, options, deadline, Instant::now()).await
}

/// Reads `bucket/key` from S3, extracts its text and summarizes it.
pub async fn summarize_object(
    app: &App,
    bucket: &str,
    key: &str,
    options: SummaryOptions,
    deadline: Deadline,
) -> Result<SummaryRecord, TaskError> {
    let started = Instant::now();
    let object =
        lambda_kit::storage::get_object(&app.s3, bucket, key, app.config.max_document_bytes)
            .await?;
    summarize_stored(app, bucket, key, object, options, deadline, started).await
}

/// Extracts the text of an object already read from S3 and summarizes it.
pub async fn summarize_stored(
    app: &App,
    bucket: &str,
    key: &str,
    object: StoredObject,
    options: SummaryOptions,
    deadline: Deadline,
    started: Instant,
) -> Result<SummaryRecord, TaskError> {
    let extracted = extract_text(&object.bytes, key, object.content_type.as_deref())?;
    let source = Source {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag: object.etag,
        version_id: object.version_id,
        size: object.bytes.len() as u64,
        sequencer: None,
    };
    summarize_text(
        app,
        &extracted.text,
        extracted.format.as_str(),
        Some(source),
        options,
        deadline,
        started,
    )
    .await
}

/// Extracts a document's text; an archive that unpacks too large is `InputTooLarge`,
/// anything else that yields no text is `UnsupportedDocument`.
pub fn extract_text(
    bytes: &[u8],
    key: &str,
    content_type: Option<&str>,
) -> Result<text::Extracted, TaskError> {
    Ok(text::extract::extract(bytes, key, content_type)?)
}
