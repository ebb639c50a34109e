//! Asynchronous jobs for every HTTP route of a function: a request with
//! `Prefer: respond-async` (RFC 7240) is checked as usual, stored as a job in DynamoDB and
//! answered `202 Accepted` with `Location: /jobs/{id}`; the same function, invoked
//! asynchronously with `{"job": {"id": ...}}`, runs the route's handler with the Lambda
//! deadline and records the result or the typed error.
//!
//! Every write is a conditional `PutItem` of the whole record: a job is created only if its
//! id is new, moves `queued` -> `running` only once (or again by the retry of the same
//! asynchronous invocation, which keeps its request id), and finishes only from `running`
//! by the invocation that runs it. So two workers never run one job.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use settings::{ConfigError, Settings, in_range};
use sha2::{Digest, Sha256};

use crate::{Clients, Function, Invocation, TaskError, http as responses, storage};

/// Inputs and results larger than this go to S3 (a DynamoDB item holds at most 400 KB).
const INLINE_LIMIT: usize = 300 * 1024;
/// The largest offloaded result or input read back.
const MAX_OFFLOADED_BYTES: u64 = 64 * 1024 * 1024;
/// The longest `Idempotency-Key` accepted.
const MAX_KEY_CHARS: usize = 255;
/// An unfinished job's record outlives its retention by this much (a day: longer than any
/// run and its retries).
const UNFINISHED_MARGIN_S: u64 = 24 * 3600;

/// Where jobs are kept (`JOBS_TABLE`, `JOBS_BUCKET`, `JOBS_TTL_DAYS`); without a table the
/// `Prefer: respond-async` preference is not applied (RFC 7240 lets a server ignore it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobSettings {
    /// The DynamoDB table of jobs.
    pub jobs_table: Option<String>,
    /// The bucket large inputs and results go to, under `jobs/<id>/`.
    pub jobs_bucket: Option<String>,
    /// Days a finished job is kept (DynamoDB TTL on `expires_at`).
    pub jobs_ttl_days: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            jobs_table: None,
            jobs_bucket: None,
            jobs_ttl_days: 7,
        }
    }
}

impl Settings for JobSettings {
    const PREFIX: &'static str = "";

    fn validate(&self) -> Result<(), ConfigError> {
        if self.jobs_table.as_deref() == Some("") {
            return Err(ConfigError::new("JOBS_TABLE", "must not be empty when set"));
        }
        in_range("JOBS_TTL_DAYS", self.jobs_ttl_days, 1, 365)
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Stored, waiting for its worker.
    Queued,
    /// A worker runs it.
    Running,
    /// Done; the result is in the record (or in S3).
    Succeeded,
    /// Done; the typed error is in the record.
    Failed,
}

impl JobStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Whether the job is over.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }

    /// Whether a job may move from `self` to `next` (`running` -> `running` is the retry
    /// of the same invocation taking its job over).
    pub fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Queued | Self::Running, Self::Running)
                | (Self::Running, Self::Succeeded | Self::Failed)
        )
    }
}

/// A failed job's error: the same `type` and public message an HTTP error response has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// The stable error type.
    #[serde(rename = "type")]
    pub error_type: String,
    /// The message safe to show the caller.
    pub message: String,
}

impl From<&TaskError> for JobError {
    fn from(e: &TaskError) -> Self {
        Self {
            error_type: e.error_type().to_owned(),
            message: e.public_message(),
        }
    }
}

