//! Synchronous Invoke through the real AWS SDK: success, the names a function can be called
//! by, service errors as typed SDK errors, unsupported options refused, environment.

mod common;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::operation::RequestId;
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
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
async fn accepts_the_name_or_the_functions_arn() {
    let server = start_echo().await;
    let client = client(&server).await;
    // The local stack and moto's Step Functions name functions by ARN; tests by name.
    for name in ["echo", ARN] {
        let output = invoke(&client, name, json!({})).await;
        assert_eq!(output.function_error(), None, "{name}");
        assert_eq!(payload(&output)["function_arn"], ARN, "{name}");
    }
    // No payload at all: the function gets `{}`.
    let output = client
        .invoke()
        .function_name(ARN)
        .send()
        .await
        .expect("no payload");
    assert_eq!(payload(&output)["echo"], json!({}));
    // The same name in another region is another function.
    let elsewhere = ARN.replace("us-east-1", "eu-west-1");
    let error = client
        .invoke()
        .function_name(&elsewhere)
        .send()
        .await
        .expect_err("not served here")
        .into_service_error();
    assert!(
        matches!(error, InvokeError::ResourceNotFoundException(_)),
        "{error:?}"
    );
    assert_eq!(
        error.message(),
        Some(format!("Function not found: {elsewhere}").as_str())
    );
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
    assert_eq!(server.stats("echo").expect("stats").invocations, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn unsupported_options_are_refused() {
    let server = start_echo().await;
    let client = client(&server).await;
    let qualified = [
        "echo:$LATEST".to_owned(),
        format!("{ARN}:live"),
        "123456789012:function:echo".to_owned(),
    ];
    for name in &qualified {
        let error = client
            .invoke()
            .function_name(name)
            .send()
            .await
            .expect_err("qualified or partial name")
            .into_service_error();
        assert_eq!(error.code(), Some("ValidationException"), "{name}");
        assert!(
            error.message().is_some_and(|m| m.contains("no versions")),
            "{error:?}"
        );
    }
    let refusals = [
        ("qualifier", client.invoke().qualifier("$LATEST")),
        (
            "dry run",
            client.invoke().invocation_type(InvocationType::DryRun),
        ),
        ("log tail", client.invoke().log_type(LogType::Tail)),
        ("client context", client.invoke().client_context("e30=")),
    ];
    for (what, request) in refusals {
        let error = request
            .function_name("echo")
            .send()
            .await
            .expect_err(what)
            .into_service_error();
        assert!(
            matches!(error, InvokeError::InvalidParameterValueException(_)),
            "{what}: {error:?}"
        );
        assert!(
            error
                .message()
                .is_some_and(|m| m.starts_with("Unsupported ")),
            "{what}: {error:?}"
        );
    }
    // `LogType: None` is the default and is accepted.
    let output = client
        .invoke()
        .function_name("echo")
        .log_type(LogType::None)
        .send()
        .await
        .expect("LogType None");
    assert_eq!(output.log_result(), None);
    assert_eq!(server.stats("echo").expect("stats").invocations, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn lambda_environment_is_set() {
    let server = start(config(vec![
        echo("echo").memory_mb(512).env("GREETING", "hello there"),
    ]))
    .await;
    let client = client(&server).await;
    for (variable, expected) in [
        ("GREETING", "hello there"),
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
