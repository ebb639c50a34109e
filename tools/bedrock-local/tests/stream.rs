//! InvokeModelWithResponseStream through the real AWS SDK: chunks, final metrics, real
//! streaming, mid-stream exceptions and malformed bodies.

mod common;

use std::time::Duration;

use tokio::time::Instant;

use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::types::ResponseStream;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use bedrock_local::{Config, ErrorKind, Faults, Outcome, Rule};
use common::{MODEL, body, client, scripted, stream};

#[tokio::test]
async fn stream_sends_chunks_then_usage() {
    let server = scripted(vec![Rule::new(Outcome::text("one two three four five"))]).await;
    let client = client(&server).await;
    let streamed = stream(&client, MODEL, body("count to five", 100)).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    let chunks = streamed.chunks();
    assert_eq!(chunks.len(), 6, "{chunks:?}");
    assert_eq!(streamed.text(), "one two three four five");
    assert_eq!(chunks[0]["generation"], "one");
    assert_eq!(chunks[0]["prompt_token_count"], 3);
    assert_eq!(chunks[0]["generation_token_count"], 1);
    assert!(chunks[0]["stop_reason"].is_null());
    assert!(chunks[0].get("amazon-bedrock-invocationMetrics").is_none());
    assert!(chunks[1]["prompt_token_count"].is_null());
    assert_eq!(chunks[4]["generation_token_count"], 5);
    let last = &chunks[5];
    assert_eq!(last["generation"], "");
    assert_eq!(last["stop_reason"], "stop");
    let metrics = &last["amazon-bedrock-invocationMetrics"];
    assert_eq!(metrics["inputTokenCount"], 3);
    assert_eq!(metrics["outputTokenCount"], 5);
    assert!(metrics["invocationLatency"].is_u64());
    assert!(metrics["firstByteLatency"].is_u64());
    assert_eq!(server.stats().stream.get(MODEL), Some(&1));
}

#[tokio::test]
async fn stream_stops_at_max_gen_len() {
    let server = scripted(vec![Rule::new(Outcome::text("a b c d"))]).await;
    let client = client(&server).await;
    let chunks = stream(&client, MODEL, body("x", 2)).await.chunks();
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[2]["stop_reason"], "length");
    assert_eq!(chunks[2]["generation_token_count"], 2);
}

/// On tokio's paused clock: the delays are the scripted ones, not the machine's speed.
#[tokio::test(start_paused = true)]
async fn chunks_arrive_as_generated() {
    let server = scripted(vec![
        Rule::new(Outcome::text("slow and steady words")).chunk_delay(Duration::from_millis(300)),
    ])
    .await;
    let client = client(&server).await;
    let started = Instant::now();
    let mut output = client
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .body(body("go", 100))
        .send()
        .await
        .unwrap();
    let first = output.body.recv().await.unwrap();
    assert!(matches!(first, Some(ResponseStream::Chunk(_))));
    let first_at = started.elapsed();
    while output.body.recv().await.unwrap().is_some() {}
    let done_at = started.elapsed();
    assert!(
        first_at < Duration::from_millis(600),
        "the first chunk comes after one chunk delay, not after the whole text: {first_at:?}"
    );
    assert!(
        done_at >= Duration::from_millis(1200),
        "done after {done_at:?}"
    );
}

fn kind_of(error: &ResponseStreamError) -> &'static str {
    match error {
        ResponseStreamError::ThrottlingException(_) => "throttlingException",
        ResponseStreamError::ModelStreamErrorException(_) => "modelStreamErrorException",
        ResponseStreamError::ModelTimeoutException(_) => "modelTimeoutException",
        ResponseStreamError::ServiceUnavailableException(_) => "serviceUnavailableException",
        ResponseStreamError::InternalServerException(_) => "internalServerException",
        ResponseStreamError::ValidationException(_) => "validationException",
        _ => "unexpected",
    }
}

#[tokio::test]
async fn every_mid_stream_exception_is_typed() {
    let kinds = [
        ErrorKind::ThrottlingException,
        ErrorKind::ModelStreamErrorException,
        ErrorKind::ModelTimeoutException,
        ErrorKind::ServiceUnavailableException,
        ErrorKind::InternalServerException,
        ErrorKind::ValidationException,
    ];
    let rules = kinds
        .iter()
        .map(|kind| {
            Rule::new(Outcome::StreamError {
                after: 2,
                error: bedrock_local::BedrockError::new(*kind, format!("scripted {kind}")),
                generation: Some("w1 w2 w3 w4".into()),
            })
            .prompt_contains(kind.name())
        })
        .collect();
    let server = scripted(rules).await;
    let client = client(&server).await;
    for kind in kinds {
        let streamed = stream(&client, MODEL, body(kind.name(), 100)).await;
        assert_eq!(streamed.text(), "w1 w2", "{kind}");
        let error = streamed.error.expect("stream fails");
        assert_eq!(kind_of(&error), kind.stream_name(), "{error:?}");
        assert_eq!(
            aws_sdk_bedrockruntime::error::ProvideErrorMetadata::message(&error),
            Some(format!("scripted {kind}").as_str())
        );
    }
}

