//! Synchronous Invoke through the real AWS SDK: success, the names a function can be called
//! by, service errors as typed SDK errors, DryRun, log tails, client context, environment.

mod common;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::operation::RequestId;
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{client, config, echo, invoke, payload, start, start_echo};
use serde_json::json;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

#[tokio::test]
async fn sync_invoke_returns_the_functions_response() {
    let server = start_echo().await;
    let client = client(&server).await;
    let output = invoke(&client, "echo", json!({"hello": "world"})).await;
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.function_error(), None);
    assert_eq!(output.executed_version(), Some("$LATEST"));
    let body = payload(&output);
    assert_eq!(body["echo"], json!({"hello": "world"}));
    assert_eq!(body["function_name"], "echo");
    assert_eq!(body["function_arn"], ARN);
    assert_eq!(output.request_id(), body["request_id"].as_str());
    let deadline = body["deadline_ms"].as_u64().expect("deadline");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    assert!(
        deadline > now && deadline <= now + 3_000,
        "deadline {deadline} vs now {now}"
    );
    let stats = server.stats("echo").expect("stats");
    assert_eq!(
        (stats.invocations, stats.cold_starts, stats.errors),
        (1, 1, 0)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn accepts_names_arns_and_qualifiers() {
    let server = start_echo().await;
    let client = client(&server).await;
    for (name, arn) in [
        ("echo:$LATEST", format!("{ARN}:$LATEST")),
        (ARN, ARN.to_owned()),
        ("123456789012:function:echo", ARN.to_owned()),
        (&format!("{ARN}:live"), format!("{ARN}:live")),
    ] {
        let output = invoke(&client, name, json!({})).await;
        assert_eq!(output.function_error(), None, "{name}");
        assert_eq!(payload(&output)["function_arn"], arn, "{name}");
    }
    let output = client
        .invoke()
        .function_name("echo")
        .qualifier("$LATEST")
        .send()
        .await
        .expect("qualifier in the query");
    let body = payload(&output);
    assert_eq!(body["function_arn"], format!("{ARN}:$LATEST"));
    // No payload at all: the function gets `{}`.
    assert_eq!(body["echo"], json!({}));
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_function_is_a_typed_resource_not_found() {
    let server = start_echo().await;
    let client = client(&server).await;
    let error = client
        .invoke()
        .function_name("nope")
        .send()
        .await
        .expect_err("no such function");
    let service_error = error.into_service_error();
    assert!(
        matches!(service_error, InvokeError::ResourceNotFoundException(_)),
        "{service_error:?}"
    );
    let InvokeError::ResourceNotFoundException(not_found) = service_error else {
        unreachable!()
    };
    assert_eq!(not_found.r#type(), Some("User"));
    assert_eq!(
        not_found.message(),
        Some("Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_lambdas_errors() {
    let server = start_echo().await;
    let client = client(&server).await;
    let error = client
        .invoke()
        .function_name("echo")
        .payload(Blob::new("{not json"))
        .send()
        .await
        .expect_err("not JSON")
        .into_service_error();
    assert!(
        matches!(error, InvokeError::InvalidRequestContentException(_)),
        "{error:?}"
    );
    let too_big = vec![b' '; lambda_local::MAX_SYNC_PAYLOAD + 1];
    let error = client
        .invoke()
        .function_name("echo")
        .payload(Blob::new(too_big))
        .send()
        .await
        .expect_err("over 6 MB")
        .into_service_error();
    assert!(
        matches!(error, InvokeError::RequestTooLargeException(_)),
        "{error:?}"
    );
    let error = client
        .invoke()
        .function_name("echo bad")
        .send()
        .await
        .expect_err("malformed name")
        .into_service_error();
    assert_eq!(error.code(), Some("ValidationException"));
    let error = client
        .invoke()
        .function_name("echo:$LATEST")
        .qualifier("other")
        .send()
        .await
        .expect_err("two qualifiers")
        .into_service_error();
    assert!(
        matches!(error, InvokeError::InvalidParameterValueException(_)),
        "{error:?}"
    );
    assert_eq!(server.stats("echo").expect("stats").invocations, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn dry_run_checks_without_running() {
    let server = start_echo().await;
    let client = client(&server).await;
    let output = client
        .invoke()
        .function_name("echo")
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
        .expect("dry run");
    assert_eq!(output.status_code(), 204);
    assert_eq!(server.stats("echo").expect("stats").cold_starts, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn log_tail_and_client_context_and_environment() {
    let server = start(config(vec![echo("echo").env("GREETING", "hello there")])).await;
    let client = client(&server).await;
    let context = BASE64.encode(json!({"custom": {"tenant": "t1"}}).to_string());
    let output = client
        .invoke()
        .function_name("echo")
        .log_type(LogType::Tail)
        .client_context(context)
        .payload(Blob::new(
            json!({"log": "a line from the function", "env": "GREETING"}).to_string(),
        ))
        .send()
        .await
        .expect("invoke");
    let body = payload(&output);
    assert_eq!(body["env"], "hello there");
    assert_eq!(body["client_context"]["custom"]["tenant"], "t1");
    let log = BASE64
        .decode(output.log_result().expect("a log tail"))
        .expect("base64");
    let log = String::from_utf8(log).expect("UTF-8");
    let request_id = body["request_id"].as_str().expect("request id");
    assert!(
        log.contains(&format!("START RequestId: {request_id}")),
        "{log}"
    );
    assert!(log.contains("a line from the function"), "{log}");
    assert!(
        log.contains(&format!("REPORT RequestId: {request_id}")),
        "{log}"
    );
    assert!(log.contains("Init Duration:"), "{log}");
    server.shutdown().await;
}

#[tokio::test]
async fn lambda_environment_is_set() {
    let server = start(config(vec![echo("echo").memory_mb(512)])).await;
    let client = client(&server).await;
    for (variable, expected) in [
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("_HANDLER", "lambda-local-echo-fn"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/echo"),
    ] {
        let body = payload(&invoke(&client, "echo", json!({"env": variable})).await);
        assert_eq!(body["env"], expected, "{variable}");
    }
    let body = payload(&invoke(&client, "echo", json!({"env": "AWS_LAMBDA_RUNTIME_API"})).await);
    let api = body["env"].as_str().expect("runtime API set");
    assert!(api.starts_with("127.0.0.1:"), "{api}");
    server.shutdown().await;
}