/// One job as stored (the `record` attribute of its item, as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// 32 lowercase hex digits.
    pub id: String,
    /// Where it stands.
    pub status: JobStatus,
    /// The function that runs it.
    pub function: String,
    /// The route whose handler runs it, e.g. `POST /summaries`.
    pub route: String,
    /// The request body, unless it was offloaded to S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The S3 key of the request body when it was too large for the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_key: Option<String>,
    /// Hash of the route and the request body (an `Idempotency-Key` must come with the same).
    pub request_hash: String,
    /// The caller's `Idempotency-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Who submitted it (the IAM caller or JWT subject; empty without an authorizer):
    /// only they may read it over HTTP.
    #[serde(default)]
    pub owner: String,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    /// When a worker took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// The route's answer, unless it was offloaded to S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The S3 key of the answer when it was too large for the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// The answer's `usage` (model calls and tokens), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    /// The request id of the invocation running it (its retries keep it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_by: Option<String>,
    /// Times a worker took it.
    #[serde(default)]
    pub attempts: u32,
    /// When DynamoDB may delete it (seconds since the epoch; finished jobs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl Job {
    /// A new queued job for `route` of `function`.
    pub fn queued(function: &str, route: &str, input: Value, key: Option<String>) -> Self {
        Self {
            id: new_id(),
            status: JobStatus::Queued,
            function: function.to_owned(),
            route: route.to_owned(),
            request_hash: request_hash(route, &input),
            input: Some(input),
            input_key: None,
            idempotency_key: key,
            owner: String::new(),
            created_at: now_ms(),
            started_at: None,
            finished_at: None,
            result: None,
            result_key: None,
            error: None,
            usage: None,
            run_by: None,
            attempts: 0,
            expires_at: None,
        }
    }

    /// Moves the job to `running` for the invocation `run_by`.
    pub fn start(&mut self, run_by: &str, at_ms: u64) -> Result<(), TaskError> {
        self.move_to(JobStatus::Running)?;
        self.run_by = Some(run_by.to_owned());
        self.started_at = Some(at_ms);
        self.attempts += 1;
        Ok(())
    }

    /// Finishes the job with the handler's outcome, kept `ttl` after `at_ms`.
    pub fn finish(
        &mut self,
        outcome: Result<Value, &TaskError>,
        at_ms: u64,
        ttl: Duration,
    ) -> Result<(), TaskError> {
        match outcome {
            Ok(result) => {
                self.move_to(JobStatus::Succeeded)?;
                self.usage = result.get("usage").filter(|u| u.is_object()).cloned();
                self.result = Some(result);
            }
            Err(e) => {
                self.move_to(JobStatus::Failed)?;
                self.error = Some(JobError::from(e));
            }
        }
        self.finished_at = Some(at_ms);
        self.expires_at = Some((at_ms / 1000).saturating_add(ttl.as_secs()));
        // The input is not needed any more; the item keeps room for the result.
        self.input = None;
        Ok(())
    }

    fn move_to(&mut self, next: JobStatus) -> Result<(), TaskError> {
        if !self.status.can_become(next) {
            return Err(TaskError::Internal(format!(
                "job {} cannot move from {} to {}",
                self.id,
                self.status.as_str(),
                next.as_str()
            )));
        }
        self.status = next;
        Ok(())
    }

    /// What `GET /jobs/{id}` shows: status, times, usage, and the result (`result`, read
    /// back from S3 when it was offloaded) or the error.
    pub fn view(&self, result: Option<Value>) -> Value {
        let mut view = json!({
            "id": self.id,
            "status": self.status,
            "function": self.function,
            "route": self.route,
            "created_at": rfc3339(self.created_at),
        });
        let mut timings = serde_json::Map::new();
        if let Some(started) = self.started_at {
            view["started_at"] = rfc3339(started).into();
            timings.insert(
                "queued_ms".into(),
                started.saturating_sub(self.created_at).into(),
            );
        }
        if let Some(finished) = self.finished_at {
            view["finished_at"] = rfc3339(finished).into();
            let started = self.started_at.unwrap_or(self.created_at);
            timings.insert("run_ms".into(), finished.saturating_sub(started).into());
        }
        view["timings"] = Value::Object(timings);
        if let Some(result) = result {
            view["result"] = result;
        }
        if let Some(error) = &self.error {
            view["error"] = json!(error);
        }
        if let Some(usage) = &self.usage {
            view["usage"] = usage.clone();
        }
        view
    }

    fn to_item(&self) -> Result<HashMap<String, AttributeValue>, TaskError> {
        let record = serde_json::to_string(self)
            .map_err(|e| TaskError::Internal(format!("cannot serialize job {}: {e}", self.id)))?;
        let mut item = HashMap::from([
            ("id".to_owned(), AttributeValue::S(self.id.clone())),
            (
                "status".to_owned(),
                AttributeValue::S(self.status.as_str().into()),
            ),
            ("record".to_owned(), AttributeValue::S(record)),
        ]);
        if let Some(run_by) = &self.run_by {
            item.insert("run_by".into(), AttributeValue::S(run_by.clone()));
        }
        if let Some(expires_at) = self.expires_at {
            item.insert(
                "expires_at".into(),
                AttributeValue::N(expires_at.to_string()),
            );
        }
        Ok(item)
    }

    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, TaskError> {
        item.get("record")
            .and_then(|r| r.as_s().ok())
            .and_then(|r| serde_json::from_str(r).ok())
            .ok_or_else(|| TaskError::Storage("a job item has no readable record".into()))
    }
}

