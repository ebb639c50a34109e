//! `POST /jobs`: the request goes to the task's function as that function's own route with
//! `Prefer: respond-async`, by a synchronous invocation, and its answer is returned as is.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_sdk_lambda::primitives::Blob;
use lambda_kit::TaskError;
use serde_json::{Value, json};

use crate::JobsSettings;

/// A task `POST /jobs` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `POST /summaries`.
    Summarize,
    /// `POST /translations`.
    Translate,
    /// `POST /tickets/classify`.
    Classify,
}

impl Task {
    /// Every task's name.
    pub const NAMES: [&'static str; 3] = ["summarize", "translate", "classify"];

    /// The task named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "summarize" => Some(Self::Summarize),
            "translate" => Some(Self::Translate),
            "classify" => Some(Self::Classify),
            _ => None,
        }
    }

    /// The route of the task's function that runs it.
    pub fn path(self) -> &'static str {
        match self {
            Self::Summarize => "/summaries",
            Self::Translate => "/translations",
            Self::Classify => "/tickets/classify",
        }
    }
}

/// The function (name or ARN) of each task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    summarize: String,
    translate: String,
    classify: String,
}

impl From<&JobsSettings> for Targets {
    fn from(s: &JobsSettings) -> Self {
        Self {
            summarize: s.summarize_function.clone(),
            translate: s.translate_function.clone(),
            classify: s.classify_function.clone(),
        }
    }
}

impl Targets {
    /// The function that runs `task`.
    pub fn function(&self, task: Task) -> &str {
        match task {
            Task::Summarize => &self.summarize,
            Task::Translate => &self.translate,
            Task::Classify => &self.classify,
        }
    }
}

/// Splits a `POST /jobs` body into the task and the route's input.
pub fn split(input: Value) -> Result<(Task, Value), TaskError> {
    let Value::Object(mut object) = input else {
        return Err(TaskError::InvalidInput(
            "the request must be a JSON object with a `task`".into(),
        ));
    };
    let task = match object.remove("task") {
        Some(Value::String(name)) => Task::parse(&name),
        _ => None,
    }
    .ok_or_else(|| {
        TaskError::InvalidInput(format!("`task` must be one of {}", Task::NAMES.join(", ")))
    })?;
    Ok((task, Value::Object(object)))
}

/// The HTTP API event for `task`'s route with `body`, carrying the caller's request
/// context (its identity scopes idempotency keys) and `Idempotency-Key`.
pub fn route_event(task: Task, body: &Value, request: &ApiGatewayV2httpRequest) -> Value {
    let path = task.path();
    let route_key = format!("POST {path}");
    let mut headers = json!({"content-type": "application/json", "prefer": "respond-async"});
    if let Some(key) = request
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
    {
        headers["idempotency-key"] = key.into();
    }
    let mut context = serde_json::to_value(&request.request_context).unwrap_or_else(|_| json!({}));
    context["routeKey"] = route_key.clone().into();
    context["http"]["method"] = "POST".into();
    context["http"]["path"] = path.into();
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": context,
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
}

/// Forwards a `POST /jobs` request and returns the task function's answer.
pub async fn submit(
    lambda: &aws_sdk_lambda::Client,
    targets: &Targets,
    input: Value,
    request: &ApiGatewayV2httpRequest,
) -> Result<ApiGatewayV2httpResponse, TaskError> {
    let (task, body) = split(input)?;
    let function = targets.function(task);
    let event = route_event(task, &body, request);
    let output = lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(event.to_string().into_bytes()))
        .send()
        .await
        .map_err(|e| {
            let detail = aws_sdk_lambda::error::DisplayErrorContext(e);
            TaskError::Storage(format!("cannot invoke {function}: {detail}"))
        })?;
    let payload = output.payload().map(|p| p.as_ref()).unwrap_or_default();
    if let Some(kind) = output.function_error() {
        let text = String::from_utf8_lossy(payload);
        return Err(TaskError::Storage(format!(
            "{function} failed ({kind}): {text}"
        )));
    }
    serde_json::from_slice(payload).map_err(|e| {
        TaskError::Storage(format!(
            "{function} answered something not an HTTP response: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_is_taken_out_of_the_input() {
        let (task, rest) =
            split(json!({"task": "translate", "text": "hi", "target_language": "de"})).unwrap();
        assert_eq!(task, Task::Translate);
        assert_eq!(rest, json!({"text": "hi", "target_language": "de"}));
        for bad in [
            json!([]),
            json!({"text": "x"}),
            json!({"task": "paint"}),
            json!({"task": 1}),
        ] {
            let err = split(bad.clone()).unwrap_err();
            assert_eq!(err.http_status(), 400, "{bad}");
            assert!(err.to_string().contains("summarize, translate, classify") || bad.is_array());
        }
    }

    #[test]
    fn the_forwarded_event_is_the_route_with_respond_async() {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(json!({
            "version": "2.0", "routeKey": "POST /jobs", "rawPath": "/jobs",
            "headers": {"content-type": "application/json", "idempotency-key": "k-1"},
            "requestContext": {"http": {"method": "POST", "path": "/jobs"}, "stage": "$default",
                               "authorizer": {"iam": {"userArn": "arn:aws:iam::1:user/a"}}},
            "body": "{}", "isBase64Encoded": false
        }))
        .unwrap();
        let event = route_event(Task::Classify, &json!({"subject": "s"}), &request);
        assert_eq!(event["routeKey"], "POST /tickets/classify");
        assert_eq!(event["requestContext"]["http"]["path"], "/tickets/classify");
        assert_eq!(event["headers"]["prefer"], "respond-async");
        assert_eq!(event["headers"]["idempotency-key"], "k-1");
        assert_eq!(
            event["requestContext"]["authorizer"]["iam"]["userArn"],
            "arn:aws:iam::1:user/a"
        );
        let back: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        assert_eq!(back.body.as_deref(), Some(r#"{"subject":"s"}"#));
    }
}
