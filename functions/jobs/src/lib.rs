//! Lambda function `jobs`: the asynchronous form of every task over HTTP.
//!
//! - `POST /jobs` with `{"task": "summarize" | "translate" | "classify", ...the route's
//!   input...}` hands the request to the task's function as its own route with
//!   `Prefer: respond-async` (and the caller's `Idempotency-Key`), so the input is checked,
//!   the job stored and its worker started exactly as for `Prefer: respond-async` on the
//!   route itself; the answer is that function's (`202` + `Location: /jobs/{id}`, or its 4xx).
//! - `GET /jobs/{id}` reads the job: status, times, usage, the result (from S3 when it was
//!   offloaded) or the typed error.
//! - `POST /batches` with `{"prefix"}` or `{"manifest"}` starts the batch workflow over
//!   those documents; `GET /batches/{id}` reads its status and report ([`batches`]).

pub mod batches;
pub mod forward;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use bedrock::Deadline;
use lambda_kit::jobs::{JobSettings, JobStatus, JobStore, is_job_id};
use lambda_kit::{Clients, Function, Route, TaskError, json_response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use settings::{ConfigError, Settings, in_range};

pub use forward::{Targets, Task};

/// The function's settings: the functions each task goes to and the request size limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsSettings {
    /// The function (name or ARN) that summarizes.
    pub summarize_function: String,
    /// The function that translates.
    pub translate_function: String,
    /// The function that classifies tickets.
    pub classify_function: String,
    /// The largest `POST /jobs` body, in bytes.
    pub jobs_max_request_bytes: usize,
    /// The batch workflow's state machine; without it `POST /batches` is refused.
    pub batch_state_machine_arn: Option<String>,
    /// The documents bucket batches read (required with `BATCH_STATE_MACHINE_ARN`).
    pub documents_bucket: Option<String>,
    /// The prefix batches may take documents from (summarize-document's `INPUT_PREFIX`).
    pub input_prefix: String,
}

impl Default for JobsSettings {
    fn default() -> Self {
        Self {
            summarize_function: String::new(),
            translate_function: String::new(),
            classify_function: String::new(),
            // A synchronous Lambda invocation takes at most 6 MB.
            jobs_max_request_bytes: 5 * 1024 * 1024,
            batch_state_machine_arn: None,
            documents_bucket: None,
            input_prefix: "incoming/".into(),
        }
    }
}

impl Settings for JobsSettings {
    const PREFIX: &'static str = "";

    fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("SUMMARIZE_FUNCTION", &self.summarize_function),
            ("TRANSLATE_FUNCTION", &self.translate_function),
            ("CLASSIFY_FUNCTION", &self.classify_function),
        ] {
            if value.is_empty() {
                return Err(ConfigError::new(
                    name,
                    "is required (a function name or ARN)",
                ));
            }
        }
        if self.batch_state_machine_arn.is_some() && self.documents_bucket.is_none() {
            return Err(ConfigError::new(
                "DOCUMENTS_BUCKET",
                "is required with BATCH_STATE_MACHINE_ARN",
            ));
        }
        in_range(
            "JOBS_MAX_REQUEST_BYTES",
            self.jobs_max_request_bytes,
            1024,
            6_000_000,
        )
    }
}

/// What the function serves over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /jobs`.
    Submit,
    /// `GET /jobs/{id}`.
    Status,
    /// `POST /batches`.
    StartBatch,
    /// `GET /batches/{id}`.
    BatchStatus,
}

/// The job store and the functions tasks go to, built once per cold start.
pub struct App {
    store: JobStore,
    lambda: aws_sdk_lambda::Client,
    targets: Targets,
    max_request_bytes: usize,
    batches: Option<batches::Batches>,
}

impl App {
    /// `GET /jobs/{id}`: the job's public view. Over HTTP (`caller` given) only the caller
    /// who submitted it may read it; anyone else gets the same 404 as for no job.
    pub async fn status(&self, id: &str, caller: Option<&str>) -> Result<Value, TaskError> {
        if !is_job_id(id) {
            return Err(TaskError::InvalidInput(
                "a job id is 32 lowercase hexadecimal digits".into(),
            ));
        }
        let job = self
            .store
            .get(id)
            .await?
            .filter(|job| caller.is_none_or(|c| job.owner == c))
            .ok_or_else(|| TaskError::JobNotFound(format!("there is no job {id}")))?;
        let result = if job.status == JobStatus::Succeeded {
            self.store.result(&job).await?
        } else {
            None
        };
        Ok(job.view(result))
    }
}

