//! The document workflow's steps (Step Functions tasks with an `action`): prepare the
//! text, plan the parts, summarize one part (inside a Map), combine, and write the
//! result or failure record. Large texts travel through S3, never through state input.

use bedrock::{Deadline, UsageTotals};
use lambda_kit::TaskError;
use lambda_kit::storage::{get_object, put_json, put_text};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use text::Language;

use crate::App;
use crate::document::extract_text;
use crate::options::SummaryOptions;
use crate::summarize::{Sizes, combine, summarize_part, summarize_whole};

/// One workflow step.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Read and extract the document, detect its language, store its text under `work_prefix`.
    Prepare {
        /// Source bucket.
        bucket: String,
        /// Source key.
        key: String,
        /// Where this execution keeps its working files (e.g. `work/<execution>/`).
        work_prefix: String,
        /// The language the workflow works in (translation target); default English.
        #[serde(default)]
        working_language: Option<Language>,
    },
    /// Split a stored text into parts that fit the window.
    Plan {
        /// Bucket of the text.
        bucket: String,
        /// Key of the UTF-8 text.
        text_key: String,
        /// Language of the text (and of the summaries).
        language: Language,
    },
    /// Summarize one part (a byte range of the stored text).
    SummarizePart {
        /// Bucket of the text.
        bucket: String,
        /// Key of the text.
        text_key: String,
        /// Start byte.
        start: usize,
        /// End byte (exclusive).
        end: usize,
        /// 1-based part number.
        index: usize,
        /// Number of parts.
        total: usize,
        /// Language of the summary.
        language: Language,
    },
    /// Combine part summaries, in order, into the final summary.
    Combine {
        /// Part summaries in order.
        summaries: Vec<String>,
        /// Language of the summary.
        language: Language,
        /// Summary options.
        #[serde(default)]
        options: SummaryOptions,
    },
    /// Write the workflow's result record to `results/<key>.json`.
    WriteResult {
        /// Bucket.
        bucket: String,
        /// Source key.
        key: String,
        /// The record.
        result: Value,
    },
    /// Write a failure record to `failed/<key>.json` from a Catch's error output.
    WriteFailure {
        /// Bucket.
        bucket: String,
        /// Source key.
        key: String,
        /// `{"Error": ..., "Cause": ...}` from the Catch.
        error: Value,
    },
}

/// A part of the stored text, as the Map state's items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartRef {
    /// Always `summarize_part`, so items are ready-made task inputs.
    pub action: &'static str,
    /// Bucket of the text.
    pub bucket: String,
    pub text_key: String,
    /// Start byte.
    pub start: usize,
    /// End byte.
    pub end: usize,
    /// 1-based part number.
    pub index: usize,
    /// Number of parts.
    pub total: usize,
    /// Summary language.
    pub language: Language,
}

