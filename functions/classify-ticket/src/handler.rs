//! The Lambda handler: HTTP API requests and Step Functions task input in, one
//! classification out.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use bedrock::{Deadline, LlamaClient};
use lambda_kit::{TaskError, Trigger, http};
use serde_json::Value;

use crate::classify::{Classifier, TicketClassification};
use crate::config::{Config, Limits};
use crate::ticket::Ticket;

/// The HTTP route this function serves.
pub const ROUTE: &str = "POST /tickets/classify";

/// What the handler needs, built once per cold start and borrowed by every invocation.
pub struct App {
    client: LlamaClient,
    limits: Limits,
    classifier: Classifier,
}

impl App {
    /// The app for `client` and `config`.
    pub fn new(client: LlamaClient, config: Config) -> Self {
        Self {
            client,
            limits: config.limits,
            classifier: Classifier::new(config.taxonomy, config.max_gen_len),
        }
    }

    /// The classifier (taxonomy and prompts).
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Checks a JSON ticket and classifies it.
    pub async fn classify(
        &self,
        input: Value,
        deadline: Deadline,
    ) -> Result<TicketClassification, TaskError> {
        let ticket = Ticket::from_json(input, &self.limits)?;
        let result = self
            .classifier
            .classify(&self.client, ticket, deadline)
            .await?;
        tracing::info!(
            category = %result.category,
            priority = %result.priority,
            queue = %result.queue,
            needs_review = result.needs_review,
            model_calls = result.usage.model_calls,
            language = result.language.map(|l| l.code()),
            "ticket classified"
        );
        Ok(result)
    }
}

/// Handles one invocation. An HTTP API request always gets `Ok` with the HTTP response
/// (errors become `{"error": {"type", "message"}}` with their status); Step Functions task
/// input gets the classification, or an `Err` whose `error_type` `Retry`/`Catch` match.
pub async fn handle(app: &App, event: Value, deadline: Deadline) -> Result<Value, TaskError> {
    let looks_http = event
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .is_some();
    match Trigger::classify(event) {
        Ok(Trigger::Http(request)) => Ok(http_response(app, &request, deadline).await),
        Ok(Trigger::Task(input)) => {
            let bytes = serde_json::to_vec(&input).map_or(0, |b| b.len());
            if bytes > app.limits.max_request_bytes {
                return Err(TaskError::InputTooLarge(format!(
                    "task input is {bytes} bytes; the limit is {}",
                    app.limits.max_request_bytes
                )));
            }
            let result = app.classify(input, deadline).await?;
            serde_json::to_value(result)
                .map_err(|e| TaskError::Internal(format!("cannot serialize the result: {e}")))
        }
        Ok(Trigger::S3(_)) => Err(TaskError::InvalidInput(
            "classify-ticket does not handle S3 events; send a ticket as task input or to \
             POST /tickets/classify"
                .into(),
        )),
        Err(err) if looks_http => Ok(to_json(http::error_response(&err))),
        Err(err) => Err(err),
    }
}

async fn http_response(app: &App, request: &ApiGatewayV2httpRequest, deadline: Deadline) -> Value {
    let route = http::route(request);
    let response = if !serves(request, &route) {
        http::error_response(&TaskError::InvalidInput(format!(
            "no route for {route}; use {ROUTE}"
        )))
    } else {
        match http::json_body::<Value>(request, app.limits.max_request_bytes) {
            Err(err) => http::error_response(&err),
            Ok(input) => match app.classify(input, deadline).await {
                Ok(result) => http::json_response(200, &result),
                Err(err) => http::error_response(&err),
            },
        }
    };
    to_json(response)
}

/// Whether the request is for [`ROUTE`]'s path: by its route key, or by its path (with or
/// without the stage name in front, as API Gateway sends it for named stages).
fn serves(request: &ApiGatewayV2httpRequest, route: &str) -> bool {
    const PATH: &str = "/tickets/classify";
    if request.route_key.as_deref() == Some(ROUTE) {
        return true;
    }
    let path = route.split_once(' ').map_or("", |(_, path)| path);
    let path = path.strip_suffix('/').unwrap_or(path);
    path == PATH
        || request
            .request_context
            .stage
            .as_deref()
            .and_then(|stage| path.strip_prefix('/')?.strip_prefix(stage))
            == Some(PATH)
}

fn to_json(response: aws_lambda_events::apigw::ApiGatewayV2httpResponse) -> Value {
    serde_json::to_value(response).unwrap_or_else(|_| {
        serde_json::json!({
            "statusCode": 500,
            "headers": {"content-type": "application/json"},
            "body": "{\"error\":{\"type\":\"InternalError\",\"message\":\"internal error\"}}",
            "isBase64Encoded": false
        })
    })
}