impl Function for App {
    type Settings = JobsSettings;
    type Endpoint = Endpoint;

    const NAME: &'static str = "jobs";
    const ROUTES: &'static [Route<Endpoint>] = &[
        Route::post("/jobs", Endpoint::Submit),
        Route::get("/jobs/{id}", Endpoint::Status),
        Route::post("/batches", Endpoint::StartBatch),
        Route::get("/batches/{id}", Endpoint::BatchStatus),
    ];
    // Its routes are the jobs' own: quick, and never jobs themselves.
    const ASYNC_JOBS: bool = false;

    fn build(clients: &Clients, settings: JobsSettings) -> Result<Self, ConfigError> {
        let jobs: JobSettings = settings::from_env()?;
        let store = JobStore::new(clients, &jobs)
            .ok_or_else(|| ConfigError::new("JOBS_TABLE", "is required by the jobs function"))?;
        Ok(Self {
            store,
            lambda: clients.lambda(),
            targets: Targets::from(&settings),
            max_request_bytes: settings.jobs_max_request_bytes,
            batches: settings
                .batch_state_machine_arn
                .zip(settings.documents_bucket)
                .map(|(state_machine_arn, bucket)| batches::Batches {
                    sfn: aws_sdk_sfn::Client::new(clients.sdk()),
                    s3: clients.s3(),
                    settings: batches::BatchSettings {
                        state_machine_arn,
                        bucket,
                        input_prefix: settings.input_prefix,
                    },
                }),
        })
    }

    fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    async fn respond(
        &self,
        endpoint: Endpoint,
        input: Value,
        _: Deadline,
        request: &ApiGatewayV2httpRequest,
    ) -> Result<ApiGatewayV2httpResponse, TaskError> {
        match endpoint {
            Endpoint::Submit => forward::submit(&self.lambda, &self.targets, input, request).await,
            Endpoint::Status => {
                let caller = lambda_kit::jobs::caller(request);
                let id = path_id(request);
                Ok(json_response(200, &self.status(&id, Some(&caller)).await?))
            }
            Endpoint::StartBatch => {
                let key = lambda_kit::jobs::idempotency_key(&request.headers)?;
                let caller = lambda_kit::jobs::caller(request);
                self.batches()?
                    .start(lambda_kit::from_json(input)?, &caller, key.as_deref())
                    .await
            }
            Endpoint::BatchStatus => {
                let caller = lambda_kit::jobs::caller(request);
                let id = path_id(request);
                let status = self.batches()?.status(&id, Some(&caller)).await?;
                Ok(json_response(200, &status))
            }
        }
    }

    async fn http(
        &self,
        endpoint: Endpoint,
        input: Value,
        _: Deadline,
    ) -> Result<Value, TaskError> {
        match endpoint {
            Endpoint::Status => {
                // Direct invocations (Lambda Invoke, IAM-controlled) read any job.
                let id = input.get("id").and_then(Value::as_str).unwrap_or_default();
                self.status(id, None).await
            }
            Endpoint::Submit | Endpoint::StartBatch | Endpoint::BatchStatus => Err(
                TaskError::InvalidInput("this route is served over HTTP only".into()),
            ),
        }
    }

    async fn task(&self, input: Value, deadline: Deadline) -> Result<Value, TaskError> {
        self.http(Endpoint::Status, input, deadline).await
    }
}

impl App {
    fn batches(&self) -> Result<&batches::Batches, TaskError> {
        self.batches.as_ref().ok_or_else(|| {
            TaskError::Internal(
                "batches are not configured (BATCH_STATE_MACHINE_ARN, DOCUMENTS_BUCKET)".into(),
            )
        })
    }
}

/// The `{id}` of a `/jobs/{id}` or `/batches/{id}` request.
fn path_id(request: &ApiGatewayV2httpRequest) -> String {
    request
        .path_parameters
        .get("id")
        .cloned()
        .or_else(|| {
            let path = request.raw_path.as_deref()?;
            Some(path.trim_end_matches('/').rsplit('/').next()?.to_owned())
        })
        .unwrap_or_default()
}
