//! `Event` invocations: `202` at once, the run happens in the background, failures are
//! retried twice with the same request id, then written to the dead-letter directory.

mod common;

use std::time::Duration;

use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::{client, config, echo, eventually, marker_lines, start};
use serde_json::{Value, json};

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
    let marker = dir.path().join("ran");
    let server = start(config(vec![echo("echo")])).await;
    let client = client(&server).await;
    let marker_text = marker.to_string_lossy().into_owned();
    let status = send_event(&client, json!({"marker": marker_text, "sleep_ms": 300})).await;
    assert_eq!(status, 202);
    // Answered before the function finished its 300 ms.
    assert!(marker_lines(&marker).len() <= 1);
    assert!(eventually(Duration::from_secs(10), || marker_lines(&marker).len() == 1).await);
    assert!(
        eventually(Duration::from_secs(5), || {
            server.stats("echo").is_some_and(|s| s.invocations == 1)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(marker_lines(&marker).len(), 1, "a success is not retried");
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
    assert!(eventually(Duration::from_secs(15), || dead_letters().len() == 1).await);
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
        eventually(Duration::from_secs(10), || {
            server.stats("echo").is_some_and(|s| s.dead_letters == 1)
        })
        .await
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
