//! Function failures as Lambda reports them: `200` + `X-Amz-Function-Error: Unhandled` with
//! the error JSON, for handler errors, panics, timeouts (`Sandbox.Timedout`, process
//! recycled), crashes and init exits (`Runtime.ExitError`) and oversized responses.

mod common;

use std::time::Duration;

use common::{client, config, echo, invoke, payload, start, start_echo};
use serde_json::json;

#[tokio::test]
async fn handler_error_is_unhandled_with_its_type() {
    let server = start_echo().await;
    let client = client(&server).await;
    let output = invoke(&client, "echo", json!({"fail": "ModelThrottled"})).await;
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.function_error(), Some("Unhandled"));
    assert_eq!(output.executed_version(), Some("$LATEST"));
    let body = payload(&output);
    assert_eq!(body["errorType"], "ModelThrottled");
    assert_eq!(
        body["errorMessage"],
        "echo fn failed with ModelThrottled as asked"
    );
    // The process stays warm after a handled error.
    let ok = invoke(&client, "echo", json!({})).await;
    assert_eq!(ok.function_error(), None);
    let stats = server.stats("echo").expect("stats");
    assert_eq!((stats.cold_starts, stats.errors), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn panic_is_a_function_error() {
    let server = start_echo().await;
    let client = client(&server).await;
    let output = invoke(&client, "echo", json!({"panic": true})).await;
    assert_eq!(output.function_error(), Some("Unhandled"));
    let body = payload(&output);
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("panics as asked")),
        "{body}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn timeout_is_sandbox_timedout_and_the_process_is_recycled() {
    let server = start(config(vec![echo("echo").timeout(Duration::from_secs(1))])).await;
    let client = client(&server).await;
    let first_pid = payload(&invoke(&client, "echo", json!({})).await)["pid"].clone();
    // The function would sleep for ten minutes: only the timeout ends the call in time.
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        invoke(&client, "echo", json!({"sleep_ms": 600_000})),
    )
    .await
    .expect("the invocation timeout ends the call");
    assert_eq!(output.function_error(), Some("Unhandled"));
    let body = payload(&output);
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    let message = body["errorMessage"].as_str().expect("message");
    assert!(
        message.ends_with("Task timed out after 1.00 seconds"),
        "{message}"
    );
    let after = invoke(&client, "echo", json!({"n": 3})).await;
    assert_eq!(after.function_error(), None);
    let after = payload(&after);
    assert_eq!(after["echo"]["n"], 3);
    assert_ne!(after["pid"], first_pid, "a fresh process after the timeout");
    let stats = server.stats("echo").expect("stats");
    assert_eq!((stats.timeouts, stats.cold_starts), (1, 2));
    server.shutdown().await;
}

#[tokio::test]
async fn crash_is_runtime_exit_error_and_recovers() {
    let server = start_echo().await;
    let client = client(&server).await;
    let output = invoke(&client, "echo", json!({"exit": 3})).await;
    assert_eq!(output.function_error(), Some("Unhandled"));
    let body = payload(&output);
    assert_eq!(body["errorType"], "Runtime.ExitError");
    let message = body["errorMessage"].as_str().expect("message");
    assert!(
        message.ends_with("Runtime exited with error: exit status 3"),
        "{message}"
    );
    let again = invoke(&client, "echo", json!({"after": "crash"})).await;
    assert_eq!(again.function_error(), None);
    assert_eq!(payload(&again)["echo"]["after"], "crash");
    let stats = server.stats("echo").expect("stats");
    assert_eq!((stats.crashes, stats.cold_starts), (1, 2));
    server.shutdown().await;
}

#[tokio::test]
async fn exit_during_init_is_runtime_exit_error() {
    let server = start(config(vec![echo("echo").env("ECHO_FN_INIT_EXIT", "2")])).await;
    let client = client(&server).await;
    for _ in 0..2 {
        let output = invoke(&client, "echo", json!({})).await;
        assert_eq!(output.function_error(), Some("Unhandled"));
        let body = payload(&output);
        assert_eq!(body["errorType"], "Runtime.ExitError", "{body}");
    }
    assert_eq!(server.stats("echo").expect("stats").cold_starts, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_response_is_function_response_size_too_large() {
    let server = start_echo().await;
    let client = client(&server).await;
    let output = invoke(
        &client,
        "echo",
        json!({"big": lambda_local::MAX_SYNC_PAYLOAD}),
    )
    .await;
    assert_eq!(output.function_error(), Some("Unhandled"));
    assert_eq!(
        payload(&output)["errorType"],
        "Function.ResponseSizeTooLarge"
    );
    let ok = invoke(&client, "echo", json!({"big": 1_000_000})).await;
    assert_eq!(ok.function_error(), None);
    server.shutdown().await;
}

#[tokio::test]
async fn missing_binary_is_refused_at_start() {
    let error = lambda_local::Server::start(config(vec![lambda_local::FunctionConfig::new(
        "ghost",
        "/no/such/bootstrap",
    )]))
    .await
    .expect_err("no binary");
    assert!(error.to_string().contains("/no/such/bootstrap"), "{error}");
}
