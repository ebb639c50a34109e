//! The three functions answer the same bad HTTP events the same way: one test per case, each
//! run against every function (scripted emulator; none of these may reach the model).

use std::time::Duration;

use bedrock::Deadline;
use bedrock_local::Script;
use lambda_kit::{Function, handle};
use serde_json::{Value, json};
use testkit::Emulator;
use testkit::events::{header, http, http_parts};

const WINDOW: u32 = 8192;

struct Functions {
    emulator: Emulator,
    classify: classify_ticket::App,
    summarize: summarize_document::App,
    translate: translate::App,
}

async fn functions() -> Functions {
    let emulator = Emulator::start(Script::default(), WINDOW).await;
    let llama = emulator.client(emulator.settings(WINDOW));
    // No S3 call is expected: a client pointed at a closed port.
    let s3 = aws_sdk_s3::Client::new(&testkit::sdk_config("http://127.0.0.1:9"));
    Functions {
        classify: classify_ticket::App::new(
            llama.clone(),
            classify_ticket::Config::builtin().unwrap(),
        ),
        summarize: summarize_document::App {
            requeue: None,
            llama: llama.clone(),
            s3: s3.clone(),
            config: summarize_document::Config::default(),
        },
        translate: translate::App {
            llm: llama,
            s3,
            config: translate::Config::default(),
        },
        emulator,
    }
}

/// The path of a function's first route.
fn path<F: Function>() -> &'static str {
    F::ROUTES[0].path
}

/// `event_for` gives each function its event; every function must answer `status` with
/// `error_type` and a body that is exactly `{"error": {"type", "message"}}`.
async fn same_answer(
    event_for: impl Fn(&str, usize) -> Value,
    status: u16,
    error_type: &str,
) -> Vec<Value> {
    let f = functions().await;
    let deadline = || Deadline::after(Duration::from_secs(30));
    let responses = [
        handle(
            &f.classify,
            event_for(
                path::<classify_ticket::App>(),
                f.classify.max_request_bytes(),
            ),
            deadline(),
        )
        .await,
        handle(
            &f.summarize,
            event_for(
                path::<summarize_document::App>(),
                f.summarize.max_request_bytes(),
            ),
            deadline(),
        )
        .await,
        handle(
            &f.translate,
            event_for(path::<translate::App>(), f.translate.max_request_bytes()),
            deadline(),
        )
        .await,
    ];
    let mut out = Vec::new();
    for (name, response) in ["classify", "summarize", "translate"].iter().zip(responses) {
        let response = response.unwrap_or_else(|e| panic!("{name}: an HTTP event got {e}"));
        let (got, body) = http_parts(&response);
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["type"], error_type, "{name}: {body}");
        assert!(body["error"]["message"].is_string(), "{name}: {body}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{name}: {body}");
        assert_eq!(
            body["error"].as_object().map(|o| o.len()),
            Some(2),
            "{name}: {body}"
        );
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(response["isBase64Encoded"], false, "{name}");
        out.push(response);
    }
    assert_eq!(f.emulator.calls(), 0, "bad requests never reach the model");
    out
}

#[tokio::test]
async fn a_malformed_http_event_is_400() {
    let malformed = |path: &str, _: usize| {
        let mut event = http("POST", path, Some("application/json"), "{}");
        event["requestContext"]["http"]["method"] = json!(5);
        event
    };
    let responses = same_answer(malformed, 400, "InvalidInput").await;
    for r in responses {
        let (_, body) = http_parts(&r);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("malformed HTTP API event"), "{message}");
    }
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let unknown =
        |path: &str, _: usize| http("POST", &format!("/x{path}"), Some("application/json"), "{}");
    same_answer(unknown, 404, "RouteNotFound").await;
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let get = |path: &str, _: usize| http("GET", path, None, "");
    for r in same_answer(get, 405, "MethodNotAllowed").await {
        assert_eq!(header(&r, "allow"), Some("POST"));
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let oversize = |path: &str, limit: usize| {
        let body = json!({"text": "x".repeat(limit)}).to_string();
        http("POST", path, Some("application/json"), &body)
    };
    same_answer(oversize, 413, "InputTooLarge").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let text = |path: &str, _: usize| http("POST", path, Some("text/plain"), "hello");
    same_answer(text, 415, "UnsupportedMediaType").await;
}

#[tokio::test]
async fn a_body_that_is_not_base64_is_400() {
    let bad = |path: &str, _: usize| {
        let mut event = http("POST", path, Some("application/json"), "%%%");
        event["isBase64Encoded"] = json!(true);
        event
    };
    same_answer(bad, 400, "InvalidInput").await;
}
