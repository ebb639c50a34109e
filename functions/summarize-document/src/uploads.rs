//! S3 `ObjectCreated` events: each record ends as a summary record or a failure record.

use aws_lambda_events::s3::S3Event;
use bedrock::Deadline;
use lambda_kit::{TaskError, decode_s3_key};
use serde::Serialize;
use serde_json::json;

use crate::App;
use crate::document::summarize_object;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Summarized; the record is at `output_key`.
    Summarized,
    /// Already summarized or failed for this version; nothing was done.
    AlreadyDone,
    /// Not ours to process (own output, outside the input prefix, not a creation).
    Ignored,
    /// Failed permanently; the failure record is at `output_key`.
    Failed,
    /// Failed for now; the invocation fails so Lambda retries it.
    Retry,
}

/// The outcome of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    /// The object key (decoded).
    pub key: String,
    /// What happened.
    pub status: Status,
    /// Where the summary or failure record is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    /// The error type, for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
}

/// Processes every record; fails (so Lambda retries the event) only when a record hit a
/// retryable error, after all other records are done. Records done before are skipped
/// on the retry, so nothing runs twice.
pub async fn handle_upload(
    app: &App,
    event: S3Event,
    deadline: Deadline,
) -> Result<Vec<RecordOutcome>, TaskError> {
    let mut outcomes = Vec::with_capacity(event.records.len());
    let mut retry: Option<TaskError> = None;
    for record in event.records {
        let raw_key = record.s3.object.key.clone().unwrap_or_default();
        let bucket = record.s3.bucket.name.clone().unwrap_or_default();
        let key = match decode_s3_key(&raw_key) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable key ignored");
                outcomes.push(outcome(
                    raw_key,
                    Status::Ignored,
                    None,
                    Some(e.error_type()),
                ));
                continue;
            }
        };
        let created = record
            .event_name
            .as_deref()
            .is_some_and(|n| n.starts_with("ObjectCreated"));
        if bucket.is_empty()
            || !created
            || app.config.is_own_output(&key)
            || !key.starts_with(&app.config.input_prefix)
        {
            tracing::info!(key = %key, "record ignored");
            outcomes.push(outcome(key, Status::Ignored, None, None));
            continue;
        }
        let etag = record
            .s3
            .object
            .e_tag
            .as_deref()
            .map(|t| t.trim_matches('"').to_owned());
        match process(app, &bucket, &key, etag.as_deref(), deadline).await {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                tracing::error!(key = %key, error_type = e.error_type(), error = %e, "document will be retried");
                outcomes.push(outcome(key, Status::Retry, None, Some(e.error_type())));
                retry = Some(e);
            }
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

fn outcome(
    key: String,
    status: Status,
    output_key: Option<String>,
    error_type: Option<&'static str>,
) -> RecordOutcome {
    RecordOutcome {
        key,
        status,
        output_key,
        error_type,
    }
}

/// One record: skip when this version is done, else summarize and write the summary, or
/// write a failure record for a permanent error. Retryable errors are returned.
async fn process(
    app: &App,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    deadline: Deadline,
) -> Result<RecordOutcome, TaskError> {
    let out_bucket = app.config.output_bucket.as_deref().unwrap_or(bucket);
    let summary_key = format!("{}{key}.json", app.config.summary_prefix);
    let failure_key = format!("{}{key}.json", app.config.failure_prefix);
    if let Some(etag) = etag {
        for (done_key, status) in [
            (&summary_key, Status::AlreadyDone),
            (&failure_key, Status::AlreadyDone),
        ] {
            if recorded_etag(app, out_bucket, done_key).await?.as_deref() == Some(etag) {
                tracing::info!(key = %key, "this version is already done");
                return Ok(outcome(
                    key.to_owned(),
                    status,
                    Some(done_key.clone()),
                    None,
                ));
            }
        }
    }
    match summarize_object(app, bucket, key, app.config.upload_options(), deadline).await {
        Ok(record) => {
            lambda_kit::storage::put_json(&app.s3, out_bucket, &summary_key, &record).await?;
            tracing::info!(key = %key, parts = record.parts, model_calls = record.usage.model_calls, "document summarized");
            Ok(outcome(
                key.to_owned(),
                Status::Summarized,
                Some(summary_key),
                None,
            ))
        }
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            let failure = json!({
                "source": {"bucket": bucket, "key": key, "etag": etag},
                "error": {"type": e.error_type(), "message": e.to_string()},
            });
            lambda_kit::storage::put_json(&app.s3, out_bucket, &failure_key, &failure).await?;
            tracing::warn!(key = %key, error_type = e.error_type(), "document failed permanently");
            Ok(outcome(
                key.to_owned(),
                Status::Failed,
                Some(failure_key),
                Some(e.error_type()),
            ))
        }
    }
}

/// The source ETag recorded in an earlier summary or failure record, if any.
async fn recorded_etag(app: &App, bucket: &str, key: &str) -> Result<Option<String>, TaskError> {
    let record = lambda_kit::storage::get_json_if_exists(&app.s3, bucket, key, 1024 * 1024).await?;
    Ok(record.and_then(|r| r["source"]["etag"].as_str().map(str::to_owned)))
}
