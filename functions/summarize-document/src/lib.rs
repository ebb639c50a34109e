//! The summarize-document Lambda function: S3 uploads, Step Functions tasks and
//! `POST /summaries` in; summaries (map-reduce for long documents) out, as S3 records or
//! JSON. `main.rs` only builds [`App`] once and runs [`handle`].

pub mod config;
pub mod document;
pub mod options;
mod prompt;
pub mod requests;
pub mod summarize;
pub mod uploads;
pub mod workflow;

use bedrock::{Deadline, LlamaClient};
use lambda_kit::{TaskError, Trigger};

pub use config::Config;

/// What the handler needs, built once per cold start.
#[derive(Clone)]
pub struct App {
    /// The Bedrock client.
    pub llama: LlamaClient,
    /// The S3 client.
    pub s3: aws_sdk_s3::Client,
    /// Settings.
    pub config: Config,
}

/// Handles one invocation of any trigger.
pub async fn handle(
    app: &App,
    event: serde_json::Value,
    deadline: Deadline,
) -> Result<serde_json::Value, TaskError> {
    match Trigger::classify(event)? {
        Trigger::Http(request) => Ok(requests::handle_http(app, &request, deadline).await),
        Trigger::S3(event) => {
            let outcomes = uploads::handle_upload(app, event, deadline).await?;
            Ok(serde_json::json!({ "records": outcomes }))
        }
        Trigger::Task(input) if input.get("action").is_some() => {
            let step: workflow::Step = serde_json::from_value(input)
                .map_err(|e| TaskError::InvalidInput(format!("invalid workflow step: {e}")))?;
            workflow::run(app, step, deadline).await
        }
        Trigger::Task(input) => {
            let record = requests::handle_task(app, input, deadline).await?;
            serde_json::to_value(record).map_err(|e| TaskError::Internal(e.to_string()))
        }
    }
}
