//! One invocation: detect the trigger, set its deadline, call the function's handler and
//! turn the outcome into what that trigger expects.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bedrock::Deadline;
use serde_json::Value;

use crate::boundary::BoundarySettings;
use crate::jobs::{self, JobStore};
use crate::sync_budget::SyncRates;
use crate::trigger::Trigger;
use crate::{Delivery, Function, TaskError, http, router, sqs};

/// The time one invocation may take, and which invocation it is.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The Lambda deadline, less the margin kept to write results.
    pub deadline: Deadline,
    /// The most an HTTP request may take (API Gateway stops waiting at 30 s).
    pub api_time_budget: Duration,
    /// Lambda's request id; the retries of an asynchronous invocation keep it.
    pub request_id: Option<String>,
    /// The rates that estimate a synchronous HTTP request's model time.
    pub sync_rates: SyncRates,
}

impl From<Deadline> for Invocation {
    /// The Lambda deadline with the default API time budget.
    fn from(deadline: Deadline) -> Self {
        Self {
            deadline,
            api_time_budget: BoundarySettings::default().api_time_budget(),
            request_id: None,
            sync_rates: SyncRates::default(),
        }
    }
}

/// A request API Gateway received longer ago than this is not a live one (the gateway
/// gives up after 30 s): its receive time is not used.
const STALE_RECEIVE_TIME: Duration = Duration::from_secs(60);

impl Invocation {
    /// An HTTP request's deadline: the sooner of the Lambda deadline and the API budget,
    /// counted from when API Gateway received the request (`requestContext.timeEpoch`,
    /// milliseconds since the epoch), so that a cold start and the gateway's own time come
    /// out of the budget. Without a plausible receive time (none, in the future, or older
    /// than [`STALE_RECEIVE_TIME`]: a replayed or sample event, not a live request) the
    /// budget starts now.
    fn http_deadline(&self, received_ms: Option<i64>) -> Deadline {
        let now_ms = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let waited = received_ms
            .filter(|&at| at > 0 && at <= now_ms)
            .map(|at| Duration::from_millis(u64::try_from(now_ms - at).unwrap_or(0)))
            .filter(|&waited| waited <= STALE_RECEIVE_TIME)
            .unwrap_or(Duration::ZERO);
        let budget = Deadline::after(self.api_time_budget.saturating_sub(waited));
        if budget.instant() < self.deadline.instant() {
            budget
        } else {
            self.deadline
        }
    }
}

/// Handles one event of any trigger. HTTP API requests always get `Ok` with an HTTP
/// response (errors as `{"error": {"type", "message"}}` with their status); SQS batches get
/// `{"batchItemFailures": [...]}` (see [`crate::sqs`]); S3 events and task input get the
/// handler's result, or an `Err` whose `error_type` Step Functions `Retry`/`Catch` match.
pub async fn handle<F: Function>(
    function: &F,
    event: Value,
    invocation: impl Into<Invocation>,
) -> Result<Value, TaskError> {
    handle_with(function, None, event, invocation.into()).await
}

