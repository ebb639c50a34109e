//! `POST /tickets/classify` keeps its synchronous time budget: a ticket whose call (its
//! prompt, and `max_gen_len` generated) is estimated over the budget is refused before any
//! model call. Counts and statuses only, never elapsed time.

use std::time::Duration;

use bedrock::Deadline;
use bedrock_local::{Outcome, Rule, Script};
use classify_ticket::{App, Config, Endpoint};
use lambda_kit::sync_budget::SyncRates;
use lambda_kit::{Function, Invocation, handle};
use serde_json::{Value, json};
use testkit::Emulator;
use testkit::events::{http_parts, post_json};

const WINDOW: u32 = 8192;

/// A valid answer as the model generates it after the `{` prefill.
const GOOD: &str = r#""category": "billing", "priority": "high", "sentiment": {"label": "negative", "score": 0.82}, "confidence": 0.9, "rationale": "The customer was charged twice."}"#;

/// 10 generated tokens per second: the call's `max_gen_len` alone takes far over 5 s.
const SLOW: SyncRates = SyncRates {
    prompt_tokens_per_second: 1000,
    generation_tokens_per_second: 10,
};

async fn app() -> (Emulator, App) {
    let script = Script::new(vec![Rule::new(Outcome::text(GOOD))]);
    let emulator = Emulator::start(script, WINDOW).await;
    let client = emulator.client(emulator.settings(WINDOW));
    (emulator, App::new(client, Config::builtin().unwrap()))
}

fn ticket(body: &str) -> Value {
    json!({"subject": "Charged twice for my subscription", "body": body})
}

fn short_ticket() -> Value {
    ticket("I was billed two times this month for the same plan. Please refund one.")
}

/// An invocation whose HTTP requests get `budget` and `rates`.
fn invocation(budget: Duration, rates: SyncRates) -> Invocation {
    Invocation {
        api_time_budget: budget,
        sync_rates: rates,
        ..Invocation::from(Deadline::after(Duration::from_secs(600)))
    }
}

/// `POST /tickets/classify` with `ticket` under `budget` and `rates`: status and body.
async fn post(app: &App, ticket: &Value, budget: Duration, rates: SyncRates) -> (u16, Value) {
    let out = handle(
        app,
        post_json("/tickets/classify", ticket),
        invocation(budget, rates),
    )
    .await
    .expect("HTTP requests always get a response");
    http_parts(&out)
}

/// The estimated model time of `ticket` at `rates`.
fn estimate(app: &App, ticket: &Value, rates: SyncRates) -> Duration {
    let workload = app
        .estimate(Endpoint::Classify, ticket)
        .expect("a valid ticket has an estimate");
    assert_eq!(workload.model_calls(), 1);
    rates.estimate(&workload)
}

#[tokio::test]
async fn a_ticket_over_the_budget_is_refused_before_any_model_call() {
    let (emulator, app) = app().await;
    let (status, body) = post(&app, &short_ticket(), Duration::from_secs(5), SLOW).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["type"], "SyncBudgetExceeded");
    let message = body["error"]["message"].as_str().unwrap();
    for part in ["estimated", "Prefer: respond-async"] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(emulator.calls(), 0, "no model call");
    // The same ticket as a Step Functions task is not held to the budget.
    let done = handle(
        &app,
        short_ticket(),
        invocation(Duration::from_secs(5), SLOW),
    )
    .await
    .unwrap();
    assert_eq!(done["category"], "billing", "{done}");
    assert_eq!(emulator.calls(), 1);
}

#[tokio::test]
async fn the_budget_is_held_against_the_estimate() {
    let (emulator, app) = app().await;
    let rates = SyncRates::default();
    let needed = estimate(&app, &short_ticket(), rates);
    let (status, body) = post(&app, &short_ticket(), needed / 2, rates).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(emulator.calls(), 0);
    let (status, body) = post(
        &app,
        &short_ticket(),
        needed + Duration::from_secs(5),
        rates,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["category"], "billing");
    assert_eq!(emulator.calls(), 1);
}

#[tokio::test]
async fn the_estimate_counts_the_prompt() {
    // Slow prompt reading, instant generation: the ticket's length decides.
    let rates = SyncRates {
        prompt_tokens_per_second: 100,
        generation_tokens_per_second: 100_000,
    };
    let (emulator, app) = app().await;
    let long = ticket(&"Please refund the second charge. ".repeat(500));
    let (short_needs, long_needs) = (
        estimate(&app, &short_ticket(), rates),
        estimate(&app, &long, rates),
    );
    assert!(
        long_needs > short_needs,
        "{long_needs:?} vs {short_needs:?}"
    );
    let budget = (short_needs + long_needs) / 2;
    let (status, body) = post(&app, &long, budget, rates).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(emulator.calls(), 0);
    let (status, body) = post(&app, &short_ticket(), budget, rates).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emulator.calls(), 1);
}

#[tokio::test]
async fn a_ticket_the_handler_refuses_gets_its_own_error() {
    let (emulator, app) = app().await;
    let empty = json!({"subject": " ", "body": ""});
    assert!(app.estimate(Endpoint::Classify, &empty).is_none());
    let (status, body) = post(&app, &empty, Duration::from_secs(1), SLOW).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "InvalidInput");
    assert_eq!(emulator.calls(), 0);
}
