//! `POST /summaries` keeps its synchronous time budget: work estimated over it is refused
//! before any model call, work that runs out of it anyway ends with 504 and every model
//! call of it ends with the answer. Counts and statuses only, never elapsed time.

use std::time::Duration;

use bedrock::Deadline;
use bedrock_local::{Counters, ErrorKind, Outcome, Rule, Script};
use lambda_kit::sync_budget::SyncRates;
use lambda_kit::{Invocation, handle};
use serde_json::{Value, json};
use summarize_document::{App, Config};
use testkit::Emulator;
use testkit::events::{http_parts, post_json};

const WINDOW: u32 = 1024;
const CONCURRENCY: usize = 3;

async fn app(rules: Vec<Rule>) -> (Emulator, App) {
    let emulator = Emulator::start(Script::new(rules), WINDOW).await;
    // No S3 call is made for inline text; the client only needs an endpoint.
    let s3 = aws_sdk_s3::Client::new(&testkit::sdk_config("http://127.0.0.1:9"));
    let app = App {
        requeue: None,
        llama: emulator.client(emulator.settings(WINDOW)),
        s3,
        config: Config {
            max_request_bytes: 256 * 1024,
            summary_concurrency: CONCURRENCY,
            part_summary_tokens: 64,
            ..Config::default()
        },
    };
    (emulator, app)
}

/// A document of about 12 parts at this window (by exact token counts).
fn long_text() -> String {
    (0..800)
        .map(|i| format!("Sentence {i} of the report says something about the budget."))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HTTP request with `budget`; the rates make the estimate of [`long_text`] about
/// 60 model calls' worth of seconds at 10 generated tokens/s.
fn invocation(budget: Duration, rates: SyncRates) -> Invocation {
    Invocation {
        api_time_budget: budget,
        sync_rates: rates,
        ..Invocation::from(Deadline::after(Duration::from_secs(600)))
    }
}

const SLOW: SyncRates = SyncRates {
    prompt_tokens_per_second: 1000,
    generation_tokens_per_second: 10,
};

const FAST: SyncRates = SyncRates {
    prompt_tokens_per_second: 10_000_000,
    generation_tokens_per_second: 100_000,
};

fn answer_all() -> Vec<Rule> {
    vec![Rule::new(Outcome::text("A summary."))]
}

#[tokio::test]
async fn the_estimate_counts_parts_rounds_and_the_final_call() {
    let (_emulator, app) = app(answer_all()).await;
    let short = summarize_document::requests::estimate(&app, &json!({"text": "A short note."}))
        .expect("a workload");
    assert_eq!(short.model_calls(), 1);
    let long = summarize_document::requests::estimate(&app, &json!({"text": long_text()}))
        .expect("a workload");
    assert!(long.model_calls() > 3, "{long:?}");
    // Rounds of parts, then the final call: longer than twice one call.
    assert!(SLOW.estimate(&long) > SLOW.estimate(&short) * 2);
    // A body the handler refuses has no estimate (the handler's 400 stands).
    assert!(summarize_document::requests::estimate(&app, &json!({"txt": 1})).is_none());
}

#[tokio::test]
async fn a_summary_over_the_budget_is_refused_before_any_model_call() {
    let (emulator, app) = app(answer_all()).await;
    let body = json!({"text": long_text()});
    let out = handle(
        &app,
        post_json("/summaries", &body),
        invocation(Duration::from_secs(5), SLOW),
    )
    .await
    .unwrap();
    let (status, body_out) = http_parts(&out);
    assert_eq!(status, 422, "{body_out}");
    assert_eq!(body_out["error"]["type"], "SyncBudgetExceeded");
    let message = body_out["error"]["message"].as_str().unwrap();
    for part in [
        "estimated",
        "budget leaves",
        "Prefer: respond-async",
        "POST /jobs",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(emulator.calls(), 0, "no model call");
    // The same text as a task (Step Functions, a job worker) is not held to the budget.
    let done = handle(
        &app,
        json!({"text": long_text()}),
        invocation(Duration::from_secs(5), SLOW),
    )
    .await
    .unwrap();
    assert!(done["parts"].as_u64().unwrap() > 1, "{done}");
    assert!(emulator.calls() > 1);
}

/// Longest wait for something a correct handler does at once; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// `handle` of an HTTP request, failing the test if it never answers.
async fn answer(app: &App, body: &Value, invocation: Invocation) -> (u16, Value) {
    let out = tokio::time::timeout(
        HANG_GUARD,
        handle(app, post_json("/summaries", body), invocation),
    )
    .await
    .expect("the handler answers (parts held by the emulator must not hold it up)")
    .unwrap();
    http_parts(&out)
}

/// The emulator's counters once every model call it received has ended.
async fn settled(emulator: &Emulator) -> Counters {
    let ended = |c: &Counters| {
        c.open_requests == 0 && c.completed + c.throttled + c.failed + c.cancelled == c.requests
    };
    let give_up = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let counters = emulator.server.counters();
        if ended(&counters) {
            return counters;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "model calls still open after the answer: {counters:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn work_that_runs_out_of_budget_is_504_and_its_calls_end_with_it() {
    // No part summary is ever answered: only the budget can end the request.
    let (emulator, app) = app(vec![Rule::new(Outcome::Stall)]).await;
    let (status, body_out) = answer(
        &app,
        &json!({"text": long_text()}),
        invocation(Duration::from_secs(1), FAST),
    )
    .await;
    assert_eq!(status, 504, "{body_out}");
    assert_eq!(body_out["error"]["type"], "DeadlineExceeded");
    // Every call made was dropped with the answer (a call left running would stay open
    // forever), and no part beyond the first round started one.
    let counters = settled(&emulator).await;
    assert_eq!(counters.cancelled, counters.requests, "{counters:?}");
    assert!(
        counters.requests <= CONCURRENCY as u64,
        "at most one round of parts: {counters:?}"
    );
}

#[tokio::test]
async fn a_failed_part_stops_the_other_parts() {
    // Part 1 is refused; no other part is ever answered, so the answer cannot wait for
    // them and no part after them can start by their finishing.
    let (emulator, app) = app(vec![
        Rule::new(Outcome::error(ErrorKind::ValidationException))
            .prompt_contains("Summarize part 1 of"),
        Rule::new(Outcome::Stall),
    ])
    .await;
    let (status, body_out) = answer(
        &app,
        &json!({"text": long_text()}),
        invocation(Duration::from_secs(28), FAST),
    )
    .await;
    assert_eq!(body_out["error"]["type"], "ModelValidation", "{status}");
    // Part 1 failed; the other calls made were dropped with the answer, none of them
    // beyond the first round.
    let counters = settled(&emulator).await;
    assert_eq!(counters.failed, 1, "{counters:?}");
    assert_eq!(counters.cancelled, counters.requests - 1, "{counters:?}");
    assert!(
        counters.requests <= CONCURRENCY as u64,
        "parts 1 to 3 at most: {counters:?}"
    );
}
