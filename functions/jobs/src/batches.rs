//! `POST /batches` starts the batch workflow (`statemachines/document-batch.asl.json`) over
//! the documents under a prefix or named by a manifest; `GET /batches/{id}` tells how it
//! stands and, once it finished, gives its report.
//!
//! The execution's name is the batch id: random, or derived from the caller and its
//! `Idempotency-Key`, so a repeated request answers with the same batch (the same request
//! only: another body with the same key is `IdempotencyKeyReused`). The execution's input
//! records the caller (`requested_by`); only that caller reads the batch over HTTP.
//!
//! One batch runs at a time: each runs its own Distributed Map at the batch lane's whole
//! concurrency, so a second one would take more than the lane's share of the model quota.
//! `POST /batches` answers `409 BatchRunning` while an execution of the state machine is
//! running (checked just before the start: two requests at the same moment can both
//! start). An operator's `aws stepfunctions start-execution` does not go through this check.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::http;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;
use lambda_kit::jobs::{id_for_key, is_job_id, new_id};
use lambda_kit::storage::get_json_if_exists;
use lambda_kit::{TaskError, json_response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where manifests lie (the batch workflow may read only there).
pub const MANIFEST_PREFIX: &str = "manifests/";
/// The largest report summary read back for `GET /batches/{id}`.
const MAX_REPORT_BYTES: u64 = 1024 * 1024;
/// The longest prefix or manifest key, in bytes (S3's key limit).
const MAX_KEY_BYTES: usize = 1024;
/// The error type of `409`: another batch is running.
pub const BATCH_RUNNING: &str = "BatchRunning";

/// Where batches run: the state machine, the documents bucket and the prefix uploads
/// (and so batches) take documents from.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// `BATCH_STATE_MACHINE_ARN`.
    pub state_machine_arn: String,
    /// `DOCUMENTS_BUCKET`.
    pub bucket: String,
    /// `INPUT_PREFIX`.
    pub input_prefix: String,
}

/// The body of `POST /batches`: a prefix or a manifest, not both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Every document under this prefix (it must lie under the input prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The key of a manifest in the documents bucket: `*.csv` with a `key` column, or
    /// `*.json` holding an array of `{"key": ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// The execution's input: the request and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ExecutionInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<String>,
    /// The caller of `POST /batches` (absent when an operator started the execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requested_by: Option<String>,
}

impl ExecutionInput {
    fn request(&self) -> BatchRequest {
        BatchRequest {
            prefix: self.prefix.clone(),
            manifest: self.manifest.clone(),
        }
    }
}

/// Where a batch's report summary goes.
pub fn report_key(id: &str) -> String {
    format!("reports/batches/{id}.json")
}

/// Where a batch's per-document lines go (JSON Lines).
pub fn items_key(id: &str) -> String {
    format!("reports/batches/{id}.items.jsonl")
}

/// Where a batch's item lines and the Map's `ResultWriter` output go.
pub fn results_prefix(id: &str) -> String {
    format!("batches/{id}/")
}

/// Clients and settings for the batch routes.
pub struct Batches {
    pub sfn: aws_sdk_sfn::Client,
    pub s3: aws_sdk_s3::Client,
    pub settings: BatchSettings,
}

