//! `POST /translations` through the real Bedrock client against the scripted emulator.

mod common;

use bedrock::model::DEFAULT_MODEL_ID;
use bedrock_local::{ErrorKind, Outcome, Rule, Script};
use common::{Env, WINDOW, http_event};
use lambda_kit::handle;
use serde_json::json;
use testkit::events::{header, http_parts};
use translate::Config;

const GERMAN: &str = "Die Geschäftsführung eröffnete die Versammlung mit einem Rückblick auf \
                      das vergangene Geschäftsjahr. Der Umsatz stieg um fast fünf Prozent.";

#[tokio::test]
async fn translates_with_the_given_source_language() {
    let env = Env::start(Script::default(), WINDOW).await;
    let (status, body) = env
        .post(&json!({"text": GERMAN, "source_language": "German", "target_language": "en"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translation"], format!("Echo: {GERMAN}"));
    assert_eq!(body["source_language"], "de");
    assert_eq!(body["detected"], false);
    assert_eq!(body["target_language"], "en");
    assert_eq!(body["model"], DEFAULT_MODEL_ID);
    assert_eq!(body["chunks"], 1);
    assert_eq!(body["usage"]["model_calls"], 1);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let tokens = body["usage"]["prompt_tokens"].as_u64().unwrap()
        + body["usage"]["generation_tokens"].as_u64().unwrap();
    assert_eq!(body["usage"]["cost_usd"], (tokens * 150_000) as f64 / 1e12);
    assert_eq!(
        body["usage"]["generation_tokens"].as_u64().unwrap(),
        1 + GERMAN.split_whitespace().count() as u64
    );
    assert_eq!(body["glossary_violations"], json!([]));
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn the_prompt_names_both_languages() {
    let script = Script::new(vec![
        Rule::new(Outcome::text("The management opened the meeting."))
            .prompt_contains("from German into English"),
    ]);
    let env = Env::start(script, WINDOW).await;
    let (status, body) = env
        .post(&json!({"text": GERMAN, "target_language": "English"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translation"], "The management opened the meeting.");
}

#[tokio::test]
async fn detects_the_source_language_when_not_given() {
    let env = Env::start(Script::default(), WINDOW).await;
    let (status, body) = env
        .post(&json!({"text": GERMAN, "target_language": "fr"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source_language"], "de");
    assert_eq!(body["detected"], true);
    assert_eq!(body["target_language"], "fr");
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn undetectable_language_asks_for_source_language() {
    let env = Env::start(Script::default(), WINDOW).await;
    // No letters at all, and too few words for a confident guess.
    for text in ["12345 67 !!! ??", "Hallo Welt", "Merci beaucoup"] {
        let (status, body) = env
            .post(&json!({"text": text, "target_language": "en"}))
            .await;
        assert_eq!(status, 400, "{text}: {body}");
        assert_eq!(body["error"]["type"], "InvalidInput");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("set source_language"), "{message}");
    }
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn same_source_and_target_returns_the_text_without_a_model_call() {
    let env = Env::start(Script::default(), WINDOW).await;
    let text = "  Hallo Welt!\n\nWie geht es dir?  ";
    let (status, body) = env
        .post(&json!({"text": text, "source_language": "de", "target_language": "German"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translation"], text);
    assert_eq!(body["model"], json!(null));
    assert_eq!(body["chunks"], 0);
    assert_eq!(body["usage"]["model_calls"], 0);
    // Detected to be the target language: also nothing to do.
    let (status, body) = env
        .post(&json!({"text": GERMAN, "target_language": "de"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translation"], GERMAN);
    assert_eq!(body["detected"], true);
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn unsupported_languages_are_400_listing_the_supported_ones() {
    let env = Env::start(Script::default(), WINDOW).await;
    for request in [
        json!({"text": "Hello", "target_language": "ja"}),
        json!({"text": "Hello", "target_language": "Japanese"}),
        json!({"text": "Hello", "source_language": "zh", "target_language": "de"}),
        json!({"text": "Hello", "target_language": ""}),
    ] {
        let (status, body) = env.post(&request).await;
        assert_eq!(status, 400, "{request}: {body}");
        assert_eq!(body["error"]["type"], "InvalidInput");
        let message = body["error"]["message"].as_str().unwrap();
        for supported in [
            "en (English)",
            "de (German)",
            "fr (French)",
            "it (Italian)",
            "pt (Portuguese)",
            "hi (Hindi)",
            "es (Spanish)",
            "th (Thai)",
        ] {
            assert!(message.contains(supported), "{message}");
        }
    }
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_model_call() {
    let config = Config {
        max_body_bytes: 4096,
        max_text_bytes: 1000,
        max_glossary_entries: 3,
        max_term_chars: 20,
        ..Config::default()
    };
    let env = Env::with(Script::default(), WINDOW, config, None).await;
    let glossary = |n: usize| {
        (0..n)
            .map(|i| json!({"term": format!("t{i}")}))
            .collect::<Vec<_>>()
    };
    let cases = [
        (
            json!({"text": "", "target_language": "en"}),
            400,
            "text is empty",
        ),
        (
            json!({"text": " \n\t ", "target_language": "en"}),
            400,
            "text is empty",
        ),
        (json!({"target_language": "en"}), 400, "text"),
        (json!({"text": "Hallo"}), 400, "target_language"),
        (
            json!({"text": 5, "target_language": "en"}),
            400,
            "invalid request",
        ),
        (
            json!({"text": "Hallo", "target_language": "en", "tone": "formal"}),
            400,
            "tone",
        ),
        (
            json!({"text": "x ".repeat(501), "target_language": "en", "source_language": "de"}),
            413,
            "limit is 1000",
        ),
        (
            json!({"text": "Hallo", "target_language": "en", "glossary": glossary(4)}),
            413,
            "glossary has 4 entries",
        ),
        (
            json!({"text": "Hallo", "target_language": "en",
                   "glossary": [{"term": "x".repeat(21)}]}),
            413,
            "glossary[0].term",
        ),
        (
            json!({"text": "Hallo", "target_language": "en",
                   "glossary": [{"term": "a", "translation": ""}]}),
            400,
            "glossary[0].translation is empty",
        ),
        (
            json!({"text": "Hallo", "target_language": "en",
                   "glossary": [{"term": "a", "meaning": "b"}]}),
            400,
            "meaning",
        ),
    ];
    for (request, status, needle) in cases {
        let (got, body) = env.post(&request).await;
        assert_eq!(got, status, "{request}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{request}: {message}");
    }
    let (status, body) = env.post_raw(&"x".repeat(4097), "application/json").await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (413, Some("InputTooLarge"))
    );
    let (status, body) = env.post_raw("{", "application/json").await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("InvalidInput"))
    );
    let (status, body) = env
        .post_raw(r#"{"text":"Hallo","target_language":"en"}"#, "text/plain")
        .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn wrong_method_is_405_and_unknown_route_404() {
    let env = Env::start(Script::default(), WINDOW).await;
    let body = r#"{"text":"Hallo Welt","source_language":"de","target_language":"en"}"#;
    for (method, path, expected, needle) in [
        ("GET", "/translations", 405, "use POST"),
        ("POST", "/summaries", 404, "no route"),
        ("POST", "/x/translations", 404, "no route"),
    ] {
        let event = http_event(method, path, "application/json", body);
        let out = handle(&env.app, event, common::deadline()).await.unwrap();
        let (status, body) = http_parts(&out);
        assert_eq!(status, expected, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle));
    }
    // A named stage's prefix in the path is fine.
    let mut event = http_event("POST", "/prod/translations", "application/json", body);
    event["routeKey"] = json!("$default");
    event["requestContext"]["stage"] = json!("prod");
    let (status, body) = http_parts(&handle(&env.app, event, common::deadline()).await.unwrap());
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn throttling_that_recovers_returns_the_translation() {
    let script = Script::new(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).times(2),
    ]);
    let env = Env::start(script, WINDOW).await;
    let (status, body) = env
        .post(&json!({"text": GERMAN, "source_language": "de", "target_language": "en"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translation"], format!("Echo: {GERMAN}"));
    assert_eq!(body["usage"]["model_calls"], 1);
    assert_eq!(env.calls(), 3);
}

#[tokio::test]
async fn throttling_that_persists_is_429_with_retry_after() {
    let script = Script::new(vec![Rule::new(Outcome::error(
        ErrorKind::ThrottlingException,
    ))]);
    let env = Env::start(script, WINDOW).await;
    let event = http_event(
        "POST",
        "/translations",
        "application/json",
        &json!({"text": GERMAN, "source_language": "de", "target_language": "en"}).to_string(),
    );
    let out = handle(&env.app, event, common::deadline()).await.unwrap();
    let (status, body) = http_parts(&out);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "ModelThrottled");
    assert!(header(&out, "retry-after").is_some(), "{out}");
    assert_eq!(env.calls(), 3, "the client's three attempts");
}
