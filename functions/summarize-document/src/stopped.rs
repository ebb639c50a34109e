//! Failure records for workflow executions that could not write their own.
//!
//! The workflow writes `failed/<key>.json` itself when a step fails for good. It cannot
//! when the execution times out (`TimeoutSeconds`), is aborted, or fails in a way no
//! Catch sees (the failure recorder failing too, `States.DataLimitExceeded`). An
//! EventBridge rule sends the Step Functions "Execution Status Change" events of those
//! statuses here; the execution's input (`detail.input`, a JSON string) names the source
//! document, the same ways the workflow accepts it.
//!
//! The record is written through the same conditional [`Records`] as the workflow's own,
//! for the version the execution's input names (an EventBridge event's `detail.object`),
//! so it removes an older version's result, never replaces a newer version's record nor
//! this version's result. A record written since the execution started (the workflow's
//! own failure record, or another run's) is left as it is, unless it is of an older
//! version. The claim the execution held on the key is released.

use aws_sdk_s3::error::ProvideErrorMetadata;
use lambda_kit::TaskError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::records::{Kind, Records};
use crate::source_key::decoded_alternative;
use crate::versions::{Announced, compare_sequencers};
use crate::workflow::{failure_error, records_of, release_claim};

/// The `detail-type` of Step Functions execution status events.
pub const STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The statuses that end an execution without a result.
const UNFINISHED: [&str; 3] = ["FAILED", "TIMED_OUT", "ABORTED"];

/// Whether `event` is a Step Functions execution status event.
pub fn is_status_change(event: &Value) -> bool {
    event["source"] == "aws.states" && event["detail-type"] == STATUS_CHANGE
}

#[derive(Debug, Deserialize)]
struct StatusChange {
    detail: Detail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    execution_arn: String,
    status: String,
    /// Milliseconds since the epoch.
    start_date: Option<i64>,
    /// The execution's input as a JSON string (absent when over 256 KB).
    input: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

/// The source document an execution input names: `(bucket, key)`, the same shapes the
/// workflow's `NormalizeInput` state accepts; `{"key"}` alone means `default_bucket`.
pub fn source_of(input: &Value, default_bucket: Option<&str>) -> Option<(String, String)> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let detail = &input["detail"];
    if let (Some(bucket), Some(key)) = (
        text(&detail["bucket"]["name"]),
        text(&detail["object"]["key"]),
    ) {
        return Some((bucket, key));
    }
    let key = text(&input["key"])?;
    let bucket = text(&input["bucket"]).or_else(|| default_bucket.map(str::to_owned))?;
    Some((bucket, key))
}

/// The failure record's `{type, message}` for an execution that ended with `status`.
fn error_of(detail: &Detail) -> Value {
    match detail.status.as_str() {
        "TIMED_OUT" => json!({
            "type": "States.Timeout",
            "message": "the execution ran longer than the state machine's TimeoutSeconds",
        }),
        "ABORTED" => json!({
            "type": "ExecutionAborted",
            "message": "the execution was stopped before it finished",
        }),
        _ => failure_error(&json!({
            "Error": detail.error.as_deref().unwrap_or("States.Runtime"),
            "Cause": detail.cause.as_deref().unwrap_or_default(),
        })),
    }
}

/// When an object was last modified, in seconds since the epoch; `None` when it does not
/// exist.
async fn modified(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<i64>, TaskError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Some(out.last_modified().map_or(0, |t| t.secs()))),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
        Err(e)
            if e.code() == Some("NotFound")
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
        {
            Ok(None)
        }
        Err(e) => Err(TaskError::Storage(format!(
            "s3://{bucket}/{key}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        ))),
    }
}

/// Whether `version` comes after the one a record's `source` describes (both sequencers
/// known).
fn is_newer_than(version: &Announced, source: &Value) -> bool {
    match (version.sequencer.as_deref(), source["sequencer"].as_str()) {
        (Some(ours), Some(theirs)) => compare_sequencers(ours, theirs).is_gt(),
        _ => false,
    }
}

/// Whether the records of `key` hold one written since `started` (seconds since the epoch)
/// that is not of a version older than `version`.
async fn recorded_since(
    app: &App,
    records: &Records<'_>,
    version: &Announced,
    started: i64,
) -> Result<bool, TaskError> {
    for (kind, key) in [
        (Kind::Success, &records.success_key),
        (Kind::Failure, &records.failure_key),
    ] {
        let recent = modified(&app.s3, records.bucket(), key)
            .await?
            .is_some_and(|m| m >= started);
        if recent
            && let Some(source) = records.source(kind).await?
            && !is_newer_than(version, &source)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Handles one execution status event: writes `failed/<key>.json` for an execution that
/// ended unfinished, as the module's documentation describes. Returns what was done.
pub async fn record_unfinished(app: &App, event: Value) -> Result<Value, TaskError> {
    let change: StatusChange = serde_json::from_value(event)
        .map_err(|e| TaskError::InvalidInput(format!("invalid execution status event: {e}")))?;
    let detail = change.detail;
    if !UNFINISHED.contains(&detail.status.as_str()) {
        return Ok(json!({"status": "ignored", "execution_status": detail.status}));
    }
    let input = detail
        .input
        .as_deref()
        .and_then(|i| serde_json::from_str::<Value>(i).ok())
        .unwrap_or(Value::Null);
    let version = Announced::from_event_object(&input["detail"]["object"]);
    let Some((bucket, given_key)) = source_of(&input, app.config.output_bucket.as_deref()) else {
        tracing::warn!(
            execution = %detail.execution_arn,
            "unfinished execution names no source document; no failure record"
        );
        return Ok(json!({"status": "no_source"}));
    };
    // The key the workflow would have used: as given, or its decoded form when only that
    // object exists (as Prepare reads it).
    let key = match decoded_alternative(&given_key) {
        Some(decoded)
            if modified(&app.s3, &bucket, &given_key).await?.is_none()
                && modified(&app.s3, &bucket, &decoded).await?.is_some() =>
        {
            decoded
        }
        _ => given_key,
    };
    let records = records_of(app, &bucket, &key);
    let started = detail.start_date.unwrap_or(0).div_euclid(1000);
    let written = !recorded_since(app, &records, &version, started).await?
        && records
            .write(
                Kind::Failure,
                &version,
                &json!({
                    "source": {"bucket": bucket, "key": key, "etag": version.etag,
                               "version_id": version.version_id, "sequencer": version.sequencer},
                    "error": error_of(&detail),
                    "execution": detail.execution_arn,
                    "execution_status": detail.status,
                }),
            )
            .await?;
    // Prepare claimed the key as it found it, as this one was found.
    release_claim(app, &bucket, &key, Some(&detail.execution_arn)).await;
    if !written {
        return Ok(json!({"status": "already_recorded", "key": key}));
    }
    tracing::info!(execution = %detail.execution_arn, key = %records.failure_key, "failure record written for an unfinished execution");
    Ok(
        json!({"status": "recorded", "bucket": records.bucket(), "failure_key": records.failure_key}),
    )
}