impl Batches {
    /// Starts the batch: `202` with where its report will be. A repeated `Idempotency-Key`
    /// answers with its batch before anything else is checked; a new batch is checked,
    /// then refused with `409 BatchRunning` while another one runs.
    pub async fn start(
        &self,
        request: BatchRequest,
        caller: &str,
        key: Option<&str>,
    ) -> Result<ApiGatewayV2httpResponse, TaskError> {
        let id = key.map_or_else(new_id, |k| id_for_key(caller, &format!("batch:{k}")));
        if key.is_some()
            && let Some(earlier) = self.execution(&id).await?
        {
            let arn = same_request(&earlier, &request)?;
            return Ok(started(&id, &arn));
        }
        self.check(&request).await?;
        if self.one_running().await? {
            tracing::info!("batch refused: another one is running");
            return Ok(json_response(
                409,
                &json!({"error": {"type": BATCH_RUNNING, "message":
                    "another batch is running; one batch runs at a time, so retry once it has finished"}}),
            ));
        }
        let input = serde_json::to_string(&ExecutionInput {
            prefix: request.prefix.clone(),
            manifest: request.manifest.clone(),
            requested_by: Some(caller.to_owned()),
        })
        .map_err(|e| TaskError::Internal(format!("cannot serialize the batch input: {e}")))?;
        let started_execution = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.settings.state_machine_arn)
            .name(&id)
            .input(&input)
            .send()
            .await;
        let arn = match started_execution {
            Ok(out) => out.execution_arn().to_owned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                let earlier = self.execution(&id).await?.ok_or_else(|| {
                    TaskError::Internal(format!("batch {id} exists but cannot be read"))
                })?;
                same_request(&earlier, &request)?
            }
            Err(e) => return Err(service_error("cannot start the batch", &e)),
        };
        tracing::info!(batch = %id, "batch started");
        Ok(started(&id, &arn))
    }

    /// Whether an execution of the batch state machine is running.
    async fn one_running(&self) -> Result<bool, TaskError> {
        let running = self
            .sfn
            .list_executions()
            .state_machine_arn(&self.settings.state_machine_arn)
            .status_filter(ExecutionStatus::Running)
            .max_results(1)
            .send()
            .await
            .map_err(|e| service_error("cannot list the running batches", &e))?;
        Ok(!running.executions().is_empty())
    }

    /// The execution named `id`; `None` when there is none.
    async fn execution(&self, id: &str) -> Result<Option<DescribeExecutionOutput>, TaskError> {
        match self
            .sfn
            .describe_execution()
            .execution_arn(self.execution_arn(id))
            .send()
            .await
        {
            Ok(e) => Ok(Some(e)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(service_error("cannot read the batch", &e)),
        }
    }

    /// `GET /batches/{id}`: the execution's status, and the report's summary once it is
    /// written. Over HTTP (`caller` given) only the caller who started the batch reads it;
    /// anyone else, and a batch an operator started, gets the same 404 as for no batch.
    pub async fn status(&self, id: &str, caller: Option<&str>) -> Result<Value, TaskError> {
        if !is_job_id(id) {
            return Err(TaskError::InvalidInput(
                "a batch id is 32 lowercase hexadecimal digits".into(),
            ));
        }
        let execution = self
            .execution(id)
            .await?
            .filter(|e| caller.is_none_or(|c| requested_by(e).as_deref() == Some(c)))
            .ok_or_else(|| TaskError::JobNotFound(format!("there is no batch {id}")))?;
        // A Map that failed as a whole still writes its report before the execution fails.
        let report = if execution.status() == &ExecutionStatus::Running {
            None
        } else {
            get_json_if_exists(
                &self.s3,
                &self.settings.bucket,
                &report_key(id),
                MAX_REPORT_BYTES,
            )
            .await?
            .map(|r| r.value)
        };
        let time = |t: Option<&aws_sdk_sfn::primitives::DateTime>| {
            t.and_then(|t| {
                t.fmt(aws_sdk_sfn::primitives::DateTimeFormat::DateTime)
                    .ok()
            })
        };
        Ok(json!({
            "id": id,
            "status": execution.status().as_str(),
            "started_at": time(Some(execution.start_date())),
            "stopped_at": time(execution.stop_date()),
            "report_key": report_key(id),
            "items_key": items_key(id),
            "results_prefix": results_prefix(id),
            "report": report,
            "error": execution.error().map(|e| json!({"type": e, "message": execution.cause()})),
        }))
    }

    /// Refuses a request that names no documents, before an execution starts.
    async fn check(&self, request: &BatchRequest) -> Result<(), TaskError> {
        for (field, value) in [("prefix", &request.prefix), ("manifest", &request.manifest)] {
            if let Some(value) = value {
                check_key(field, value)?;
            }
        }
        let input_prefix = &self.settings.input_prefix;
        match (&request.prefix, &request.manifest) {
            (Some(prefix), None) => {
                if !prefix.starts_with(input_prefix.as_str()) {
                    return Err(TaskError::InvalidInput(format!(
                        "the prefix must start with {input_prefix:?}"
                    )));
                }
                let listed = self
                    .s3
                    .list_objects_v2()
                    .bucket(&self.settings.bucket)
                    .prefix(prefix)
                    .max_keys(1)
                    .send()
                    .await
                    .map_err(|e| storage_error(prefix, &e))?;
                if listed.contents().is_empty() {
                    return Err(TaskError::InvalidInput(format!(
                        "there are no documents under {prefix:?}"
                    )));
                }
                Ok(())
            }
            (None, Some(manifest)) => {
                if !manifest.starts_with(MANIFEST_PREFIX) {
                    return Err(TaskError::InvalidInput(format!(
                        "a manifest lies under {MANIFEST_PREFIX:?}"
                    )));
                }
                if !(manifest.ends_with(".csv") || manifest.ends_with(".json")) {
                    return Err(TaskError::InvalidInput(
                        "a manifest is a .csv (with a key column) or a .json (an array of {\"key\"}) object"
                            .into(),
                    ));
                }
                match self
                    .s3
                    .head_object()
                    .bucket(&self.settings.bucket)
                    .key(manifest)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Err(
                        TaskError::InvalidInput(format!("there is no manifest {manifest:?}")),
                    ),
                    Err(e) => Err(storage_error(manifest, &e)),
                }
            }
            _ => Err(TaskError::InvalidInput(
                "give either \"prefix\" or \"manifest\"".into(),
            )),
        }
    }

    /// `arn:...:stateMachine:<name>` -> `arn:...:execution:<name>:<id>`.
    fn execution_arn(&self, id: &str) -> String {
        format!(
            "{}:{id}",
            self.settings
                .state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

/// The `202` answer for batch `id`.
fn started(id: &str, arn: &str) -> ApiGatewayV2httpResponse {
    let mut response = json_response(
        202,
        &json!({
            "id": id,
            "execution_arn": arn,
            "report_key": report_key(id),
            "items_key": items_key(id),
            "results_prefix": results_prefix(id),
            "status_url": format!("/batches/{id}"),
        }),
    );
    if let Ok(location) = http::HeaderValue::from_str(&format!("/batches/{id}")) {
        response.headers.insert(http::header::LOCATION, location);
    }
    response
}

/// The execution a repeated `Idempotency-Key` names: its ARN when it came with the same
/// request, `IdempotencyKeyReused` otherwise.
fn same_request(
    execution: &DescribeExecutionOutput,
    request: &BatchRequest,
) -> Result<String, TaskError> {
    let earlier = execution
        .input()
        .and_then(|i| serde_json::from_str::<ExecutionInput>(i).ok());
    if earlier.map(|e| e.request()).as_ref() != Some(request) {
        return Err(TaskError::IdempotencyKeyReused(
            "this Idempotency-Key came with another batch request".into(),
        ));
    }
    Ok(execution.execution_arn().to_owned())
}

/// Who started the execution through `POST /batches`.
fn requested_by(execution: &DescribeExecutionOutput) -> Option<String> {
    execution
        .input()
        .and_then(|i| serde_json::from_str::<ExecutionInput>(i).ok())
        .and_then(|e| e.requested_by)
}

/// A prefix or manifest key: at most S3's 1,024 bytes, without control characters.
fn check_key(field: &str, value: &str) -> Result<(), TaskError> {
    if value.len() > MAX_KEY_BYTES {
        return Err(TaskError::InvalidInput(format!(
            "the {field} is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(TaskError::InvalidInput(format!(
            "the {field} holds a control character"
        )));
    }
    Ok(())
}

fn service_error<E: std::error::Error + Send + Sync + 'static>(
    what: &str,
    e: &aws_sdk_sfn::error::SdkError<E, aws_sdk_sfn::config::http::HttpResponse>,
) -> TaskError {
    TaskError::Internal(format!("{what}: {}", DisplayErrorContext(e)))
}

fn storage_error<E: std::error::Error + Send + Sync + 'static>(
    key: &str,
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> TaskError {
    TaskError::Storage(format!("cannot read {key:?}: {}", DisplayErrorContext(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_a_prefix_or_a_manifest_and_nothing_else() {
        let prefix: BatchRequest =
            serde_json::from_value(json!({"prefix": "incoming/a/"})).unwrap();
        assert_eq!(
            serde_json::to_value(&prefix).unwrap(),
            json!({"prefix": "incoming/a/"})
        );
        assert!(serde_json::from_value::<BatchRequest>(json!({"bucket": "b"})).is_err());
    }

    #[test]
    fn outputs_are_named_by_the_batch() {
        assert_eq!(report_key("abc"), "reports/batches/abc.json");
        assert_eq!(items_key("abc"), "reports/batches/abc.items.jsonl");
        assert_eq!(results_prefix("abc"), "batches/abc/");
    }

    #[test]
    fn keys_are_bounded_and_free_of_control_characters() {
        assert!(check_key("prefix", &format!("incoming/{}", "a".repeat(1015))).is_ok());
        let long = check_key("prefix", &format!("incoming/{}", "a".repeat(1016)));
        assert!(long.unwrap_err().to_string().contains("1024 bytes"));
        for bad in ["incoming/a\nb", "incoming/\u{0}", "manifests/\u{7f}.csv"] {
            assert!(check_key("manifest", bad).is_err(), "{bad:?}");
        }
        assert!(check_key("prefix", "incoming/é ü/").is_ok());
    }

    #[test]
    fn the_execution_input_keeps_the_request_apart_from_its_caller() {
        let input: ExecutionInput = serde_json::from_value(
            json!({"prefix": "incoming/a/", "requested_by": "arn:aws:iam::1:user/a"}),
        )
        .unwrap();
        assert_eq!(
            input.request(),
            BatchRequest {
                prefix: Some("incoming/a/".into()),
                manifest: None
            }
        );
    }
}
