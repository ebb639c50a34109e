//! Capacity limits and fault injection, seen through the real AWS SDK. Tests that wait run
//! on tokio's paused clock, so what happens first is decided by the scripted delays and the
//! emulator's counters, not by how busy the machine is.

mod common;

use std::task::Poll;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use bedrock_local::{Backend, Config, Counters, ErrorKind, Faults, Outcome, Rule, Script, Server};
use common::{MODEL, body, client, invoke, still};
use tokio::time::Instant;

/// Waits, with the paused clock still, until the emulator's counters show `what`.
async fn until(server: &Server, what: &str, check: impl Fn(&Counters) -> bool) -> Counters {
    let counters = std::future::poll_fn(|_| {
        let counters = server.counters();
        if check(&counters) {
            Poll::Ready(counters)
        } else {
            Poll::Pending
        }
    });
    still(what, counters).await
}

/// A server whose "slow" prompts hold their slot for `hold`.
async fn limited(max_concurrency: usize, max_queue: usize, hold: Duration) -> Server {
    common::start(Config {
        backend: Backend::Scripted(Script::new(vec![
            Rule::new(Outcome::text("done"))
                .prompt_contains("slow")
                .delay(hold),
        ])),
        max_concurrency: Some(max_concurrency),
        max_queue,
        ..Config::default()
    })
    .await
}

async fn try_invoke(client: &Client, prompt: &str) -> Result<(), InvokeModelError> {
    client
        .invoke_model()
        .model_id(MODEL)
        .body(body(prompt, 10))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.into_service_error())
}

#[tokio::test(start_paused = true)]
async fn beyond_concurrency_and_queue_requests_are_throttled() {
    let server = limited(1, 0, Duration::from_millis(800)).await;
    let client = client(&server).await;
    let busy = tokio::spawn({
        let client = client.clone();
        async move { try_invoke(&client, "slow").await }
    });
    until(&server, "the slow request to hold the slot", |c| {
        c.in_flight == 1
    })
    .await;
    let error = still("the refusal", try_invoke(&client, "fast"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, InvokeModelError::ThrottlingException(_)),
        "{error:?}"
    );
    assert_eq!(
        error.message(),
        Some("Too many requests, please wait before trying again.")
    );
    let counters = server.counters();
    assert_eq!(
        (counters.completed, counters.throttled_by.concurrency),
        (0, 1),
        "refused while the slow request held the slot: {counters:?}"
    );
    assert!(busy.await.unwrap().is_ok());
    // The slot is free again.
    assert!(try_invoke(&client, "fast").await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn queued_requests_wait_for_a_slot() {
    let server = limited(1, 1, Duration::from_millis(500)).await;
    let client = client(&server).await;
    let spawn = |prompt: &'static str| {
        let client = client.clone();
        tokio::spawn(async move { try_invoke(&client, prompt).await })
    };
    let busy = spawn("slow");
    until(&server, "the slow request to hold the slot", |c| {
        c.in_flight == 1
    })
    .await;
    let queued = spawn("fast");
    until(&server, "the second request to wait in the queue", |c| {
        c.in_flight == 2
    })
    .await;
    // Slot and queue are full now.
    assert!(matches!(
        still("the refusal", try_invoke(&client, "fast")).await,
        Err(InvokeModelError::ThrottlingException(_))
    ));
    let counters = server.counters();
    assert_eq!(
        (
            counters.requests,
            counters.in_flight,
            counters.completed,
            counters.throttled_by.concurrency
        ),
        (3, 2, 0, 1),
        "the queued request waits unanswered while the slot is held: {counters:?}"
    );
    assert!(busy.await.unwrap().is_ok());
    assert!(
        queued.await.unwrap().is_ok(),
        "served once the slot is free"
    );
    let counters = server.counters();
    assert_eq!(
        (
            counters.completed,
            counters.throttled,
            counters.peak_in_flight
        ),
        (2, 1, 2)
    );
}

#[tokio::test]
async fn throttled_twice_then_the_sdk_retry_succeeds() {
    let server = common::scripted(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).times(2),
        Rule::new(Outcome::text("finally")),
    ])
    .await;
    let retry = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1));
    let client = common::client_with(&server, retry).await;
    let reply = invoke(&client, MODEL, body("hi", 10)).await;
    assert_eq!(reply["generation"], "finally");
    assert_eq!(server.stats().requests(MODEL), 3);
}

