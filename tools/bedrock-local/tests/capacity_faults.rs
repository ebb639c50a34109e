//! Capacity limits and fault injection, seen through the real AWS SDK.

mod common;

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use bedrock_local::{Backend, Config, ErrorKind, Faults, Outcome, Rule, Script};
use common::{MODEL, body, client, invoke};

/// A server whose "slow" prompts hold their slot for `hold`.
async fn limited(
    max_concurrency: usize,
    max_queue: usize,
    hold: Duration,
) -> bedrock_local::Server {
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

#[tokio::test]
async fn beyond_concurrency_and_queue_requests_are_throttled() {
    let server = limited(1, 0, Duration::from_millis(800)).await;
    let client = client(&server).await;
    let busy = tokio::spawn({
        let client = client.clone();
        async move { try_invoke(&client, "slow").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let error = try_invoke(&client, "fast").await.unwrap_err();
    assert!(
        matches!(error, InvokeModelError::ThrottlingException(_)),
        "{error:?}"
    );
    assert_eq!(
        error.message(),
        Some("Too many requests, please wait before trying again.")
    );
    assert!(busy.await.unwrap().is_ok());
    // The slot is free again.
    assert!(try_invoke(&client, "fast").await.is_ok());
}

#[tokio::test]
async fn queued_requests_wait_for_a_slot() {
    let server = limited(1, 1, Duration::from_millis(500)).await;
    let client = client(&server).await;
    let busy = tokio::spawn({
        let client = client.clone();
        async move { try_invoke(&client, "slow").await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let queued = tokio::spawn({
        let client = client.clone();
        async move { try_invoke(&client, "fast").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Slot and queue are full now.
    assert!(matches!(
        try_invoke(&client, "fast").await,
        Err(InvokeModelError::ThrottlingException(_))
    ));
    assert!(busy.await.unwrap().is_ok());
    assert!(queued.await.unwrap().is_ok());
    assert!(started.elapsed() >= Duration::from_millis(250));
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

#[tokio::test]
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
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn fresh_server_saw_no_model_calls() {
    let server = common::scripted(vec![]).await;
    assert_eq!(server.stats().total(), 0);
    assert_eq!(server.stats().requests(MODEL), 0);
}
