//! `POST /summaries` and Step Functions task input.

use bedrock::Deadline;
use lambda_kit::TaskError;
use lambda_kit::sync_budget::Workload;
use serde::Deserialize;

use crate::App;
use crate::document::{SummaryRecord, summarize_inline, summarize_object};
use crate::options::SummaryOptions;

/// The body of `POST /summaries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineRequest {
    /// The text to summarize.
    pub text: String,
    /// Options, flattened: `length`, `format`, `language`.
    #[serde(flatten)]
    pub options: SummaryOptions,
}

/// A Step Functions task: an S3 object or inline text, with options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// Bucket of the document (with `key`).
    pub bucket: Option<String>,
    /// Key of the document (with `bucket`).
    pub key: Option<String>,
    /// Inline text (instead of `bucket`/`key`).
    pub text: Option<String>,
    /// Summary options.
    #[serde(default)]
    pub options: SummaryOptions,
}

/// Runs a Step Functions task.
pub async fn handle_task(
    app: &App,
    input: serde_json::Value,
    deadline: Deadline,
) -> Result<SummaryRecord, TaskError> {
    let input: TaskInput = serde_json::from_value(input)
        .map_err(|e| TaskError::InvalidInput(format!("invalid task input: {e}")))?;
    match (input.bucket, input.key, input.text) {
        (Some(bucket), Some(key), None) => {
            summarize_object(app, &bucket, &key, input.options, deadline).await
        }
        // Its size is bounded by the boundary's task-input limit (`MAX_REQUEST_BYTES`).
        (None, None, Some(text)) => summarize_inline(app, &text, input.options, deadline).await,
        _ => Err(TaskError::InvalidInput(
            "task input needs either `bucket` and `key`, or `text`".into(),
        )),
    }
}

/// The model work `POST /summaries` with body `input` needs; `None` for a body the
/// handler refuses anyway.
pub fn estimate(app: &App, input: &serde_json::Value) -> Option<Workload> {
    let request = InlineRequest::deserialize(input).ok()?;
    // Text the handler refuses (empty) gets no estimate: it is answered at once with its 4xx.
    if request.text.trim().is_empty() {
        return None;
    }
    let language = request
        .options
        .language
        .or_else(|| text::detect_confident(&request.text).map(|d| d.language))
        .unwrap_or(text::Language::English);
    Some(crate::summarize::workload(
        &app.llama,
        &request.text,
        &request.options,
        language,
        &app.config.http_plan(),
    ))
}