/// Runs one workflow step.
pub async fn run(app: &App, step: Step, deadline: Deadline) -> Result<Value, TaskError> {
    match step {
        Step::Prepare {
            bucket,
            key,
            work_prefix,
            working_language,
        } => {
            let object = get_object(&app.s3, &bucket, &key, app.config.max_document_bytes).await?;
            let extracted = extract_text(&object.bytes, &key, object.content_type.as_deref())?;
            if extracted.text.len() as u64 > app.config.max_text_bytes {
                return Err(TaskError::InputTooLarge(format!(
                    "the document's text is {} bytes; the limit is {}",
                    extracted.text.len(),
                    app.config.max_text_bytes
                )));
            }
            let language = text::detect(&extracted.text).map(|d| d.language);
            let working = working_language.unwrap_or(Language::English);
            let text_key = format!("{}source.txt", with_slash(&work_prefix));
            put_text(&app.s3, &bucket, &text_key, &extracted.text).await?;
            Ok(json!({
                "bucket": bucket,
                "key": key,
                "etag": object.etag,
                "size": object.bytes.len(),
                "format": extracted.format.as_str(),
                "text_key": text_key,
                "language": language,
                "working_language": working,
                "needs_translation": language.is_some_and(|l| l != working),
                "estimated_tokens": bedrock::estimate_tokens(&extracted.text),
            }))
        }
        Step::Plan {
            bucket,
            text_key,
            language,
        } => {
            let text = read_text(app, &bucket, &text_key).await?;
            let sizes = Sizes::new(
                &app.llama,
                &SummaryOptions::default(),
                &app.config.plan(),
                language,
            );
            let parts = text::split(&text, sizes.part_tokens, sizes.overlap);
            let total = parts.len();
            let items: Vec<PartRef> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| PartRef {
                    action: "summarize_part",
                    bucket: bucket.clone(),
                    text_key: text_key.clone(),
                    start: p.start,
                    end: p.start + p.text.len(),
                    index: i + 1,
                    total,
                    language,
                })
                .collect();
            Ok(json!({ "parts": items, "count": total }))
        }
        Step::SummarizePart {
            bucket,
            text_key,
            start,
            end,
            index,
            total,
            language,
        } => {
            let text = read_text(app, &bucket, &text_key).await?;
            let part = text.get(start..end).ok_or_else(|| {
                TaskError::InvalidInput(format!(
                    "part {start}..{end} is not a character range of {text_key}"
                ))
            })?;
            let options = SummaryOptions::default();
            let sizes = Sizes::new(&app.llama, &options, &app.config.plan(), language);
            // A one-part document gets its final summary here; combining a single
            // summary passes it through.
            let (summary, model, usage) =
                if total == 1 && sizes.fits_whole(part, &options, language) {
                    let s = summarize_whole(&app.llama, part, &options, language, &sizes, deadline)
                        .await?;
                    (s.summary, s.model, s.usage)
                } else {
                    let done =
                        summarize_part(&app.llama, part, index, total, language, &sizes, deadline)
                            .await?;
                    let usage = UsageTotals::of(&done);
                    (done.generation.trim().to_owned(), done.model_id, usage)
                };
            Ok(json!({
                "summary": summary,
                "model": model,
                "usage": usage,
            }))
        }
        Step::Combine {
            summaries,
            language,
            options,
        } => {
            if summaries.is_empty() {
                return Err(TaskError::InvalidInput("no summaries to combine".into()));
            }
            let sizes = Sizes::new(&app.llama, &options, &app.config.plan(), language);
            let summary = combine(
                &app.llama,
                summaries,
                &options,
                language,
                &sizes,
                &app.config.plan(),
                deadline,
            )
            .await?;
            serde_json::to_value(summary).map_err(|e| TaskError::Internal(e.to_string()))
        }
        Step::WriteResult {
            bucket,
            key,
            result,
        } => {
            let out_bucket = app.config.output_bucket.clone().unwrap_or(bucket);
            let result_key = format!("{}{key}.json", app.config.result_prefix);
            put_json(&app.s3, &out_bucket, &result_key, &result).await?;
            Ok(json!({ "bucket": out_bucket, "result_key": result_key }))
        }
        Step::WriteFailure { bucket, key, error } => {
            let out_bucket = app.config.output_bucket.clone().unwrap_or(bucket.clone());
            let failure_key = format!("{}{key}.json", app.config.failure_prefix);
            let record = json!({
                "source": {"bucket": bucket, "key": key},
                "error": failure_error(&error),
            });
            put_json(&app.s3, &out_bucket, &failure_key, &record).await?;
            Ok(json!({ "bucket": out_bucket, "failure_key": failure_key }))
        }
    }
}

/// The `{type, message}` of a Catch's `{"Error", "Cause"}`. A Lambda task's Cause is the
/// function's error JSON as a string; its `errorMessage` is the message.
fn failure_error(error: &Value) -> Value {
    let cause = error
        .get("Cause")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| cause.to_owned());
    json!({"type": error.get("Error").cloned().unwrap_or(Value::Null), "message": message})
}

fn with_slash(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

async fn read_text(app: &App, bucket: &str, key: &str) -> Result<String, TaskError> {
    let object = get_object(&app.s3, bucket, key, app.config.max_text_bytes).await?;
    String::from_utf8(object.bytes)
        .map_err(|_| TaskError::InvalidInput(format!("{key} is not UTF-8 text")))
}