#[tokio::test]
async fn stream_errors_from_json_rules() {
    let script = bedrock_local::Script::from_json(
        r#"{"rules": [{"stream_error_after": 0, "stream_error": "throttlingException"}]}"#,
    )
    .unwrap();
    let server = common::start(Config {
        backend: bedrock_local::Backend::Scripted(script),
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let streamed = stream(&client, MODEL, body("x", 10)).await;
    assert!(streamed.raw_chunks.is_empty());
    assert!(matches!(
        streamed.error,
        Some(ResponseStreamError::ThrottlingException(_))
    ));
    // InvokeModel gets the failure as an HTTP error.
    let error = client
        .invoke_model()
        .model_id(MODEL)
        .body(body("x", 10))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(error, InvokeModelError::ThrottlingException(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn stream_fail_after_fault() {
    let server = common::start(Config {
        faults: Faults {
            stream_fail_after: Some(1),
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let streamed = stream(&client, MODEL, body("alpha beta gamma", 100)).await;
    assert_eq!(streamed.text(), "Echo:");
    assert!(matches!(
        streamed.error,
        Some(ResponseStreamError::ModelStreamErrorException(_))
    ));
    // A stream shorter than N fails at its end instead of finishing.
    let server = common::start(Config {
        faults: Faults {
            stream_fail_after: Some(50),
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let client = common::client(&server).await;
    let streamed = stream(&client, MODEL, body("short", 100)).await;
    assert_eq!(streamed.text(), "Echo: short");
    assert!(streamed.chunks().iter().all(|c| c["stop_reason"].is_null()));
    assert!(matches!(
        streamed.error,
        Some(ResponseStreamError::ModelStreamErrorException(_))
    ));
    // InvokeModel is not affected.
    let reply = common::invoke(&client, MODEL, body("short", 100)).await;
    assert_eq!(reply["generation"], "Echo: short");
}

#[tokio::test]
async fn malformed_bodies() {
    let server = scripted(vec![Rule::new(Outcome::Malformed)]).await;
    let client = client(&server).await;
    let output = client
        .invoke_model()
        .model_id(MODEL)
        .body(body("x", 10))
        .send()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(output.body().as_ref()).is_err());
    let streamed = stream(&client, MODEL, body("x", 10)).await;
    assert!(streamed.error.is_none());
    assert_eq!(streamed.raw_chunks.len(), 1);
    assert!(serde_json::from_slice::<serde_json::Value>(&streamed.raw_chunks[0]).is_err());
}

#[tokio::test]
async fn stream_fail_rate_fails_streams_after_their_first_chunk() {
    let server = common::start(Config {
        faults: Faults {
            stream_fail_rate: 1.0,
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let streamed = stream(&client, MODEL, body("a long enough prompt", 100)).await;
    assert_eq!(streamed.raw_chunks.len(), 1);
    assert_eq!(
        streamed.error.as_ref().map(kind_of),
        Some("modelStreamErrorException")
    );
    // InvokeModel has no stream to break.
    let reply = common::invoke(&client, MODEL, body("a long enough prompt", 100)).await;
    assert_eq!(reply["generation"], "Echo: a long enough prompt");
}

#[tokio::test]
async fn stream_fail_rate_is_drawn_per_stream() {
    let server = common::start(Config {
        faults: Faults {
            stream_fail_rate: 0.5,
            seed: Some(5),
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let mut failed = 0;
    for _ in 0..40 {
        let streamed = stream(&client, MODEL, body("one two three", 100)).await;
        if let Some(error) = &streamed.error {
            assert_eq!(kind_of(error), "modelStreamErrorException");
            assert_eq!(streamed.raw_chunks.len(), 1, "fails after the first chunk");
            failed += 1;
        } else {
            assert_eq!(streamed.text(), "Echo: one two three");
        }
    }
    assert!((5..35).contains(&failed), "{failed} of 40");
}