/// The outcome of `n` sequential invocations, by error code.
async fn outcomes(seed: u64, n: usize) -> Vec<String> {
    let server = common::start(Config {
        faults: Faults {
            throttle_rate: 0.3,
            unavailable_rate: 0.2,
            timeout_rate: 0.1,
            malformed_rate: 0.1,
            seed: Some(seed),
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let mut seen = Vec::new();
    for _ in 0..n {
        let outcome = match client
            .invoke_model()
            .model_id(MODEL)
            .body(body("hi", 10))
            .send()
            .await
        {
            Ok(output) => match serde_json::from_slice::<serde_json::Value>(output.body().as_ref())
            {
                Ok(_) => "ok".to_owned(),
                Err(_) => "malformed".to_owned(),
            },
            Err(error) => error.into_service_error().code().unwrap_or("?").to_owned(),
        };
        seen.push(outcome);
    }
    server.shutdown().await;
    seen
}

#[tokio::test]
async fn faults_replay_with_the_same_seed() {
    let first = outcomes(42, 60).await;
    let second = outcomes(42, 60).await;
    assert_eq!(first, second);
    for expected in [
        "ok",
        "malformed",
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelTimeoutException",
    ] {
        assert!(
            first.iter().any(|o| o == expected),
            "{expected} in {first:?}"
        );
    }
    assert_ne!(first, outcomes(43, 60).await);
}

#[tokio::test(start_paused = true)]
async fn certain_faults_and_added_latency() {
    let server = common::start(Config {
        faults: Faults {
            timeout_rate: 1.0,
            added_latency: Duration::from_millis(300),
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let started = Instant::now();
    let error = try_invoke(&client, "hi").await.unwrap_err();
    assert!(
        matches!(error, InvokeModelError::ModelTimeoutException(_)),
        "{error:?}"
    );
    // Exact on the paused clock, which moves only to timers that fire: the answer cannot
    // come before the added 300 ms, however slow the machine.
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn fresh_server_saw_no_model_calls() {
    let server = common::scripted(vec![]).await;
    assert_eq!(server.stats().total(), 0);
    assert_eq!(server.stats().requests(MODEL), 0);
}

/// A client that gives up on a request after `timeout`.
async fn client_with_timeout(server: &bedrock_local::Server, timeout: Duration) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_bedrockruntime::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .endpoint_url(server.endpoint())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(timeout)
                .build(),
        )
        .load()
        .await;
    Client::new(&config)
}

#[tokio::test(start_paused = true)]
async fn a_stalled_request_is_never_answered_until_the_client_gives_up() {
    let server = common::start(Config {
        faults: Faults {
            stall_rate: 1.0,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let client = client_with_timeout(&server, Duration::from_secs(20)).await;
    let error = client
        .invoke_model()
        .model_id(MODEL)
        .body(body("hi", 10))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            aws_sdk_bedrockruntime::error::SdkError::TimeoutError(_)
        ),
        "{error:?}"
    );
    let stream = client
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .body(body("hi", 10))
        .send()
        .await;
    assert!(stream.is_err(), "no stream starts either");
    let stats = server.stats();
    assert_eq!((stats.stalled, stats.total()), (2, 2));
    let counters = server.counters();
    assert_eq!(
        (counters.completed, counters.failed, counters.throttled),
        (0, 0, 0),
        "neither was answered before the client gave up: {counters:?}"
    );
    // A stall does not hold up the shutdown.
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_scripted_stall_is_followed_by_the_next_rule() {
    let server = common::scripted(vec![
        Rule::new(Outcome::Stall).times(1),
        Rule::new(Outcome::text("answered")),
    ])
    .await;
    let client = client_with_timeout(&server, Duration::from_secs(5)).await;
    assert!(try_invoke(&client, "hi").await.is_err());
    let reply = invoke(&client, MODEL, body("hi", 10)).await;
    assert_eq!(reply["generation"], "answered");
    assert_eq!(server.stats().stalled, 1);
}

#[tokio::test]
async fn the_guardrail_intervenes_only_on_requests_that_carry_one() {
    let server = common::start(Config {
        faults: Faults {
            guardrail_intervene_rate: 1.0,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let plain = invoke(&client, MODEL, body("hi there", 10)).await;
    assert_eq!(plain["generation"], "Echo: hi there");
    assert!(plain.get("amazon-bedrock-guardrailAction").is_none());
    let output = client
        .invoke_model()
        .model_id(MODEL)
        .guardrail_identifier("gr-abc123")
        .guardrail_version("1")
        .body(body("hi there", 10))
        .send()
        .await
        .expect("an intervention is a 200");
    let blocked: serde_json::Value = serde_json::from_slice(output.body().as_ref()).unwrap();
    assert_eq!(blocked["amazon-bedrock-guardrailAction"], "INTERVENED");
    assert_eq!(
        blocked["generation"],
        "Sorry, the model cannot answer this question."
    );
    assert_eq!(blocked["generation_token_count"], 0);
    let mut output = client
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .guardrail_identifier("gr-abc123")
        .guardrail_version("1")
        .body(body("hi there", 10))
        .send()
        .await
        .expect("stream starts");
    let mut chunks = Vec::new();
    while let Some(event) = output.body.recv().await.unwrap() {
        if let aws_sdk_bedrockruntime::types::ResponseStream::Chunk(part) = event {
            let bytes = part.bytes().unwrap().as_ref().to_vec();
            chunks.push(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap());
        }
    }
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    assert_eq!(chunks[0]["amazon-bedrock-guardrailAction"], "INTERVENED");
    assert_eq!(chunks[0]["stop_reason"], "stop");
}

#[tokio::test]
async fn a_guardrail_that_passes_says_none() {
    let server = common::scripted(vec![]).await;
    let client = client(&server).await;
    let output = client
        .invoke_model()
        .model_id(MODEL)
        .guardrail_identifier("gr-abc123")
        .guardrail_version("1")
        .body(body("hi there", 10))
        .send()
        .await
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(output.body().as_ref()).unwrap();
    assert_eq!(reply["generation"], "Echo: hi there");
    assert_eq!(reply["amazon-bedrock-guardrailAction"], "NONE");
}
