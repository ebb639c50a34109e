//! What a function declares: its settings, the HTTP routes it serves and its handlers.

use std::future::Future;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::s3::S3Event;
use bedrock::Deadline;
use serde_json::Value;
use settings::{ConfigError, Settings};

use crate::sqs_retry::Requeue;
use crate::streaming::Events;
use crate::sync_budget::Workload;
use crate::{Clients, Delivery, TaskError};

/// A Lambda function served by [`crate::run`]: the kit detects the trigger, routes HTTP
/// requests, checks bodies, sets deadlines and maps errors; the function only does its task.
pub trait Function: Sized {
    /// The function's own settings.
    type Settings: Settings;
    /// What a route leads to (an enum of the function's operations).
    type Endpoint: Copy + 'static;

    /// The function's name, for messages.
    const NAME: &'static str;
    /// The HTTP routes it serves.
    const ROUTES: &'static [Route<Self::Endpoint>];
    /// Whether its routes may run as asynchronous jobs (`Prefer: respond-async`).
    const ASYNC_JOBS: bool = true;

    /// Builds the function once per cold start.
    fn build(clients: &Clients, settings: Self::Settings) -> Result<Self, ConfigError>;

    /// Largest HTTP body or task input accepted, in bytes.
    fn max_request_bytes(&self) -> usize;

    /// Brings the messages an SQS batch answer lists as failures back sooner than the
    /// queue's visibility timeout (see [`crate::sqs_retry`]); `None` (the default): they
    /// wait for it.
    fn requeue(&self) -> Option<&Requeue> {
        None
    }

    /// Answers one HTTP request whose JSON body (`null` without one) is `input`.
    fn http(
        &self,
        endpoint: Self::Endpoint,
        input: Value,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Value, TaskError>>;

    /// The model work a synchronous HTTP request to `endpoint` with body `input` needs,
    /// estimated before the handler runs; a request whose estimate does not fit its time
    /// budget is refused (`SyncBudgetExceeded`) without a model call. `None` (the
    /// default, and for input the handler will refuse anyway) skips the check.
    fn estimate(&self, endpoint: Self::Endpoint, input: &Value) -> Option<Workload> {
        let _ = (endpoint, input);
        None
    }

    /// Answers one HTTP request with the request at hand (headers, path parameters,
    /// caller) and the whole response to shape; by default [`Function::http`]'s answer
    /// with `200`.
    fn respond(
        &self,
        endpoint: Self::Endpoint,
        input: Value,
        deadline: Deadline,
        request: &ApiGatewayV2httpRequest,
    ) -> impl Future<Output = Result<ApiGatewayV2httpResponse, TaskError>> {
        let _ = request;
        async move {
            let body = self.http(endpoint, input, deadline).await?;
            Ok(crate::http::json_response(200, &body))
        }
    }

    /// Runs a Step Functions task or a direct invocation.
    fn task(
        &self,
        input: Value,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Value, TaskError>>;

    /// Handles an S3 notification, invoked directly or carried by an SQS message;
    /// `delivery` says which (its id stays the same across redeliveries) and, from a
    /// queue, how often it was received. `Err` means the notification must come back
    /// (the invocation fails, or the message is a batch item failure). By default S3
    /// events are refused.
    fn s3(
        &self,
        event: S3Event,
        deadline: Deadline,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Value, TaskError>> {
        let _ = (event, deadline, delivery);
        async {
            Err(TaskError::InvalidInput(format!(
                "{} does not handle S3 events",
                Self::NAME
            )))
        }
    }

    /// Answers one streaming request (a function URL with `InvokeMode: RESPONSE_STREAM`,
    /// served when `RESPONSE_STREAMING` is on) whose JSON body is `input`: sends events
    /// through `events` as the work goes and returns the data of the final `done` event.
    /// An error before the first event is a plain JSON error response, after it an `error`
    /// event. By default functions do not stream.
    fn stream(
        &self,
        input: Value,
        deadline: Deadline,
        events: &mut Events,
    ) -> impl Future<Output = Result<Value, TaskError>> {
        let _ = (input, deadline, events);
        async {
            Err(TaskError::RouteNotFound(format!(
                "{} does not stream responses",
                Self::NAME
            )))
        }
    }
}

/// One HTTP route: an API Gateway route key (`METHOD /path`, path parameters as `{name}`)
/// and the endpoint it leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<E> {
    /// The HTTP method, upper case.
    pub method: &'static str,
    /// The path template, for example `/jobs/{id}`.
    pub path: &'static str,
    /// Where the request goes.
    pub endpoint: E,
}

impl<E> Route<E> {
    /// A `POST` route.
    pub const fn post(path: &'static str, endpoint: E) -> Self {
        Self {
            method: "POST",
            path,
            endpoint,
        }
    }

    /// A `GET` route.
    pub const fn get(path: &'static str, endpoint: E) -> Self {
        Self {
            method: "GET",
            path,
            endpoint,
        }
    }

    /// The route key, as API Gateway writes it.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether the method takes a JSON body.
    pub fn has_body(&self) -> bool {
        matches!(self.method, "POST" | "PUT" | "PATCH")
    }
}

/// Serializes a handler's result; a failure is an [`TaskError::Internal`], which every
/// trigger reports the same way.
pub fn to_json(value: &impl serde::Serialize) -> Result<Value, TaskError> {
    serde_json::to_value(value)
        .map_err(|e| TaskError::Internal(format!("cannot serialize the result: {e}")))
}

/// Parses a handler's JSON input into `T`, with a message that says what is wrong.
pub fn from_json<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, TaskError> {
    serde_json::from_value(input)
        .map_err(|e| TaskError::InvalidInput(format!("invalid request: {e}")))
}
