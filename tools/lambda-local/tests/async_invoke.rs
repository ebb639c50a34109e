//! `Event` invocations: `202` at once, the run happens in the background, failures are
//! retried twice with the same request id, then written to the dead-letter directory.

mod common;

use std::time::Duration;

use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::{client, config, echo, eventually, invoke, marker_lines, start};
use serde_json::{Value, json};

/// Longest wait for something a correct server does at once; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// An invocation timeout no test here reaches, so that a slow machine cannot time out a
/// function held at its gate.
const NO_TIMEOUT: Duration = Duration::from_secs(300);

async fn send_event(client: &aws_sdk_lambda::Client, payload: Value) -> i32 {
    let output = client
        .invoke()
        .function_name("echo")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .expect("event accepted");
    assert!(output.payload().is_none_or(|p| p.as_ref().is_empty()));
    output.status_code()
}

#[tokio::test]
async fn event_returns_202_and_runs_in_the_background() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (marker, gate) = (dir.path().join("ran"), dir.path().join("gate"));
    let mut config = config(vec![echo("echo").timeout(NO_TIMEOUT)]);
    // A retry would be queued as soon as the run before it ended.
    config.async_retry_delay = Duration::ZERO;
    let server = start(config).await;
    let client = client(&server).await;
    // The function notes its start, then waits at the gate, which opens only after the 202.
    let sent = send_event(&client, json!({"marker": marker, "gate": gate}));
    let status = tokio::time::timeout(HANG_GUARD, sent)
        .await
        .expect("the Event invoke is answered while the function is held at its gate");
    assert_eq!(status, 202);
    assert!(
        eventually(HANG_GUARD, || marker_lines(&marker).len() == 1).await,
        "the function runs in the background: {:?}",
        marker_lines(&marker)
    );
    std::fs::write(&gate, b"open").expect("open the gate");
    // Two synchronous invokes on the one worker: the first runs once the background run has
    // ended, and a retry of it would be queued before the second is sent.
    for _ in 0..2 {
        let output = invoke(&client, "echo", json!({"marker": marker})).await;
        assert!(output.function_error().is_none());
    }
    let lines = marker_lines(&marker);
    assert_eq!(lines.len(), 3, "a success is not retried: {lines:?}");
    let stats = server.stats("echo").expect("stats");
    assert_eq!(
        (stats.invocations, stats.errors, stats.dead_letters),
        (3, 0, 0)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn failing_event_is_retried_twice_then_dead_lettered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("attempts");
    let dlq = dir.path().join("dlq");
    let mut config = config(vec![echo("echo")]);
    config.dlq_dir = Some(dlq.clone());
    let server = start(config).await;
    let client = client(&server).await;
    let marker_text = marker.to_string_lossy().into_owned();
    let payload = json!({"marker": marker_text, "fail": "Boom"});
    assert_eq!(send_event(&client, payload.clone()).await, 202);
    let dead_letters = || {
        std::fs::read_dir(&dlq)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert!(
        eventually(HANG_GUARD, || dead_letters().len() == 1).await,
        "dead-lettered after three attempts: {:?}",
        marker_lines(&marker)
    );
    let attempts = marker_lines(&marker);
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(
        attempts.iter().all(|id| id == &attempts[0]),
        "retries keep the request id"
    );
    let path = &dead_letters()[0];
    let record: Value =
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON record");
    assert_eq!(record["requestContext"]["requestId"], attempts[0].as_str());
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["requestPayload"], payload);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorType"], "Boom");
    let stats = server.stats("echo").expect("stats");
    assert_eq!(
        (stats.invocations, stats.errors, stats.dead_letters),
        (3, 3, 1)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn retries_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("attempts");
    let mut config = config(vec![echo("echo")]);
    config.async_retries = 0;
    let server = start(config).await;
    let client = client(&server).await;
    let marker_text = marker.to_string_lossy().into_owned();
    send_event(&client, json!({"marker": marker_text, "exit": true})).await;
    assert!(
        eventually(HANG_GUARD, || {
            server.stats("echo").is_some_and(|s| s.dead_letters == 1)
        })
        .await,
        "dead-lettered after one attempt: {:?}",
        server.stats("echo")
    );
    assert_eq!(marker_lines(&marker).len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn event_payload_over_256_kb_is_refused() {
    let server = start(config(vec![echo("echo")])).await;
    let client = client(&server).await;
    let big = json!({"pad": "x".repeat(lambda_local::MAX_EVENT_PAYLOAD)});
    let error = client
        .invoke()
        .function_name("echo")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(big.to_string()))
        .send()
        .await
        .expect_err("too large for Event")
        .into_service_error();
    assert!(
        matches!(error, InvokeError::RequestTooLargeException(_)),
        "{error:?}"
    );
    server.shutdown().await;
}
