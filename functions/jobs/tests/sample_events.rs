//! The job samples in `events/` tell one story: `Prefer: respond-async` on `POST /summaries`
//! and `POST /jobs` with the same `Idempotency-Key` and body make the same job, which
//! `GET /jobs/{id}` reads and the worker payload runs. Each sample is read by the parsers
//! the functions use (the HTTP API event type, the `Prefer` and `Idempotency-Key` headers,
//! the caller, `POST /jobs` forwarding); tests/e2e/test_jobs.py runs them on the functions.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use jobs::{App, Task, forward};
use lambda_kit::Function;
use lambda_kit::jobs::{
    caller, id_for_key, idempotency_key, is_job_id, job_payload, prefers_async,
};
use serde_json::Value;
use testkit::events::sample;

fn request(name: &str) -> ApiGatewayV2httpRequest {
    serde_json::from_value(sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn body(request: &ApiGatewayV2httpRequest) -> Value {
    serde_json::from_str(request.body.as_deref().expect("a body")).expect("a JSON body")
}

fn serves(request: &ApiGatewayV2httpRequest) -> bool {
    let key = request.route_key.as_deref().unwrap_or_default();
    App::ROUTES.iter().any(|route| route.key() == key)
}

#[test]
fn the_job_samples_are_one_job_in_both_forms() {
    let on_route = request("summarize-document-respond-async-http.json");
    assert!(prefers_async(&on_route.headers));
    assert_eq!(on_route.route_key.as_deref(), Some("POST /summaries"));
    let key = idempotency_key(&on_route.headers)
        .unwrap()
        .expect("an Idempotency-Key");
    let id = id_for_key(&caller(&on_route), &key);
    assert!(is_job_id(&id));

    // POST /jobs hands the route exactly that request.
    let submit = request("jobs-submit-http.json");
    assert!(serves(&submit), "jobs has no route {:?}", submit.route_key);
    let (task, input) = forward::split(body(&submit)).unwrap();
    assert_eq!(task, Task::Summarize);
    let forwarded: ApiGatewayV2httpRequest =
        serde_json::from_value(forward::route_event(task, &input, &submit)).unwrap();
    assert_eq!(forwarded.route_key, on_route.route_key);
    assert_eq!(forwarded.raw_path, on_route.raw_path);
    assert!(prefers_async(&forwarded.headers));
    assert_eq!(idempotency_key(&forwarded.headers).unwrap(), Some(key));
    assert_eq!(caller(&forwarded), caller(&on_route));
    assert_eq!(body(&forwarded), body(&on_route));

    // GET /jobs/{id} reads that job, as the caller who submitted it.
    let status = request("jobs-status-http.json");
    assert!(serves(&status), "jobs has no route {:?}", status.route_key);
    assert_eq!(status.path_parameters.get("id"), Some(&id));
    assert_eq!(
        status.raw_path.as_deref(),
        Some(format!("/jobs/{id}").as_str())
    );
    assert_eq!(caller(&status), caller(&on_route));

    // The worker's payload is the one the function sends itself for that job.
    assert_eq!(sample("jobs-worker.json"), job_payload(&id));
}
