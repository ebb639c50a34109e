//! Smoke run over the whole path with the real local model (SmolLM2-135M-Instruct via
//! llama.cpp in the emulator). The stand-in rarely writes valid classification JSON, so
//! either outcome the contract allows is accepted: a valid classification, or
//! `unclassified` with `needs_review` and a reason. Never an error.

use std::time::Duration;

use bedrock::Deadline;
use classify_ticket::{App, Config};
use lambda_kit::handle;
use serde_json::json;
use testkit::Emulator;

#[tokio::test]
async fn classifies_a_ticket_with_the_local_model() {
    let Some(emulator) = Emulator::start_local_model().await else {
        return;
    };
    let app = App::new(
        emulator.client(emulator.settings(8192)),
        Config::builtin().unwrap(),
    );
    let out = handle(
        &app,
        json!({"subject": "Charged twice", "body": "My card was charged twice this month. Please refund one payment."}),
        Deadline::after(Duration::from_secs(300)),
    )
    .await
    .unwrap();
    assert_eq!(out["language"], "en", "{out}");
    let calls = out["usage"]["model_calls"].as_u64().unwrap();
    assert!((1..=2).contains(&calls), "{out}");
    assert_eq!(emulator.calls(), calls);
    if out["needs_review"] == true {
        assert_eq!(out["category"], "unclassified");
        assert!(!out["reason"].as_str().unwrap().is_empty());
    } else {
        assert!(
            out["category"].is_string() && out["queue"].is_string(),
            "{out}"
        );
    }
}
