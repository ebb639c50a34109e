//! `POST /translations` keeps its synchronous time budget: a text whose chunks (their
//! prompts, and each call's `max_gen_len` generated, `concurrency` calls at a time) are
//! estimated over the budget is refused before any model call. Counts and statuses only,
//! never elapsed time.

mod common;

use std::time::Duration;

use bedrock::Deadline;
use bedrock_local::Script;
use common::{Env, WINDOW};
use lambda_kit::sync_budget::SyncRates;
use lambda_kit::{Function, Invocation, handle};
use serde_json::{Value, json};
use testkit::events::{http_parts, post_json};
use translate::Endpoint;

/// 10 generated tokens per second: a text of several chunks needs minutes.
const SLOW: SyncRates = SyncRates {
    prompt_tokens_per_second: 1000,
    generation_tokens_per_second: 10,
};

/// A text of several chunks at the default `max_gen_len`.
fn long_text() -> String {
    (0..600)
        .map(|i| format!("Sentence {i} of the report says something about the budget."))
        .collect::<Vec<_>>()
        .join(" ")
}

fn request(text: &str, target: &str) -> Value {
    json!({"text": text, "source_language": "en", "target_language": target})
}

/// An invocation whose HTTP requests get `budget` and `rates`.
fn invocation(budget: Duration, rates: SyncRates) -> Invocation {
    Invocation {
        api_time_budget: budget,
        sync_rates: rates,
        ..Invocation::from(Deadline::after(Duration::from_secs(600)))
    }
}

/// `POST /translations` with `body` under `budget` and `rates`: status and body.
async fn post(env: &Env, body: &Value, budget: Duration, rates: SyncRates) -> (u16, Value) {
    let out = handle(
        &env.app,
        post_json("/translations", body),
        invocation(budget, rates),
    )
    .await
    .expect("HTTP requests always get a response");
    http_parts(&out)
}

#[tokio::test]
async fn a_translation_over_the_budget_is_refused_before_any_model_call() {
    let env = Env::start(Script::default(), WINDOW).await;
    let body = request(&long_text(), "de");
    let (status, out) = post(&env, &body, Duration::from_secs(5), SLOW).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["type"], "SyncBudgetExceeded");
    let message = out["error"]["message"].as_str().unwrap();
    for part in ["estimated", "Prefer: respond-async", "POST /jobs"] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(env.calls(), 0, "no model call");
    // The same text as a Step Functions task is not held to the budget.
    let done = handle(&env.app, body, invocation(Duration::from_secs(5), SLOW))
        .await
        .unwrap();
    assert!(done["chunks"].as_u64().unwrap() > 1, "{done}");
    assert_eq!(env.calls(), done["chunks"].as_u64().unwrap());
}

#[tokio::test]
async fn the_estimate_counts_the_calls_the_translation_makes() {
    let env = Env::start(Script::default(), WINDOW).await;
    let body = request(&long_text(), "de");
    let workload = env
        .app
        .estimate(Endpoint::Translate, &body)
        .expect("a valid request has an estimate");
    let done = env.task(body).await.unwrap();
    let chunks = done["chunks"].as_u64().unwrap();
    assert!(chunks > 1, "{done}");
    assert_eq!(workload.model_calls() as u64, chunks);
    assert_eq!(done["usage"]["model_calls"], chunks);
}

#[tokio::test]
async fn the_budget_is_held_against_the_estimate() {
    let env = Env::start(Script::default(), WINDOW).await;
    let body = request("The quarterly report is ready for the board.", "de");
    let workload = env.app.estimate(Endpoint::Translate, &body).unwrap();
    assert_eq!(workload.model_calls(), 1);
    let needed = SLOW.estimate(&workload);
    let (status, out) = post(&env, &body, needed / 2, SLOW).await;
    assert_eq!(status, 422, "{out}");
    assert_eq!(env.calls(), 0);
    let (status, out) = post(&env, &body, needed + Duration::from_secs(5), SLOW).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn a_text_already_in_the_target_language_needs_no_model_time() {
    let env = Env::start(Script::default(), WINDOW).await;
    let text = long_text();
    let body = request(&text, "en");
    assert_eq!(
        env.app
            .estimate(Endpoint::Translate, &body)
            .unwrap()
            .model_calls(),
        0
    );
    let (status, out) = post(&env, &body, Duration::from_secs(1), SLOW).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["translation"], text.as_str());
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn a_request_the_handler_refuses_gets_its_own_error() {
    let env = Env::start(Script::default(), WINDOW).await;
    let body = request(&long_text(), "xx");
    assert!(env.app.estimate(Endpoint::Translate, &body).is_none());
    let (status, out) = post(&env, &body, Duration::from_secs(1), SLOW).await;
    assert_eq!(status, 400, "{out}");
    assert_eq!(out["error"]["type"], "InvalidInput");
    assert_eq!(env.calls(), 0);
}
