//! Bedrock's quotas (tokens and requests per minute, concurrency without a queue) and the
//! counters at `/_local/stats`, seen through the real AWS SDK. The quota window runs on tokio's
//! clock: tests that need a minute to pass run paused and sleep through it.

mod common;

use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::operation::invoke_model_with_response_stream::InvokeModelWithResponseStreamError;
use bedrock_local::{Backend, Config, Counters, ErrorKind, Outcome, Rule, Script, Server};
use common::{MODEL, body, client};

const TOO_MANY_TOKENS: &str = "Too many tokens, please wait before trying again.";

async fn try_invoke(
    client: &Client,
    prompt: &str,
    max_gen_len: u32,
) -> Result<(), InvokeModelError> {
    client
        .invoke_model()
        .model_id(MODEL)
        .body(body(prompt, max_gen_len))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.into_service_error())
}

/// The counters, read over HTTP as a load test reads them.
async fn stats(server: &Server) -> Counters {
    let response = common::raw(server.local_addr(), "GET", "/_local/stats", b"").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let counters: Counters = serde_json::from_slice(&response.body).expect("counters JSON");
    assert_eq!(counters, server.counters());
    counters
}

fn with_limits(tokens_per_minute: Option<u64>, requests_per_minute: Option<u64>) -> Config {
    Config {
        tokens_per_minute,
        requests_per_minute,
        ..Config::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_second_call_over_the_token_budget_is_throttled_until_the_minute_passes() {
    // Each call reserves 4 prompt words + 10 = 14; the first settles to 4 + 5 generated
    // ("Echo: a b c d"), and 9 + 14 is over 20.
    let server = common::start(with_limits(Some(20), None)).await;
    let client = client(&server).await;
    try_invoke(&client, "a b c d", 10).await.unwrap();
    let error = try_invoke(&client, "a b c d", 10).await.unwrap_err();
    assert!(
        matches!(error, InvokeModelError::ThrottlingException(_)),
        "{error:?}"
    );
    assert_eq!(error.message(), Some(TOO_MANY_TOKENS));
    let stream_error = client
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .body(body("a b c d", 10))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            stream_error,
            InvokeModelWithResponseStreamError::ThrottlingException(_)
        ),
        "{stream_error:?}"
    );

    let counters = stats(&server).await;
    assert_eq!(counters.requests, 3);
    assert_eq!((counters.completed, counters.throttled), (1, 2));
    assert_eq!(counters.throttled_by.tokens_per_minute, 2);
    assert_eq!((counters.prompt_tokens, counters.generated_tokens), (4, 5));
    assert_eq!(counters.tokens_in_window, 9);
    assert_eq!(counters.peak_tokens_per_minute, 14);
    assert_eq!(counters.tokens_per_minute_limit, Some(20));
    assert_eq!(counters.requests_per_minute_limit, None);

    // A minute after the first call, its tokens have left the window.
    tokio::time::sleep(Duration::from_secs(60)).await;
    try_invoke(&client, "a b c d", 10).await.unwrap();
    let counters = stats(&server).await;
    assert_eq!((counters.completed, counters.tokens_in_window), (2, 9));
    assert!(counters.peak_tokens_per_minute <= 20);
}

