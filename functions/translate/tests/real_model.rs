//! Smoke run over the whole path with the real local model (SmolLM2-135M-Instruct via
//! llama.cpp in the emulator). The stand-in often keeps writing past a translation, which
//! the function refuses to return cut off; so the result is a translation or that clear
//! refusal, never a crash or a silent truncation.

use std::time::Duration;

use bedrock::Deadline;
use lambda_kit::handle;
use serde_json::json;
use testkit::Emulator;
use translate::{App, Config};

#[tokio::test]
async fn translates_with_the_local_model_or_refuses_a_cut_off_answer() {
    let Some(emulator) = Emulator::start_local_model().await else {
        return;
    };
    let sdk = testkit::sdk_config("http://127.0.0.1:9");
    let app = App {
        llm: emulator.client(emulator.settings(8192)),
        s3: aws_sdk_s3::Client::new(&sdk),
        config: Config::default(),
    };
    let out = handle(
        &app,
        json!({"text": "Vielen Dank für Ihre Bestellung. Die Lieferung erfolgt in drei Tagen.",
               "source_language": "de", "target_language": "en"}),
        Deadline::after(Duration::from_secs(300)),
    )
    .await;
    assert!(emulator.calls() >= 1);
    match out {
        Ok(v) => {
            assert!(!v["translation"].as_str().unwrap().trim().is_empty(), "{v}");
            assert_eq!(v["target_language"], "en");
        }
        Err(e) => {
            assert_eq!(e.error_type(), "UnsupportedDocument", "{e}");
            assert!(e.to_string().contains("cut off"), "{e}");
        }
    }
}
