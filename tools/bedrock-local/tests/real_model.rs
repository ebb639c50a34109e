//! Smoke test with the real SmolLM2-135M GGUF through llama.cpp. Skipped (with a message) when
//! the file is absent; run `scripts/setup.sh` to fetch it.
#![cfg(feature = "llama")]

mod common;

use std::path::PathBuf;

use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use bedrock_local::{Backend, Config, LlamaOptions};
use common::{MODEL, body, client, invoke, llama_prompt, stream};

fn model_path() -> Option<PathBuf> {
    let path = std::env::var_os("BEDROCK_LOCAL_MODEL").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        PathBuf::from,
    );
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: no GGUF at {} (run scripts/setup.sh or set BEDROCK_LOCAL_MODEL)",
            path.display()
        );
        None
    }
}

#[tokio::test]
async fn real_model_invokes_and_streams() {
    let Some(path) = model_path() else { return };
    let server = common::start(Config {
        backend: Backend::Llama(LlamaOptions::new(path)),
        context_window: Some(512),
        ..Config::default()
    })
    .await;
    let client = client(&server).await;
    let prompt = llama_prompt("What is the capital of France? Answer in one sentence.");

    let reply = invoke(&client, MODEL, body(&prompt, 32)).await;
    let generated = reply["generation_token_count"].as_u64().unwrap();
    assert!(reply["prompt_token_count"].as_u64().unwrap() > 5, "{reply}");
    assert!((1..=32).contains(&generated), "{reply}");
    assert!(
        matches!(reply["stop_reason"].as_str(), Some("stop" | "length")),
        "{reply}"
    );
    assert!(!reply["generation"].as_str().unwrap().is_empty());
    eprintln!("invoke: {reply}");

    let streamed = stream(&client, MODEL, body(&prompt, 32)).await;
    assert!(streamed.error.is_none(), "{:?}", streamed.error);
    let chunks = streamed.chunks();
    assert!(chunks.len() >= 2, "{chunks:?}");
    let last = chunks.last().unwrap();
    assert!(matches!(
        last["stop_reason"].as_str(),
        Some("stop" | "length")
    ));
    let metrics = &last["amazon-bedrock-invocationMetrics"];
    assert!(metrics["inputTokenCount"].as_u64().unwrap() > 5);
    assert!(metrics["outputTokenCount"].as_u64().unwrap() > 0);
    // Greedy: the stream generates what InvokeModel generated.
    assert_eq!(streamed.text(), reply["generation"].as_str().unwrap());

    // A raw prompt (no Llama 3 tokens) is fed as it is.
    let raw = invoke(&client, MODEL, body("The sky is", 8)).await;
    assert!(raw["generation_token_count"].as_u64().unwrap() > 0);

    // The real tokenizer decides context overflow: 512-token window.
    let long = "word ".repeat(600);
    let error = client
        .invoke_model()
        .model_id(MODEL)
        .body(body(&long, 32))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match error {
        InvokeModelError::ValidationException(e) => assert_eq!(
            e.message(),
            Some(
                "This model's maximum context length is 512 tokens. Please reduce the length of the prompt."
            )
        ),
        other => panic!("{other:?}"),
    }
    server.shutdown().await;
}
