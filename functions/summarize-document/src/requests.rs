//! `POST /summaries` and Step Functions task input.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use bedrock::Deadline;
use lambda_kit::TaskError;
use lambda_kit::http::{error_response, json_body, json_response, route};
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

/// Answers an HTTP API request; errors become JSON error responses.
pub async fn handle_http(
    app: &App,
    request: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> serde_json::Value {
    let response = match http_summary(app, request, deadline).await {
        Ok(record) => json_response(200, &record),
        Err(e) => error_response(&e),
    };
    serde_json::to_value(response).unwrap_or_default()
}

async fn http_summary(
    app: &App,
    request: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<SummaryRecord, TaskError> {
    let route = route(request);
    if !route.ends_with("/summaries") {
        return Err(TaskError::InvalidInput(format!("no such route: {route}")));
    }
    let max = usize::try_from(app.config.max_request_bytes).unwrap_or(usize::MAX);
    let input: InlineRequest = json_body(request, max)?;
    summarize_inline(app, &input.text, input.options, deadline).await
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
        (None, None, Some(text)) => {
            if text.len() as u64 > app.config.max_request_bytes {
                return Err(TaskError::InputTooLarge(format!(
                    "inline text is {} bytes; the limit is {}; put it in S3 instead",
                    text.len(),
                    app.config.max_request_bytes
                )));
            }
            summarize_inline(app, &text, input.options, deadline).await
        }
        _ => Err(TaskError::InvalidInput(
            "task input needs either `bucket` and `key`, or `text`".into(),
        )),
    }
}
