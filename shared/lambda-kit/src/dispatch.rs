//! One invocation: detect the trigger, set its deadline, call the function's handler and
//! turn the outcome into what that trigger expects.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bedrock::Deadline;
use serde_json::Value;

use crate::boundary::BoundarySettings;
use crate::trigger::Trigger;
use crate::{Function, TaskError, http, router};

/// The time one invocation may take, and which invocation it is.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The Lambda deadline, less the margin kept to write results.
    pub deadline: Deadline,
    /// The most an HTTP request may take (API Gateway stops waiting at 30 s).
    pub api_time_budget: Duration,
    /// Lambda's request id; the retries of an asynchronous invocation keep it.
    pub request_id: Option<String>,
}

impl From<Deadline> for Invocation {
    /// The Lambda deadline with the default API time budget.
    fn from(deadline: Deadline) -> Self {
        Self {
            deadline,
            api_time_budget: BoundarySettings::default().api_time_budget(),
            request_id: None,
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
            Ok(event) => {
                let request_id = invocation.request_id.as_deref();
                boxed(function.s3(event, invocation.deadline, request_id)).await
            }
            Err(e) => Err(e),
        },
        Trigger::Task(input) => match check_size(function, &input) {
            Ok(()) => boxed(function.task(input, invocation.deadline)).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = &result {
        e.log();
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde::ser::Error as _;

    use super::*;
    use crate::{Clients, Route};

    /// Test double: records the deadline it was given and answers with `answer`.
    struct Probe {
        seen: Cell<Option<Duration>>,
        unserializable: bool,
    }

    struct Unserializable;

    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(S::Error::custom("no"))
        }
    }

    impl Probe {
        fn new(unserializable: bool) -> Self {
            Self {
                seen: Cell::new(None),
                unserializable,
            }
        }

        fn answer(&self, deadline: Deadline) -> Result<Value, TaskError> {
            self.seen.set(Some(deadline.remaining()));
            if self.unserializable {
                crate::to_json(&Unserializable)
            } else {
                Ok(serde_json::json!({"ok": true}))
            }
        }
    }

    impl Function for Probe {
        type Settings = crate::boundary::BoundarySettings;
        type Endpoint = ();
        const NAME: &'static str = "probe";
        const ROUTES: &'static [Route<()>] = &[Route::post("/probe", ())];

        fn build(_: &Clients, _: Self::Settings) -> Result<Self, settings::ConfigError> {
            Ok(Self::new(false))
        }

        fn max_request_bytes(&self) -> usize {
            64
        }

        async fn http(&self, (): (), _: Value, deadline: Deadline) -> Result<Value, TaskError> {
            self.answer(deadline)
        }

        async fn task(&self, _: Value, deadline: Deadline) -> Result<Value, TaskError> {
            self.answer(deadline)
        }
    }

    fn post(body: &str) -> Value {
        serde_json::json!({
            "version": "2.0", "routeKey": "POST /probe", "rawPath": "/probe",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/probe"}, "stage": "$default"},
            "body": body, "isBase64Encoded": false
        })
    }

    fn invocation() -> Invocation {
        Invocation {
            deadline: Deadline::after(Duration::from_secs(600)),
            api_time_budget: Duration::from_secs(10),
            request_id: None,
        }
    }

    #[tokio::test]
    async fn http_requests_get_the_api_budget_and_tasks_the_lambda_deadline() {
        let probe = Probe::new(false);
        let out = handle(&probe, post("{}"), invocation()).await.unwrap();
        assert_eq!(out["statusCode"], 200);
        assert!(probe.seen.get().unwrap() <= Duration::from_secs(10));
        handle(&probe, serde_json::json!({"a": 1}), invocation())
            .await
            .unwrap();
        assert!(probe.seen.get().unwrap() > Duration::from_secs(10));
    }

    #[tokio::test]
    async fn an_unserializable_result_is_a_500_or_an_internal_error() {
        let probe = Probe::new(true);
        let out = handle(&probe, post("{}"), invocation()).await.unwrap();
        assert_eq!(out["statusCode"], 500);
        let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["type"], "InternalError");
        assert_eq!(body["error"]["message"], "internal error");
        let err = handle(&probe, serde_json::json!({}), invocation())
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "InternalError");
    }

    #[tokio::test]
    async fn oversize_task_input_and_s3_events_are_refused_before_the_handler() {
        let probe = Probe::new(false);
        let big = serde_json::json!({"text": "x".repeat(100)});
        let err = handle(&probe, big, invocation()).await.unwrap_err();
        assert_eq!(err.error_type(), "InputTooLarge");
        let s3: Value =
            serde_json::from_str(include_str!("../../../events/summarize-document-s3.json"))
                .unwrap();
        let err = handle(&probe, s3, invocation()).await.unwrap_err();
        assert!(
            err.to_string().contains("probe does not handle S3 events"),
            "{err}"
        );
        assert!(probe.seen.get().is_none(), "the handler never ran");
    }
}
