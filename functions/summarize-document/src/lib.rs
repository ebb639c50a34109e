//! The summarize-document Lambda function: S3 uploads (queued in SQS), Step Functions tasks and
//! `POST /summaries` in; summaries (map-reduce for long documents) out, as S3 records or
//! JSON. `POST /uploads` hands out presigned upload URLs and `GET /documents/{key}` tells
//! where an uploaded document stands. [`App`] is the function's table of handlers;
//! `lambda_kit::run` serves it.

pub mod batch;
mod claims;
pub mod config;
pub mod direct_uploads;
pub mod document;
pub mod document_status;
pub mod options;
mod prompt;
pub mod records;
pub mod requests;
pub mod source_key;
pub mod stopped;
pub mod stream;
pub mod summarize;
pub mod uploads;
pub mod versions;
pub mod workflow;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use bedrock::{Deadline, LlamaClient};
use lambda_kit::{Clients, Function, Route, TaskError, from_json, to_json};
use serde_json::Value;
use settings::ConfigError;

pub use config::Config;

/// What the handler needs, built once per cold start.
#[derive(Clone)]
pub struct App {
    /// The Bedrock client.
    pub llama: LlamaClient,
    pub s3: aws_sdk_s3::Client,
    pub config: Config,
    /// Brings failed upload messages back sooner (with `UPLOAD_QUEUE_URL`).
    pub requeue: Option<lambda_kit::sqs_retry::Requeue>,
}

/// What the function serves over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /summaries`.
    Summarize,
    /// `POST /uploads`.
    Upload,
    /// `GET /documents/{key+}`.
    Document,
}

impl Function for App {
    type Settings = Config;
    type Endpoint = Endpoint;

    const NAME: &'static str = "summarize-document";
    const ROUTES: &'static [Route<Endpoint>] = &[
        Route::post("/summaries", Endpoint::Summarize),
        Route::post("/uploads", Endpoint::Upload),
        Route::get("/documents/{key+}", Endpoint::Document),
    ];

    fn build(clients: &Clients, config: Config) -> Result<Self, ConfigError> {
        let requeue = match config.upload_queue_url() {
            Some(url) => Some(lambda_kit::sqs_retry::Requeue::new(
                clients.sdk(),
                url,
                config.upload_retry_backoff()?,
            )),
            None => None,
        };
        Ok(Self {
            llama: clients.llama.clone(),
            s3: clients.s3(),
            config,
            requeue,
        })
    }

    fn max_request_bytes(&self) -> usize {
        usize::try_from(self.config.max_request_bytes).unwrap_or(usize::MAX)
    }

    fn requeue(&self) -> Option<&lambda_kit::sqs_retry::Requeue> {
        self.requeue.as_ref()
    }

    fn estimate(
        &self,
        endpoint: Endpoint,
        input: &Value,
    ) -> Option<lambda_kit::sync_budget::Workload> {
        match endpoint {
            Endpoint::Summarize => requests::estimate(self, input),
            Endpoint::Upload | Endpoint::Document => None,
        }
    }

    async fn http(
        &self,
        endpoint: Endpoint,
        input: Value,
        deadline: Deadline,
    ) -> Result<Value, TaskError> {
        match endpoint {
            Endpoint::Summarize => {
                let request: requests::InlineRequest = from_json(input)?;
                let options = options::SummaryOptions {
                    stream: true,
                    ..request.options
                };
                let record =
                    document::summarize_inline(self, &request.text, options, deadline).await?;
                to_json(&record)
            }
            Endpoint::Upload => to_json(&direct_uploads::create(self, from_json(input)?).await?),
            // Its key is in the path, which `respond` has.
            Endpoint::Document => Err(TaskError::InvalidInput(
                "GET /documents/{key} takes the key from its path".into(),
            )),
        }
    }

    async fn respond(
        &self,
        endpoint: Endpoint,
        input: Value,
        deadline: Deadline,
        request: &ApiGatewayV2httpRequest,
    ) -> Result<ApiGatewayV2httpResponse, TaskError> {
        let body = match endpoint {
            Endpoint::Document => {
                let key = document_status::key_of(request)?;
                to_json(&document_status::status(self, &key).await?)?
            }
            _ => self.http(endpoint, input, deadline).await?,
        };
        Ok(lambda_kit::json_response(200, &body))
    }

    async fn stream(
        &self,
        input: Value,
        deadline: Deadline,
        events: &mut lambda_kit::streaming::Events,
    ) -> Result<Value, TaskError> {
        stream::stream(self, input, deadline, events).await
    }

    async fn task(&self, input: Value, deadline: Deadline) -> Result<Value, TaskError> {
        if stopped::is_status_change(&input) {
            return stopped::record_unfinished(self, input).await;
        }
        if input
            .get("action")
            .and_then(Value::as_str)
            .is_some_and(batch::is_batch_action)
        {
            return batch::run(self, from_json(input)?, deadline).await;
        }
        if input.get("action").is_some() {
            let step: workflow::Step = serde_json::from_value(input)
                .map_err(|e| TaskError::InvalidInput(format!("invalid workflow step: {e}")))?;
            return workflow::run(self, step, deadline).await;
        }
        to_json(&requests::handle_task(self, input, deadline).await?)
    }

    async fn s3(
        &self,
        event: aws_lambda_events::s3::S3Event,
        deadline: Deadline,
        delivery: &lambda_kit::Delivery,
    ) -> Result<Value, TaskError> {
        let outcomes = uploads::handle_upload(self, event, deadline, delivery).await?;
        Ok(serde_json::json!({ "records": outcomes }))
    }
}
