//! `POST /batches` starts the batch workflow (`statemachines/document-batch.asl.json`) over
//! the documents under a prefix or named by a manifest; `GET /batches/{id}` tells how it
//! stands and, once it finished, gives its report.
//!
//! The execution's name is the batch id: random, or derived from the caller and its
//! `Idempotency-Key`, so a repeated request answers with the same batch (the same request
//! only: another body with the same key is `IdempotencyKeyReused`).

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::http;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_sfn::types::ExecutionStatus;
use lambda_kit::jobs::{id_for_key, is_job_id, new_id};
use lambda_kit::storage::get_json_if_exists;
use lambda_kit::{TaskError, json_response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where manifests lie (the batch workflow may read only there).
pub const MANIFEST_PREFIX: &str = "manifests/";
/// The largest report read back for `GET /batches/{id}`.
const MAX_REPORT_BYTES: u64 = 5 * 1024 * 1024;

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

/// Where a batch's outputs go.
pub fn report_key(id: &str) -> String {
    format!("reports/batches/{id}.json")
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
    /// Checks the request, then starts the execution: `202` with where the report will be.
    pub async fn start(
        &self,
        request: BatchRequest,
        caller: &str,
        key: Option<&str>,
    ) -> Result<ApiGatewayV2httpResponse, TaskError> {
        self.check(&request).await?;
        let id = key.map_or_else(new_id, |k| id_for_key(caller, &format!("batch:{k}")));
        let input = serde_json::to_string(&request)
            .map_err(|e| TaskError::Internal(format!("cannot serialize the batch input: {e}")))?;
        let started = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.settings.state_machine_arn)
            .name(&id)
            .input(&input)
            .send()
            .await;
        let arn = match started {
            Ok(out) => out.execution_arn().to_owned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                self.same_request(&id, &request).await?
            }
            Err(e) => return Err(service_error("cannot start the batch", &e)),
        };
        tracing::info!(batch = %id, "batch started");
        let mut response = json_response(
            202,
            &json!({
                "id": id,
                "execution_arn": arn,
                "report_key": report_key(&id),
                "results_prefix": results_prefix(&id),
                "status_url": format!("/batches/{id}"),
            }),
        );
        if let Ok(location) = http::HeaderValue::from_str(&format!("/batches/{id}")) {
            response.headers.insert(http::header::LOCATION, location);
        }
        Ok(response)
    }

    /// `GET /batches/{id}`: the execution's status, and the report once it is written
    /// (without its per-document lines, which stay in the report object).
    pub async fn status(&self, id: &str) -> Result<Value, TaskError> {
        if !is_job_id(id) {
            return Err(TaskError::InvalidInput(
                "a batch id is 32 lowercase hexadecimal digits".into(),
            ));
        }
        let not_found = || TaskError::JobNotFound(format!("there is no batch {id}"));
        let described = self
            .sfn
            .describe_execution()
            .execution_arn(self.execution_arn(id))
            .send()
            .await;
        let execution = match described {
            Ok(e) => e,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                return Err(not_found());
            }
            Err(e) => return Err(service_error("cannot read the batch", &e)),
        };
        let report = if execution.status() == &ExecutionStatus::Succeeded {
            let stored = get_json_if_exists(
                &self.s3,
                &self.settings.bucket,
                &report_key(id),
                MAX_REPORT_BYTES,
            )
            .await?;
            stored.map(|mut r| {
                if let Some(object) = r.value.as_object_mut() {
                    object.remove("items");
                }
                r.value
            })
        } else {
            None
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
            "results_prefix": results_prefix(id),
            "report": report,
            "error": execution.error().map(|e| json!({"type": e, "message": execution.cause()})),
        }))
    }

    /// Refuses a request that names no documents, before an execution starts.
    async fn check(&self, request: &BatchRequest) -> Result<(), TaskError> {
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

    /// The execution a repeated `Idempotency-Key` names: its ARN when it came with the same
    /// request, `IdempotencyKeyReused` otherwise.
    async fn same_request(&self, id: &str, request: &BatchRequest) -> Result<String, TaskError> {
        let arn = self.execution_arn(id);
        let execution = self
            .sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(|e| service_error("cannot read the batch", &e))?;
        let earlier: Option<BatchRequest> =
            execution.input().and_then(|i| serde_json::from_str(i).ok());
        if earlier.as_ref() != Some(request) {
            return Err(TaskError::IdempotencyKeyReused(
                "this Idempotency-Key came with another batch request".into(),
            ));
        }
        Ok(arn)
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
        assert_eq!(results_prefix("abc"), "batches/abc/");
    }
}