/// [`handle`] with the function's job store: HTTP requests may then prefer an
/// asynchronous response, and a job payload (`{"job": {"id"}}`) runs that job.
pub(crate) async fn handle_with<F: Function>(
    function: &F,
    jobs: Option<&JobStore>,
    event: Value,
    invocation: Invocation,
) -> Result<Value, TaskError> {
    if let Some(store) = jobs
        && let Some(id) = jobs::job_of(&event)
    {
        let result = Box::pin(jobs::work(function, store, id, &invocation)).await;
        if let Err(e) = &result {
            e.log();
        }
        return result;
    }
    let result = match Trigger::classify(event) {
        Trigger::Http(request) => {
            let received = request.as_ref().ok().map(|r| r.request_context.time_epoch);
            let deadline = invocation.http_deadline(received);
            let sync_rates = invocation.sync_rates;
            return Ok(http_response(function, jobs, request, deadline, sync_rates).await);
        }
        Trigger::S3(event) => match event {
            Ok(event) => {
                let delivery = Delivery {
                    id: invocation.request_id.clone(),
                    receive_count: None,
                };
                boxed(function.s3(event, invocation.deadline, &delivery)).await
            }
            Err(e) => Err(e),
        },
        Trigger::Sqs(event) => match event {
            Ok(event) => Ok(Box::pin(sqs::handle(function, event, invocation.deadline)).await),
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
    jobs: Option<&JobStore>,
    request: Result<Box<aws_lambda_events::apigw::ApiGatewayV2httpRequest>, TaskError>,
    deadline: Deadline,
    sync_rates: SyncRates,
) -> Value {
    let work = async {
        let request = request?;
        let route = router::find(F::ROUTES, &request)?;
        let input = if route.has_body() {
            http::json_body(&request, function.max_request_bytes())?
        } else {
            Value::Null
        };
        // Only requests with model work to wait for become jobs: without an estimate
        // (input the handler refuses, or a route that does no model work) the request is
        // answered at once, so bad input still gets its 4xx (RFC 7240 lets a server
        // ignore the preference).
        let workload = function.estimate(route.endpoint, &input);
        if F::ASYNC_JOBS
            && workload.is_some()
            && let Some(store) = jobs.filter(|store| store.can_submit())
            && jobs::prefers_async(&request.headers)
        {
            return Box::pin(jobs::submit::<F>(store, &route.key(), input, &request)).await;
        }
        // Work that cannot finish in the budget is refused before any model call.
        if let Some(workload) = workload {
            sync_rates.check(&workload, deadline)?;
        }
        Box::pin(function.respond(route.endpoint, input, deadline, &request)).await
    };
    // An error after model calls says what they cost.
    let (result, usage) = bedrock::metered(work).await;
    let response = result.unwrap_or_else(|e| http::error_response(&e, &usage));
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
    use crate::sync_budget::{ModelCall, Workload};
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

        /// `{"calls": n}`: n calls of 1000 generated tokens, one at a time.
        fn estimate(&self, (): (), input: &Value) -> Option<Workload> {
            let calls = usize::try_from(input.get("calls")?.as_u64()?).ok()?;
            let call = ModelCall {
                prompt_tokens: 0,
                max_gen_len: 1000,
            };
            Some(Workload::new().then_parallel(calls, 1, call))
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
            sync_rates: SyncRates::default(),
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
    async fn the_api_budget_counts_from_when_the_gateway_received_the_request() {
        let probe = Probe::new(false);
        let mut event = post("{}");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        // Received 6 s ago (a cold start, say): 4 s of the 10 s budget are left.
        event["requestContext"]["timeEpoch"] = (now_ms - 6_000).into();
        let out = handle(&probe, event, invocation()).await.unwrap();
        assert_eq!(out["statusCode"], 200);
        assert!(probe.seen.get().unwrap() <= Duration::from_secs(4));
        // A sample event from days ago gets the whole budget.
        let mut event = post("{}");
        event["requestContext"]["timeEpoch"] = (now_ms - 86_400_000).into();
        handle(&probe, event, invocation()).await.unwrap();
        assert!(probe.seen.get().unwrap() > Duration::from_secs(5));
        // A receive time in the future (clock skew) does not stretch the budget.
        let mut event = post("{}");
        event["requestContext"]["timeEpoch"] = (now_ms + 60_000).into();
        handle(&probe, event, invocation()).await.unwrap();
        assert!(probe.seen.get().unwrap() <= Duration::from_secs(10));
    }

    #[tokio::test]
    async fn only_synchronous_http_requests_are_held_to_the_estimate() {
        // 100 generated tokens/s: 3 calls of 1000 tokens take 30 s, over the 10 s budget.
        let invocation = || Invocation {
            sync_rates: SyncRates {
                prompt_tokens_per_second: 1000,
                generation_tokens_per_second: 100,
            },
            ..invocation()
        };
        let probe = Probe::new(false);
        let out = handle(&probe, post(r#"{"calls":3}"#), invocation())
            .await
            .unwrap();
        assert_eq!(out["statusCode"], 422);
        let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["type"], "SyncBudgetExceeded");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("estimated 30.0 s"), "{message}");
        assert!(message.contains("Prefer: respond-async"), "{message}");
        assert!(probe.seen.get().is_none(), "refused before the handler");
        let out = handle(&probe, post(r#"{"calls":0}"#), invocation())
            .await
            .unwrap();
        assert_eq!(out["statusCode"], 200);
        // A task (Step Functions, a job worker) has the Lambda deadline: no estimate.
        let probe = Probe::new(false);
        handle(&probe, serde_json::json!({"calls": 3}), invocation())
            .await
            .unwrap();
        assert!(probe.seen.get().is_some());
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
