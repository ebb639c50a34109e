//! InvokeModel through the real AWS SDK against the scripted double: success, model ids,
//! validation, and the raw HTTP surface.

mod common;

use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::operation::invoke_model_with_response_stream::InvokeModelWithResponseStreamError;
use aws_sdk_bedrockruntime::primitives::Blob;
use bedrock_local::{Backend, Config, Outcome, Rule, Script};
use common::{MODEL, body, client, invoke, llama_prompt, raw, scripted};
use serde_json::json;

#[tokio::test]
async fn invoke_returns_the_scripted_generation() {
    let server = scripted(vec![
        Rule::new(Outcome::text("Hello from the double")).prompt_contains("greet"),
    ])
    .await;
    let client = client(&server).await;
    let prompt = llama_prompt("greet me please");
    let reply = invoke(&client, MODEL, body(&prompt, 100)).await;
    assert_eq!(reply["generation"], "Hello from the double");
    assert_eq!(reply["generation_token_count"], 4);
    // Whitespace-separated words of the prompt as sent.
    let words = prompt.split_whitespace().count();
    assert_eq!(reply["prompt_token_count"], words);
    assert_eq!(reply["stop_reason"], "stop");
    assert_eq!(server.stats().invoke.get(MODEL), Some(&1));
    assert_eq!(server.stats().total(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn unmatched_requests_get_the_echo() {
    let server = scripted(vec![]).await;
    let client = client(&server).await;
    let reply = invoke(&client, MODEL, body(&llama_prompt("ping pong"), 100)).await;
    assert_eq!(reply["generation"], "Echo: ping pong");
    let reply = invoke(&client, MODEL, body("a raw prompt", 100)).await;
    assert_eq!(reply["generation"], "Echo: a raw prompt");
}

#[tokio::test]
async fn max_gen_len_cuts_with_length() {
    let server = scripted(vec![Rule::new(Outcome::text("one two three four five"))]).await;
    let client = client(&server).await;
    let reply = invoke(&client, MODEL, body("hi", 3)).await;
    assert_eq!(reply["generation"], "one two three");
    assert_eq!(reply["generation_token_count"], 3);
    assert_eq!(reply["stop_reason"], "length");
}

#[tokio::test]
async fn percent_encoded_arns_are_served() {
    let server = scripted(vec![Rule::new(Outcome::text("ok")).model_id(MODEL)]).await;
    let client = client(&server).await;
    let arns = [
        format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/{MODEL}"),
        format!("arn:aws:bedrock:us-east-1::foundation-model/{MODEL}"),
    ];
    for arn in &arns {
        let reply = invoke(&client, arn, body("hi", 10)).await;
        assert_eq!(reply["generation"], "ok", "{arn}");
        let streamed = common::stream(&client, arn, body("hi", 10)).await;
        assert_eq!(streamed.text(), "ok");
        assert_eq!(server.stats().requests(arn), 2);
    }
    // The raw path, encoded the way the SDK does it.
    let path = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-2-3b-instruct-v1%3A0/invoke";
    let response = raw(server.local_addr(), "POST", path, br#"{"prompt":"hi"}"#).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["generation"], "ok");
}

#[tokio::test]
async fn unknown_models_are_not_found() {
    let server = scripted(vec![]).await;
    let client = client(&server).await;
    let error = client
        .invoke_model()
        .model_id("anthropic.claude-v2")
        .body(body("hi", 10))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(error, InvokeModelError::ResourceNotFoundException(_)),
        "{error:?}"
    );
    let error = client
        .invoke_model_with_response_stream()
        .model_id("arn:aws:bedrock:us-east-1::foundation-model/other-model")
        .body(body("hi", 10))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            error,
            InvokeModelWithResponseStreamError::ResourceNotFoundException(_)
        ),
        "{error:?}"
    );
    // Counted even though refused.
    assert_eq!(server.stats().requests("anthropic.claude-v2"), 1);
}

#[tokio::test]
async fn custom_model_ids_replace_the_defaults() {
    let server = common::start(Config {
        model_ids: vec!["my-model".into()],
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    invoke(&client, "my-model", body("hi", 10)).await;
    let error = client
        .invoke_model()
        .model_id(MODEL)
        .body(body("hi", 10))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(
        error,
        InvokeModelError::ResourceNotFoundException(_)
    ));
}

/// Sends `body` and returns the ValidationException message.
async fn validation_message(client: &aws_sdk_bedrockruntime::Client, body: &str) -> String {
    let error = client
        .invoke_model()
        .model_id(MODEL)
        .body(Blob::new(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match error {
        InvokeModelError::ValidationException(e) => e.message().unwrap_or_default().to_owned(),
        other => panic!("expected ValidationException for {body}, got {other:?}"),
    }
}

#[tokio::test]
async fn validation_errors_match_bedrock() {
    let server = common::start(Config {
        context_window: Some(20),
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let cases = [
        (
            json!({"prompt": "hi", "temperature": -0.1}),
            "#/temperature: -0.1 is not greater or equal to 0",
        ),
        (
            json!({"prompt": "hi", "temperature": 1.01}),
            "#/temperature: 1.01 is not less or equal to 1",
        ),
        (
            json!({"prompt": "hi", "top_p": -1}),
            "#/top_p: -1 is not greater or equal to 0",
        ),
        (
            json!({"prompt": "hi", "top_p": 2}),
            "#/top_p: 2 is not less or equal to 1",
        ),
        (
            json!({"prompt": "hi", "max_gen_len": 0}),
            "#/max_gen_len: 0 is not greater or equal to 1",
        ),
        (
            json!({"prompt": "hi", "max_gen_len": 2049}),
            "#/max_gen_len: 2049 is not less or equal to 2048",
        ),
        (
            json!({"prompt": "hi", "max_gen_len": "10"}),
            "#/max_gen_len: expected type: Integer, found: String",
        ),
        (
            json!({"prompt": "hi", "temperature": "hot"}),
            "#/temperature: expected type: Number, found: String",
        ),
        (
            json!({"prompt": 1}),
            "#/prompt: expected type: String, found: Integer",
        ),
        (
            json!({"max_gen_len": 10}),
            "#: required key [prompt] not found",
        ),
        (
            json!({"prompt": "hi", "stop": ["x"]}),
            "#: extraneous key [stop] is not permitted",
        ),
    ];
    for (request, expected) in cases {
        let message = validation_message(&client, &request.to_string()).await;
        assert!(message.contains(expected), "{request}: {message}");
        assert!(
            message.starts_with("Malformed input request: "),
            "{message}"
        );
    }
    let message = validation_message(&client, "{\"prompt\": ").await;
    assert!(message.contains("not valid JSON"), "{message}");
    // 5 prompt words + 16 > 20.
    let message = validation_message(
        &client,
        &json!({"prompt": "one two three four five", "max_gen_len": 16}).to_string(),
    )
    .await;
    assert_eq!(
        message,
        "This model's maximum context length is 20 tokens. Please reduce the length of the prompt."
    );
    // Exactly at the limit is fine.
    let reply = invoke(
        &client,
        MODEL,
        Blob::new(
            json!({"prompt": "one two three four five", "max_gen_len": 15})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(reply["prompt_token_count"], 5);
}

#[tokio::test]
async fn raw_http_needs_no_signature_or_content_type() {
    let server = common::start(Config {
        backend: Backend::Scripted(Script::new(vec![Rule::new(Outcome::text("a b c"))])),
        ..Config::default()
    })
    .await;
    let addr = server.local_addr();
    let response = raw(
        addr,
        "POST",
        "/model/meta.llama3-2-3b-instruct-v1%3A0/invoke",
        br#"{"prompt":"x y"}"#,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.header("x-amzn-bedrock-input-token-count"),
        Some("2")
    );
    assert_eq!(
        response.header("x-amzn-bedrock-output-token-count"),
        Some("3")
    );
    assert!(
        response
            .header("x-amzn-bedrock-invocation-latency")
            .is_some()
    );
    assert_eq!(response.header("x-amzn-requestid").map(str::len), Some(36));
    assert_eq!(
        response.json(),
        json!({"generation": "a b c", "prompt_token_count": 2, "generation_token_count": 3, "stop_reason": "stop"})
    );

    let response = raw(addr, "POST", "/model/nope/invoke", b"{}").await;
    assert_eq!(response.status, 404);
    assert_eq!(
        response.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    assert!(response.json()["message"].is_string());

    let response = raw(
        addr,
        "POST",
        "/model/meta.llama3-2-3b-instruct-v1:0/invoke",
        b"nope",
    )
    .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.header("x-amzn-errortype"),
        Some("ValidationException")
    );

    for (method, path) in [
        ("GET", "/model/x/invoke"),
        ("POST", "/model/x/converse"),
        ("GET", "/nowhere"),
    ] {
        let response = raw(addr, method, path, b"").await;
        assert_eq!(response.status, 404, "{method} {path}");
        assert_eq!(
            response.header("x-amzn-errortype"),
            Some("UnknownOperationException")
        );
    }

    for path in ["/health", "/ping"] {
        let response = raw(addr, "GET", path, b"").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["status"], "ok");
    }
    // Nothing above was a model call except the two model paths.
    assert_eq!(server.stats().total(), 3);
    server.shutdown().await;
}
