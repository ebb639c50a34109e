//! One invocation: detect the trigger, set its deadline, call the function's handler and
//! turn the outcome into what that trigger expects.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bedrock::Deadline;
use serde_json::Value;

use crate::trigger::Trigger;
use crate::{Function, TaskError, http, router};

/// The time one invocation may take.
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    /// The Lambda deadline, less the margin kept to write results.
    pub deadline: Deadline,
    /// The most an HTTP request may take (API Gateway stops waiting at 30 s).
    pub api_time_budget: Duration,
}

/// The default HTTP time budget: API Gateway's 30 s less room for the response.
pub const DEFAULT_API_TIME_BUDGET: Duration = Duration::from_secs(28);

impl From<Deadline> for Invocation {
    fn from(deadline: Deadline) -> Self {
        Self {
            deadline,
            api_time_budget: DEFAULT_API_TIME_BUDGET,
        }
    }
}

impl Invocation {
    /// An HTTP request's deadline: the sooner of the Lambda deadline and the API budget.
    fn http_deadline(&self) -> Deadline {
        let budget = Deadline::after(self.api_time_budget);
        if budget.instant() < self.deadline.instant() {
            budget
        } else {
            self.deadline
        }
    }
}

/// Handles one event of any trigger. HTTP API requests always get `Ok` with an HTTP
/// response (errors as `{"error": {"type", "message"}}` with their status); S3 events and
/// task input get the handler's result, or an `Err` whose `error_type` Step Functions
/// `Retry`/`Catch` match.
pub async fn handle<F: Function>(
    function: &F,
    event: Value,
    invocation: impl Into<Invocation>,
) -> Result<Value, TaskError> {
    let invocation = invocation.into();
    let result = match Trigger::classify(event) {
        Trigger::Http(request) => {
            return Ok(http_response(function, request, invocation.http_deadline()).await);
        }
        Trigger::S3(event) => match event {
            Ok(event) => boxed(function.s3(event, invocation.deadline)).await,
            Err(e) => Err(e),
        },
        Trigger::Task(input) => match check_size(function, &input) {
            Ok(()) => boxed(function.task(input, invocation.deadline)).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = &result {
        log_failure(e);
    }
    result
}

async fn http_response<F: Function>(
    function: &F,
    request: Result<Box<aws_lambda_events::apigw::ApiGatewayV2httpRequest>, TaskError>,
    deadline: Deadline,
) -> Value {
    let result = async {
        let request = request?;
        let route = router::find(F::ROUTES, &request)?;
        let input = if route.has_body() {
            http::json_body(&request, function.max_request_bytes())?
        } else {
            Value::Null
        };
        boxed(function.http(route.endpoint, input, deadline)).await
    }
    .await;
    let response = match result {
        Ok(body) => http::json_response(200, &body),
        Err(e) => http::error_response(&e),
    };
    http::into_event(&response)
}

/// Boxes a handler's future: the SDK futures inside nest deeper than rustc's default
/// layout query limit allows in every caller's future.
fn boxed<'a>(
    future: impl Future<Output = Result<Value, TaskError>> + 'a,
) -> Pin<Box<dyn Future<Output = Result<Value, TaskError>> + 'a>> {
    Box::pin(future)
}

fn check_size<F: Function>(function: &F, input: &Value) -> Result<(), TaskError> {
    let bytes = serde_json::to_vec(input).map_or(0, |b| b.len());
    let limit = function.max_request_bytes();
    if bytes > limit {
        return Err(TaskError::InputTooLarge(format!(
            "task input is {bytes} bytes; the limit is {limit}"
        )));
    }
    Ok(())
}

fn log_failure(e: &TaskError) {
    if e.http_status() >= 500 || e.http_status() == 429 {
        tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
    } else {
        tracing::info!(error_type = e.error_type(), "input rejected");
    }
}