/// A random job id: 32 lowercase hex digits.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The job id for an `Idempotency-Key` of `caller`: the same key of the same caller is
/// the same job.
pub fn id_for_key(caller: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{caller}\n{key}").as_bytes());
    hex(&digest[..16])
}

/// Whether `id` has the shape of a job id.
pub fn is_job_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Hash of a request: the route and the body as canonical JSON (object keys sorted), so
/// that the same body sent with its keys in another order is the same request.
pub fn request_hash(route: &str, input: &Value) -> String {
    let mut text = String::new();
    canonical(input, &mut text);
    hex(&Sha256::digest(format!("{route}\n{text}").as_bytes()))
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether the `Prefer` header (RFC 7240, possibly several, comma-separated) asks for
/// `respond-async`.
pub fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.split(';').next().unwrap_or("").trim())
        .any(|p| p.eq_ignore_ascii_case("respond-async"))
}

/// The `Idempotency-Key` header: 1-255 visible ASCII characters (a quoted string as in
/// the IETF draft is unquoted); anything else is `InvalidInput`.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, TaskError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        TaskError::InvalidInput(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters"
        ))
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if text.is_empty() || text.len() > MAX_KEY_CHARS || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad());
    }
    Ok(Some(text.to_owned()))
}

/// Who sent a request, for scoping idempotency keys and job reads: the IAM caller or the
/// JWT subject (empty without an authorizer, as on the local stack).
pub fn caller(request: &ApiGatewayV2httpRequest) -> String {
    let authorizer = request.request_context.authorizer.as_ref();
    let iam = authorizer
        .and_then(|a| a.iam.as_ref())
        .and_then(|iam| iam.user_arn.clone().or_else(|| iam.caller_id.clone()));
    let jwt = authorizer
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get("sub").cloned());
    iam.or(jwt).unwrap_or_default()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2026-11-30T06:37:35.123Z`).
pub fn rfc3339(ms: u64) -> String {
    let at = aws_smithy_types::DateTime::from_millis(i64::try_from(ms).unwrap_or(i64::MAX));
    at.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| ms.to_string())
}

/// The job payload an asynchronous invocation carries: `{"job": {"id": ...}}`.
pub fn job_payload(id: &str) -> Value {
    json!({"job": {"id": id}})
}

/// The job id of an event that is a job payload.
pub(crate) fn job_of(event: &Value) -> Option<&str> {
    let object = event.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object.get("job")?.get("id")?.as_str()
}

/// What creating a job found.
#[derive(Debug)]
pub enum Created {
    /// The job is new.
    New(Job),
    /// A job with this id (the same idempotency key) was there already.
    Existing(Job),
}

/// Jobs in DynamoDB (large inputs and results in S3), and the asynchronous invocation
/// that runs them.
#[derive(Clone)]
pub struct JobStore {
    dynamodb: aws_sdk_dynamodb::Client,
    lambda: aws_sdk_lambda::Client,
    s3: aws_sdk_s3::Client,
    table: String,
    bucket: Option<String>,
    ttl: Duration,
    worker: Option<String>,
}

impl JobStore {
    /// The store `settings` name, or `None` without `JOBS_TABLE`.
    pub fn new(clients: &Clients, settings: &JobSettings) -> Option<Self> {
        Some(Self {
            dynamodb: clients.dynamodb(),
            lambda: clients.lambda(),
            s3: clients.s3(),
            table: settings.jobs_table.clone()?,
            bucket: settings.jobs_bucket.clone(),
            ttl: Duration::from_secs(settings.jobs_ttl_days.saturating_mul(86_400)),
            worker: None,
        })
    }

    /// The store with `function` (this function's name) as the worker that runs the jobs
    /// it creates; without one, `Prefer: respond-async` is not applied.
    pub fn worker(self, function: Option<String>) -> Self {
        Self {
            worker: function,
            ..self
        }
    }

    /// Whether this store can start jobs (it knows the worker's name).
    pub(crate) fn can_submit(&self) -> bool {
        self.worker.is_some()
    }

    /// Reads a job; `None` when there is no such job.
    pub async fn get(&self, id: &str) -> Result<Option<Job>, TaskError> {
        let output = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage_error("read", id, e))?;
        output.item().map(Job::from_item).transpose()
    }

    /// Stores a new job (its input offloaded to S3 when large); an existing job with the
    /// same id is returned instead.
    pub async fn create(&self, mut job: Job) -> Result<Created, TaskError> {
        // A job that never finishes (its worker could not be started, or died on every
        // retry) still expires: one retention period after the longest run.
        let created_s = job.created_at / 1000;
        job.expires_at = Some(created_s.saturating_add(self.ttl.as_secs() + UNFINISHED_MARGIN_S));
        if let Some(input) = job.input.take() {
            // Named by the request's hash: a reused key with another body (refused) never
            // overwrites the input of the job that key made.
            let name = format!(
                "input-{}",
                &job.request_hash[..16.min(job.request_hash.len())]
            );
            match self.offload(&job.id, &name, &input).await? {
                Some(key) => job.input_key = Some(key),
                None => job.input = Some(input),
            }
        }
        if self.put(&job, Condition::New).await? {
            return Ok(Created::New(job));
        }
        match self.get(&job.id).await? {
            Some(existing) => Ok(Created::Existing(existing)),
            None => Err(TaskError::Storage(format!(
                "job {} exists and then does not",
                job.id
            ))),
        }
    }

    /// The result of a finished job, from the record or from S3.
    pub async fn result(&self, job: &Job) -> Result<Option<Value>, TaskError> {
        match (&job.result, &job.result_key) {
            (Some(result), _) => Ok(Some(result.clone())),
            (None, Some(key)) => self.read_offloaded(key).await.map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Invokes `function` asynchronously with the job payload.
    pub async fn invoke_worker(&self, function: &str, id: &str) -> Result<(), TaskError> {
        let payload = job_payload(id).to_string().into_bytes();
        self.lambda
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                let detail = aws_sdk_lambda::error::DisplayErrorContext(e);
                TaskError::Storage(format!("cannot start the worker for job {id}: {detail}"))
            })
    }

    async fn put(&self, job: &Job, condition: Condition<'_>) -> Result<bool, TaskError> {
        let mut request = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job.to_item()?));
        request = match condition {
            Condition::New => request.condition_expression("attribute_not_exists(id)"),
            Condition::Start { run_by } => request
                .condition_expression("#s = :queued OR (#s = :running AND run_by = :me)")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":queued", AttributeValue::S("queued".into()))
                .expression_attribute_values(":running", AttributeValue::S("running".into()))
                .expression_attribute_values(":me", AttributeValue::S(run_by.to_owned())),
            Condition::Finish { run_by } => request
                .condition_expression("#s = :running AND run_by = :me")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":running", AttributeValue::S("running".into()))
                .expression_attribute_values(":me", AttributeValue::S(run_by.to_owned())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(storage_error("write", &job.id, e)),
        }
    }

    /// Writes `value` to `jobs/<id>/<name>.json` when it is too large for the item.
    async fn offload(
        &self,
        id: &str,
        name: &str,
        value: &Value,
    ) -> Result<Option<String>, TaskError> {
        let size = serde_json::to_vec(value).map_or(0, |b| b.len());
        if size <= INLINE_LIMIT {
            return Ok(None);
        }
        let Some(bucket) = &self.bucket else {
            return Err(TaskError::InputTooLarge(format!(
                "the job's {name} is {size} bytes; without JOBS_BUCKET the limit is {INLINE_LIMIT}"
            )));
        };
        let key = format!("jobs/{id}/{name}.json");
        storage::put_json(&self.s3, bucket, &key, value).await?;
        Ok(Some(key))
    }

    async fn read_offloaded(&self, key: &str) -> Result<Value, TaskError> {
        let bucket = self.bucket.as_deref().ok_or_else(|| {
            TaskError::Storage(format!("{key} is in S3 but JOBS_BUCKET is not set"))
        })?;
        let object = storage::get_object(&self.s3, bucket, key, MAX_OFFLOADED_BYTES).await?;
        serde_json::from_slice(&object.bytes)
            .map_err(|e| TaskError::Storage(format!("{key} is not JSON: {e}")))
    }
}

enum Condition<'a> {
    New,
    Start { run_by: &'a str },
    Finish { run_by: &'a str },
}

fn storage_error<E: std::error::Error + 'static>(what: &str, id: &str, e: E) -> TaskError {
    let detail = aws_sdk_dynamodb::error::DisplayErrorContext(e);
    TaskError::Storage(format!("cannot {what} job {id}: {detail}"))
}

/// Answers a request that prefers an asynchronous response: stores the job (or finds the
/// one its `Idempotency-Key` made) and starts the worker, then `202 Accepted`.
pub(crate) async fn submit<F: Function>(
    store: &JobStore,
    route: &str,
    input: Value,
    request: &ApiGatewayV2httpRequest,
) -> Result<ApiGatewayV2httpResponse, TaskError> {
    let function_name = store.worker.as_deref().unwrap_or(F::NAME);
    let key = idempotency_key(&request.headers)?;
    let mut job = Job::queued(F::NAME, route, input, key.clone());
    job.owner = caller(request);
    if let Some(key) = &key {
        job.id = id_for_key(&caller(request), key);
    }
    let hash = job.request_hash.clone();
    let job = match store.create(job).await? {
        Created::New(job) => {
            store.invoke_worker(function_name, &job.id).await?;
            tracing::info!(job = %job.id, route, "job queued");
            job
        }
        Created::Existing(job) if job.request_hash != hash => {
            return Err(TaskError::IdempotencyKeyReused(
                "this Idempotency-Key was used with another request; use a new key".into(),
            ));
        }
        Created::Existing(job) => {
            // A worker that never started (its invocation failed) is started again; one
            // that did is left alone: the conditional start lets only one run it.
            if job.status == JobStatus::Queued {
                store.invoke_worker(function_name, &job.id).await?;
            }
            tracing::info!(job = %job.id, status = job.status.as_str(), "job found by its idempotency key");
            job
        }
    };
    Ok(accepted(&job))
}

/// `202 Accepted` with `Location: /jobs/{id}` and `Preference-Applied: respond-async`.
pub fn accepted(job: &Job) -> ApiGatewayV2httpResponse {
    let mut response = responses::json_response(202, &json!({"id": job.id, "status": job.status}));
    let headers = &mut response.headers;
    if let Ok(location) = HeaderValue::from_str(&format!("/jobs/{}", job.id)) {
        headers.insert(http::header::LOCATION, location);
    }
    headers.insert(
        "preference-applied",
        HeaderValue::from_static("respond-async"),
    );
    response
}

/// Runs job `id` with the function's handler for its route, once: a job another
/// invocation runs, or one that finished, is left alone.
pub(crate) async fn work<F: Function>(
    function: &F,
    store: &JobStore,
    id: &str,
    invocation: &Invocation,
) -> Result<Value, TaskError> {
    if !is_job_id(id) {
        return Err(TaskError::InvalidInput(format!("{id:?} is not a job id")));
    }
    let run_by = invocation.request_id.clone().unwrap_or_else(new_id);
    let Some(mut job) = store.get(id).await? else {
        return Err(TaskError::JobNotFound(format!("no job {id}")));
    };
    if !job.status.can_become(JobStatus::Running)
        || (job.status == JobStatus::Running && job.run_by.as_deref() != Some(&run_by))
    {
        tracing::info!(job = id, status = job.status.as_str(), "job already taken");
        return Ok(json!({"job": {"id": id, "status": job.status}}));
    }
    job.start(&run_by, now_ms())?;
    if !store
        .put(&job, Condition::Start { run_by: &run_by })
        .await?
    {
        tracing::info!(job = id, "another invocation took the job");
        return Ok(json!({"job": {"id": id, "status": "running"}}));
    }
    tracing::info!(job = id, route = %job.route, attempt = job.attempts, "job running");
    let (outcome, usage) = bedrock::metered(run(function, store, &job, invocation)).await;
    let outcome = match outcome {
        Ok(result) => match store.offload(id, "result", &result).await {
            Ok(Some(key)) => {
                job.result_key = Some(key);
                Ok(json!({"usage": result.get("usage")}))
            }
            Ok(None) => Ok(result),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(result) => job.finish(Ok(result), now_ms(), store.ttl)?,
        Err(e) => {
            e.log();
            job.finish(Err(&e), now_ms(), store.ttl)?;
            // What the model calls made before the failure cost.
            job.usage = (usage.attempts > 0).then(|| json!(usage));
        }
    }
    if job.result_key.is_some() {
        job.result = None;
    }
    if !store
        .put(&job, Condition::Finish { run_by: &run_by })
        .await?
    {
        return Err(TaskError::Storage(format!(
            "job {id} was taken over while it ran"
        )));
    }
    tracing::info!(job = id, status = job.status.as_str(), "job finished");
    Ok(json!({"job": {"id": id, "status": job.status}}))
}

async fn run<F: Function>(
    function: &F,
    store: &JobStore,
    job: &Job,
    invocation: &Invocation,
) -> Result<Value, TaskError> {
    let route = F::ROUTES
        .iter()
        .find(|r| r.key() == job.route)
        .ok_or_else(|| TaskError::Internal(format!("{} has no route {}", F::NAME, job.route)))?;
    let input = match (&job.input, &job.input_key) {
        (Some(input), _) => input.clone(),
        (None, Some(key)) => store.read_offloaded(key).await?,
        (None, None) => Value::Null,
    };
    Box::pin(function.http(route.endpoint, input, invocation.deadline)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn prefer_header_parsing() {
        assert!(prefers_async(&headers(&[("prefer", "respond-async")])));
        assert!(prefers_async(&headers(&[(
            "prefer",
            "wait=10, Respond-Async"
        )])));
        assert!(prefers_async(&headers(&[
            ("prefer", "return=minimal"),
            ("prefer", "respond-async; foo=bar")
        ])));
        assert!(!prefers_async(&headers(&[("prefer", "return=minimal")])));
        assert!(!prefers_async(&headers(&[(
            "prefer",
            "respond-asynchronously"
        )])));
        assert!(!prefers_async(&HeaderMap::new()));
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
        let key = |v: &str| idempotency_key(&headers(&[("idempotency-key", v)]));
        assert_eq!(key("abc-123").unwrap().as_deref(), Some("abc-123"));
        assert_eq!(key("\"8e03978e\"").unwrap().as_deref(), Some("8e03978e"));
        for bad in ["", "\"\"", "has space", &"k".repeat(256)] {
            assert_eq!(key(bad).unwrap_err().http_status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn request_hash_ignores_key_order_but_not_values_or_route() {
        let a = json!({"text": "x", "options": {"a": 1, "b": [1, 2]}});
        let b: Value =
            serde_json::from_str(r#"{"options": {"b": [1, 2], "a": 1}, "text": "x"}"#).unwrap();
        assert_eq!(request_hash("POST /s", &a), request_hash("POST /s", &b));
        assert_ne!(
            request_hash("POST /s", &a),
            request_hash(
                "POST /s",
                &json!({"text": "y", "options": {"a": 1, "b": [1, 2]}})
            )
        );
        assert_ne!(request_hash("POST /s", &a), request_hash("POST /t", &a));
        assert_ne!(
            request_hash("POST /s", &json!({"a": [1, 2]})),
            request_hash("POST /s", &json!({"a": [2, 1]}))
        );
    }

    #[test]
    fn ids_have_one_shape_and_keys_map_to_one_id_per_caller() {
        assert!(is_job_id(&new_id()));
        assert_ne!(new_id(), new_id());
        let id = id_for_key("arn:aws:iam::1:user/a", "k1");
        assert!(is_job_id(&id));
        assert_eq!(id, id_for_key("arn:aws:iam::1:user/a", "k1"));
        assert_ne!(id, id_for_key("arn:aws:iam::1:user/b", "k1"));
        assert_ne!(id, id_for_key("arn:aws:iam::1:user/a", "k2"));
        for bad in [
            "",
            "xyz",
            &"A".repeat(32),
            &"0".repeat(31),
            "../../etc/passwd",
        ] {
            assert!(!is_job_id(bad), "{bad}");
        }
    }

    #[test]
    fn status_transitions() {
        use JobStatus::*;
        let all = [Queued, Running, Succeeded, Failed];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            [
                (Queued, Running),
                (Running, Running),
                (Running, Succeeded),
                (Running, Failed)
            ]
        );
        let mut job = Job::queued("f", "POST /x", json!({}), None);
        let err = job
            .finish(Ok(json!({})), 1, Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(
            err.error_type(),
            "InternalError",
            "a queued job cannot finish"
        );
        job.start("req-1", 1_000).unwrap();
        job.finish(Ok(json!({})), 2_000, Duration::from_secs(60))
            .unwrap();
        assert!(
            job.start("req-2", 3_000).is_err(),
            "a finished job stays finished"
        );
    }

    #[test]
    fn records_round_trip_through_items_and_show_results_or_errors() {
        let mut job = Job::queued(
            "summarize-document",
            "POST /summaries",
            json!({"text": "t"}),
            Some("k".into()),
        );
        assert_eq!(job.status, JobStatus::Queued);
        let item = job.to_item().unwrap();
        assert_eq!(item["status"].as_s().unwrap(), "queued");
        assert!(
            !item.contains_key("expires_at"),
            "only finished jobs expire"
        );
        assert_eq!(Job::from_item(&item).unwrap(), job);

        job.start("req-1", job.created_at + 250).unwrap();
        let result = json!({"summary": "s", "usage": {"model_calls": 1}});
        job.finish(
            Ok(result.clone()),
            job.created_at + 1250,
            Duration::from_secs(7 * 86_400),
        )
        .unwrap();
        let item = job.to_item().unwrap();
        assert_eq!(item["status"].as_s().unwrap(), "succeeded");
        assert_eq!(item["run_by"].as_s().unwrap(), "req-1");
        let expires: u64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(expires, (job.created_at + 1250) / 1000 + 7 * 86_400);
        let back = Job::from_item(&item).unwrap();
        assert_eq!(back, job);
        let view = back.view(back.result.clone());
        assert_eq!(view["status"], "succeeded");
        assert_eq!(view["result"], result);
        assert_eq!(view["usage"]["model_calls"], 1);
        assert_eq!(view["timings"], json!({"queued_ms": 250, "run_ms": 1000}));
        assert!(view.get("input").is_none() && view.get("run_by").is_none());

        let mut failed = Job::queued("translate", "POST /translations", json!({}), None);
        failed.start("req-2", failed.created_at).unwrap();
        let secret = TaskError::Storage("arn:aws:s3:::secret-bucket denied".into());
        failed
            .finish(Err(&secret), failed.created_at, Duration::from_secs(1))
            .unwrap();
        let view = failed.view(None);
        assert_eq!(
            view["error"],
            json!({"type": "StorageError", "message": "document storage failed"})
        );
        assert!(!view.to_string().contains("secret-bucket"));
    }

    #[test]
    fn job_payloads_are_recognized_exactly() {
        let id = new_id();
        assert_eq!(job_of(&job_payload(&id)), Some(id.as_str()));
        assert_eq!(job_of(&json!({"job": {"id": 5}})), None);
        assert_eq!(job_of(&json!({"job": {"id": "x"}, "text": "t"})), None);
        assert_eq!(job_of(&json!({"text": "t"})), None);
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_020_655_123), "2026-11-30T06:37:35.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn accepted_points_at_the_job() {
        let job = Job::queued("f", "POST /x", json!({}), None);
        let response = accepted(&job);
        assert_eq!(response.status_code, 202);
        assert_eq!(
            response.headers["location"],
            format!("/jobs/{}", job.id).as_str()
        );
        assert_eq!(response.headers["preference-applied"], "respond-async");
    }
}
