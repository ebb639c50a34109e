//! Smoke run over the whole path with the real local model (SmolLM2-135M-Instruct via
//! llama.cpp in the emulator): the answer's quality is the stand-in's, the path is real.

use std::time::Duration;

use bedrock::Deadline;
use lambda_kit::handle;
use serde_json::json;
use summarize_document::{App, Config};
use testkit::{Emulator, LocalS3};

#[tokio::test]
async fn summarizes_an_uploaded_document_with_the_local_model() {
    let s3 = LocalS3::start(&["docs"]).await;
    let Some(emulator) = Emulator::start_local_model().await else {
        return;
    };
    let app = App {
        requeue: None,
        llama: emulator.client(emulator.settings(8192)),
        s3: s3.client(),
        config: Config {
            max_document_bytes: 1 << 20,
            max_text_bytes: 1 << 20,
            max_request_bytes: 1 << 20,
            ..Config::default()
        },
    };
    let text = include_str!("../../../shared/tokens/tests/data/languages/en.txt");
    s3.put("docs", "incoming/report.txt", text).await;
    let out = handle(
        &app,
        json!({"bucket": "docs", "key": "incoming/report.txt", "options": {"length": "short"}}),
        Deadline::after(Duration::from_secs(300)),
    )
    .await
    .unwrap();
    assert!(!out["summary"].as_str().unwrap().trim().is_empty(), "{out}");
    assert_eq!(out["language"], "en");
    assert_eq!(out["usage"]["model_calls"], 1);
    assert!(out["usage"]["prompt_tokens"].as_u64().unwrap() > 100);
    assert!(out["usage"]["generation_tokens"].as_u64().unwrap() > 0);
    assert_eq!(emulator.calls(), 1);
}
