//! `POST /translations` when the model's guardrail blocks the call: the emulator answers
//! as Bedrock does (200, the guardrail's block message as the generation, the action
//! `INTERVENED`), and the request fails with the error, never with the message.

mod common;

use bedrock_local::Script;
use common::{Env, WINDOW};
use serde_json::json;
use testkit::Emulator;
use translate::Config;

const GERMAN: &str = "Die Geschäftsführung eröffnete die Versammlung mit einem Rückblick auf \
                      das vergangene Geschäftsjahr. Der Umsatz stieg um fast fünf Prozent.";

/// The start of the emulator's block message (Bedrock's default for blocked input).
const BLOCK_MESSAGE: &str = "Sorry, the model cannot answer";

/// The app with a guardrail on its model calls, which blocks every one of them.
async fn blocked_env() -> Env {
    let emulator = Emulator::start_blocking_guardrail(Script::default(), WINDOW).await;
    let settings = emulator.guarded_settings(WINDOW);
    Env::around(emulator, settings, Config::default(), None)
}

#[tokio::test]
async fn a_blocked_chunk_is_422_content_blocked_and_never_the_translation() {
    let env = blocked_env().await;
    let (status, body) = env
        .post(&json!({"text": GERMAN, "source_language": "de", "target_language": "en"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["type"], "ContentBlocked", "{body}");
    assert!(body.get("translation").is_none(), "{body}");
    assert!(!body.to_string().contains(BLOCK_MESSAGE), "{body}");
    assert_eq!(env.calls(), 1, "a blocked call is not retried");
}
