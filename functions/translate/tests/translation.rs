//! Long texts in chunks, Markdown, cut-off translations, glossary checks, concurrency.

mod common;

use std::time::Duration;

use bedrock_local::{Backend, Outcome, Rule, Script, StopReason};
use common::{Env, WINDOW, unecho};
use serde_json::json;
use testkit::Emulator;
use translate::Config;

/// A small window, as for a small local model: long texts need many chunks.
const SMALL_WINDOW: u32 = 512;

/// Twelve English paragraphs, numbered P01..P12, with single line breaks inside some.
fn long_text() -> String {
    (1..=12)
        .map(|i| {
            format!(
                "P{i:02} starts here. The quarterly report describes revenue, costs and the \
                 outlook for the coming months in some detail.\nA second line of P{i:02} \
                 follows the first one and ends the paragraph."
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[tokio::test]
async fn long_text_is_split_translated_and_reassembled_in_order() {
    // The first paragraph's answer comes last: order must not depend on completion.
    let script = Script::new(vec![
        Rule::new(Outcome::text("FIRST"))
            .prompt_contains("P01 starts")
            .delay(Duration::from_millis(300)),
    ]);
    let env = Env::start(script, SMALL_WINDOW).await;
    let text = long_text();
    let (status, body) = env
        .post(&json!({"text": text, "source_language": "en", "target_language": "de"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let chunks = body["chunks"].as_u64().unwrap();
    assert!(chunks >= 4, "expected several chunks, got {chunks}");
    assert_eq!(env.calls(), chunks);
    assert_eq!(body["usage"]["model_calls"], chunks);
    let translation = body["translation"].as_str().unwrap();
    assert!(translation.starts_with("FIRST\n\n"), "{translation:?}");
    // Every other chunk was echoed: without the echo marks the rest of the text is back,
    // paragraph breaks and line breaks exactly where they were.
    assert_eq!(translation.matches("Echo: ").count() as u64, chunks - 1);
    let rest = unecho(translation.strip_prefix("FIRST").unwrap());
    assert!(rest.starts_with("\n\nP"), "{rest:?}");
    assert!(text.ends_with(&rest), "{rest:?}");
    let first_chunk = &text[..text.len() - rest.len()];
    assert!(first_chunk.starts_with("P01 starts") && !first_chunk.ends_with('\n'));
    // Every chunk starts at a paragraph start.
    for part in translation.split("Echo: ").skip(1) {
        assert!(part.starts_with('P'), "{part:?}");
    }
}

#[tokio::test]
async fn markdown_structure_is_kept_and_code_blocks_are_not_sent() {
    let env = Env::start(Script::default(), WINDOW).await;
    let text = "# Installation\n\n- Download the package.\n- Run the installer.\n\n\
                ```bash\n./install.sh --prefix /opt/app\n```\n\n\
                **Note:** restart the service afterwards.\n";
    let (status, body) = env
        .post(&json!({"text": text, "source_language": "en", "target_language": "es"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let translation = body["translation"].as_str().unwrap();
    assert_eq!(
        translation,
        "Echo: # Installation\n\n- Download the package.\n- Run the installer.\n\n\
         ```bash\n./install.sh --prefix /opt/app\n```\n\n\
         Echo: **Note:** restart the service afterwards.\n"
    );
    assert_eq!(body["chunks"], 2);
    assert_eq!(env.calls(), 2, "the code block is not sent to the model");
}

#[tokio::test]
async fn a_cut_off_translation_is_redone_in_smaller_parts() {
    let text = "Erster Satz über die Lieferung der Ware an den Kunden. \
                Zweiter Satz über die Rechnung und die Zahlungsfrist von dreißig Tagen.";
    let script = Script::new(vec![
        Rule::new(Outcome::Generate {
            generation: "Truncated transl".into(),
            stop_reason: StopReason::Length,
        })
        .times(1),
    ]);
    let env = Env::start(script, WINDOW).await;
    let out = env
        .task(json!({"text": text, "source_language": "de", "target_language": "en"}))
        .await
        .unwrap();
    let translation = out["translation"].as_str().unwrap();
    assert!(!translation.contains("Truncated"), "{translation}");
    assert!(translation.matches("Echo: ").count() >= 2, "{translation}");
    assert_eq!(unecho(translation), text);
    assert_eq!(out["chunks"], 1);
    let calls = env.calls();
    assert!(calls >= 3, "{calls}");
    assert_eq!(out["usage"]["model_calls"], calls);
}

#[tokio::test]
async fn a_translation_that_is_always_cut_off_fails_clearly() {
    let script = Script::new(vec![Rule::new(Outcome::Generate {
        generation: "cut".into(),
        stop_reason: StopReason::Length,
    })]);
    let env = Env::start(script, WINDOW).await;
    let err = env
        .task(
            json!({"text": "Ein Satz. Noch ein Satz. Und ein dritter Satz.",
                     "source_language": "de", "target_language": "en"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "UnsupportedDocument");
    assert!(err.to_string().contains("cut off"), "{err}");
    let calls = env.calls();
    assert!((2..=15).contains(&calls), "{calls}");
}

#[tokio::test]
async fn glossary_violations_are_reported_after_one_stricter_retry() {
    // The echo keeps "Acme Cloud" as it is instead of the fixed "Acme Wolke".
    let env = Env::start(Script::default(), WINDOW).await;
    let (status, body) = env
        .post(&json!({
            "text": "Acme Cloud stores your invoices. The Acme Cloud console shows them.",
            "source_language": "en",
            "target_language": "de",
            "glossary": [
                {"term": "Acme Cloud", "translation": "Acme Wolke"},
                {"term": "console", "translation": null},
                {"term": "dashboard", "translation": "Übersicht"}
            ]
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["glossary_violations"],
        json!([{"term": "Acme Cloud", "expected": "Acme Wolke", "chunk": 0}])
    );
    assert_eq!(env.calls(), 2, "the first try and one stricter retry");
    assert_eq!(body["usage"]["model_calls"], 2);
}

#[tokio::test]
async fn glossary_reaches_the_prompt_and_a_stricter_retry_can_fix_it() {
    let script = Script::new(vec![
        Rule::new(Outcome::text("Acme Wolke speichert Ihre Rechnungen."))
            .prompt_contains("You MUST follow these entries exactly:\n- \"Acme Cloud\" must be translated as \"Acme Wolke\""),
        Rule::new(Outcome::text("Die Acme-Wolke speichert Ihre Rechnungen."))
            .prompt_contains("- \"Acme Cloud\" must be translated as \"Acme Wolke\""),
    ]);
    let env = Env::start(script, WINDOW).await;
    let (status, body) = env
        .post(&json!({
            "text": "Acme Cloud stores your invoices.",
            "source_language": "en",
            "target_language": "de",
            "glossary": [{"term": "Acme Cloud", "translation": "Acme Wolke"}]
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translation"], "Acme Wolke speichert Ihre Rechnungen.");
    assert_eq!(body["glossary_violations"], json!([]));
    assert_eq!(env.calls(), 2);
}

#[tokio::test]
async fn kept_terms_that_survive_are_no_violation() {
    let env = Env::start(Script::default(), WINDOW).await;
    let (status, body) = env
        .post(&json!({
            "text": "Acme Cloud stores your invoices.",
            "source_language": "en",
            "target_language": "de",
            "glossary": [{"term": "Acme Cloud"}]
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["glossary_violations"], json!([]));
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn a_glossary_too_large_for_the_window_is_refused_before_any_call() {
    let env = Env::start(Script::default(), SMALL_WINDOW).await;
    let glossary: Vec<_> = (0..40)
        .map(|i| json!({"term": format!("term number {i}"), "translation": format!("Begriff {i}")}))
        .collect();
    let (status, body) = env
        .post(&json!({"text": "Hello there.", "source_language": "en",
                      "target_language": "de", "glossary": glossary}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("glossary")
    );
    assert_eq!(env.calls(), 0);
}

/// An emulator with two generation slots and one queue place: a fourth concurrent call is
/// throttled.
async fn two_slot_env(concurrency: usize) -> Env {
    let server = bedrock_local::Server::start(bedrock_local::Config {
        backend: Backend::Scripted(Script::new(vec![
            Rule::new(Outcome::text("Übersetzt.")).delay(Duration::from_millis(150)),
        ])),
        context_window: Some(SMALL_WINDOW),
        max_concurrency: Some(2),
        max_queue: 1,
        ..bedrock_local::Config::default()
    })
    .await
    .unwrap();
    let emulator = Emulator {
        server,
        metrics: Default::default(),
    };
    let mut settings = emulator.settings(SMALL_WINDOW);
    settings.retry.max_attempts = 1;
    let config = Config {
        concurrency,
        ..Config::default()
    };
    Env::around(emulator, settings, config, None)
}

#[tokio::test]
async fn chunks_run_concurrently_but_never_beyond_the_limit() {
    let request = json!({"text": long_text(), "source_language": "en", "target_language": "de"});
    // Two at a time fits the two slots.
    let env = two_slot_env(2).await;
    let (status, body) = env.post(&request).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["chunks"].as_u64().unwrap() >= 4);
    // Four at a time really runs more than three calls at once: the fourth is throttled.
    let env = two_slot_env(4).await;
    let (status, body) = env.post(&request).await;
    assert_eq!(status, 429, "{body}");
}

#[tokio::test]
async fn default_window_fits_a_long_text_in_one_call() {
    let env = Env::with(Script::default(), WINDOW, Config::default(), None).await;
    let text = long_text();
    let out = env
        .task(json!({"text": text, "source_language": "en", "target_language": "hi"}))
        .await
        .unwrap();
    assert_eq!(out["chunks"], 1);
    assert_eq!(unecho(out["translation"].as_str().unwrap()), text);
}