#[tokio::test(start_paused = true)]
async fn calls_over_the_request_budget_are_throttled() {
    let server = common::start(with_limits(None, Some(2))).await;
    let client = client(&server).await;
    try_invoke(&client, "hi", 10).await.unwrap();
    try_invoke(&client, "hi", 10).await.unwrap();
    let error = try_invoke(&client, "hi", 10).await.unwrap_err();
    assert!(
        matches!(error, InvokeModelError::ThrottlingException(_)),
        "{error:?}"
    );
    assert_eq!(
        error.message(),
        Some("Too many requests, please wait before trying again.")
    );
    let counters = stats(&server).await;
    assert_eq!(counters.throttled_by.requests_per_minute, 1);
    assert_eq!(
        (
            counters.requests_in_window,
            counters.peak_requests_per_minute
        ),
        (2, 2)
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    try_invoke(&client, "hi", 10).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_a_queue_calls_beyond_the_slots_are_throttled_at_once() {
    const CAP: usize = 2;
    const SENT: usize = 12;
    let server = common::start(Config {
        backend: Backend::Scripted(Script::new(vec![
            Rule::new(Outcome::text("done")).delay(Duration::from_secs(5)),
        ])),
        max_concurrency: Some(CAP),
        max_queue: 0,
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    // Half InvokeModel, half streams, all fired at once.
    let calls: Vec<_> = (0..SENT)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    return try_invoke(&client, "hi", 10)
                        .await
                        .map_err(|e| e.code().map(str::to_owned));
                }
                let mut output = client
                    .invoke_model_with_response_stream()
                    .model_id(MODEL)
                    .body(body("hi", 10))
                    .send()
                    .await
                    .map_err(|e| e.into_service_error().code().map(str::to_owned))?;
                while output
                    .body
                    .recv()
                    .await
                    .expect("stream ends well")
                    .is_some()
                {}
                Ok(())
            })
        })
        .collect();
    let mut answered = 0;
    let mut throttled = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(()) => answered += 1,
            Err(code) => {
                assert_eq!(code.as_deref(), Some("ThrottlingException"));
                throttled += 1;
            }
        }
    }
    let counters = stats(&server).await;
    assert_eq!(answered + throttled, SENT);
    assert!(answered >= CAP && throttled > 0, "{answered} {throttled}");
    assert_eq!(counters.requests, SENT as u64);
    assert_eq!(counters.completed, answered as u64);
    assert_eq!(counters.throttled, throttled as u64);
    assert_eq!(counters.throttled_by.concurrency, throttled as u64);
    assert_eq!(counters.completed + counters.throttled, SENT as u64);
    assert_eq!(counters.peak_in_flight, CAP as u64);
    assert_eq!((counters.in_flight, counters.open_requests), (0, 0));
    assert!(counters.peak_open_requests >= counters.peak_in_flight);
    assert_eq!((counters.max_concurrency, counters.max_queue), (2, 0));
}

#[tokio::test]
async fn injected_throttles_are_counted_apart() {
    let server = common::scripted(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).times(1),
        Rule::new(Outcome::stream_error(1, ErrorKind::ThrottlingException)).times(1),
        Rule::new(Outcome::error(ErrorKind::ModelErrorException)).times(1),
    ])
    .await;
    let client = client(&server).await;
    assert!(try_invoke(&client, "hi", 10).await.is_err());
    let streamed = common::stream(&client, MODEL, body("hi there", 10)).await;
    assert!(streamed.error.is_some());
    assert!(try_invoke(&client, "hi", 10).await.is_err());
    try_invoke(&client, "hi", 10).await.unwrap();
    let counters = stats(&server).await;
    assert_eq!(counters.throttled_by.injected, 2);
    assert_eq!(
        (
            counters.requests,
            counters.completed,
            counters.throttled,
            counters.failed
        ),
        (4, 1, 2, 1)
    );
    // The stream generated one word before its exception frame.
    assert_eq!(counters.generated_tokens, 1 + 2);
}

#[tokio::test]
async fn stats_hold_counts_only_and_reset_zeroes_them() {
    let server = common::scripted(vec![]).await;
    let client = client(&server).await;
    try_invoke(&client, "confidential payroll figures", 10)
        .await
        .unwrap();
    let response = common::raw(server.local_addr(), "GET", "/_local/stats", b"").await;
    let text = String::from_utf8(response.body.clone()).unwrap();
    assert!(
        !text.contains("payroll") && !text.contains("Echo"),
        "{text}"
    );
    let json = response.json();
    let fields = json.as_object().unwrap();
    assert!(
        fields
            .values()
            .all(|v| v.is_number() || v.is_null() || v.is_object()),
        "{text}"
    );
    assert_eq!(json["requests"], 1);
    assert_eq!(json["throttled_by"]["tokens_per_minute"], 0);

    let reset = common::raw(server.local_addr(), "POST", "/_local/stats/reset", b"").await;
    assert_eq!(reset.status, 200);
    let counters: Counters = serde_json::from_slice(&reset.body).unwrap();
    assert_eq!(
        (
            counters.requests,
            counters.completed,
            counters.peak_in_flight
        ),
        (0, 0, 0)
    );
    assert_eq!(counters.max_concurrency, 64);
    // The window is kept: a reset gives back no quota.
    assert_eq!(counters.tokens_in_window, 3 + 4);
    // The stats path is not a model route.
    let wrong = common::raw(server.local_addr(), "POST", "/_local/stats", b"").await;
    assert_eq!(
        wrong.header("x-amzn-errortype"),
        Some("UnknownOperationException")
    );
}
