//! Which part concurrency each trigger runs with: HTTP requests (`POST /summaries` and its
//! jobs) `HTTP_SUMMARY_CONCURRENCY`, the background lanes (upload queue, tasks) and the
//! rest `SUMMARY_CONCURRENCY`. Each test sets the setting that must apply to 1 and the
//! other one high, and checks the emulator never had more than one call in flight (an upper
//! bound, so scheduling cannot make the test fail; the scripted delay makes a wrong choice
//! overlap calls).

mod common;

use std::time::Duration;

use bedrock_local::{Outcome, Rule};
use common::{BUCKET, Stack, deadline};
use lambda_kit::{Function, handle};
use serde_json::{Value, json};
use summarize_document::Endpoint;
use summarize_document::options::SummaryOptions;

/// A stack whose background lanes run `background` parts at once and HTTP requests `http`.
async fn stack(background: usize, http: usize) -> Stack {
    let rules = vec![Rule::new(Outcome::text("A short summary.")).delay(Duration::from_millis(40))];
    Stack::builder(rules)
        .config(|c| {
            c.max_request_bytes = 64 * 1024;
            c.summary_concurrency = background;
            c.http_summary_concurrency = Some(http);
            c.part_summary_tokens = 64;
        })
        .start()
        .await
}

/// A document of several parts at this window.
fn long_document() -> String {
    (0..24)
        .map(|i| {
            format!(
                "Section {i}. The northern warehouse shipped more parcels this quarter than \
                 ever before. On-time delivery stayed close to target despite two storms. "
            )
            .repeat(4)
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Model calls the document took, after checking that at most one ran at a time.
fn one_call_at_a_time(s: &Stack) -> u64 {
    let counters = s.emulator.server.counters();
    assert_eq!(counters.peak_in_flight, 1, "{counters:?}");
    s.emulator.calls()
}

#[tokio::test]
async fn an_upload_runs_summary_concurrency_parts_at_once() {
    let s = stack(1, 8).await;
    let etag =
        s.s3.put_for_etag(BUCKET, "incoming/long.txt", long_document())
            .await;
    let event = testkit::events::s3_created(BUCKET, &[("incoming/long.txt", &etag)]);
    handle(&s.app, event, deadline()).await.unwrap();
    assert!(
        s.s3.get_json(BUCKET, "summaries/incoming/long.txt.json")
            .await
            .is_some()
    );
    assert!(one_call_at_a_time(&s) > 3);
}

#[tokio::test]
async fn a_task_runs_summary_concurrency_parts_at_once() {
    let s = stack(1, 8).await;
    let done = handle(&s.app, json!({"text": long_document()}), deadline())
        .await
        .unwrap();
    let parts = done["parts"].as_u64().unwrap();
    assert!(parts >= 3, "{done}");
    assert!(one_call_at_a_time(&s) > parts);
}

#[tokio::test]
async fn an_http_request_runs_http_summary_concurrency_parts_at_once() {
    let s = stack(8, 1).await;
    let body = json!({"text": long_document()});
    let response = handle(
        &s.app,
        testkit::events::post_json("/summaries", &body),
        deadline(),
    )
    .await
    .unwrap();
    let (status, answer) = testkit::events::http_parts(&response);
    assert_eq!(status, 200, "{answer}");
    let parts = answer["parts"].as_u64().unwrap();
    assert!(parts >= 3, "{answer}");
    assert!(one_call_at_a_time(&s) > parts);
}

#[tokio::test]
async fn the_http_time_estimate_counts_the_http_part_concurrency() {
    let s = stack(8, 1).await;
    let text = long_document();
    let body: Value = json!({"text": text});
    let workload = |plan| {
        summarize_document::summarize::workload(
            &s.app.llama,
            &text,
            &SummaryOptions::default(),
            text::Language::English,
            &plan,
        )
    };
    let estimate = s.app.estimate(Endpoint::Summarize, &body);
    assert_eq!(estimate, Some(workload(s.app.config.http_plan())));
    assert_ne!(estimate, Some(workload(s.app.config.plan())));
}
