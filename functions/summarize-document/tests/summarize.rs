//! summarize-document through the real SDK clients against the scripted Bedrock
//! emulator and an in-process S3 server.

mod common;

use bedrock_local::{ErrorKind, Outcome, Rule};
use common::{BUCKET, Stack, WINDOW, deadline, small_parts};
use lambda_kit::handle;
use serde_json::{Value, json};
use summarize_document::Config;

async fn stack(rules: Vec<Rule>) -> Stack {
    stack_with(rules, |_| {}).await
}

async fn stack_with(rules: Vec<Rule>, tweak: impl FnOnce(&mut Config)) -> Stack {
    Stack::builder(rules)
        .config(small_parts)
        .config(tweak)
        .start()
        .await
}

/// Rules answering "P{i}" to the summary of part `i`, for parts 1 to `parts`.
fn part_rules(parts: u32) -> Vec<Rule> {
    (1..=parts)
        .rev()
        .map(|i| {
            Rule::new(Outcome::text(format!("P{i}")))
                .prompt_contains(format!("Summarize part {i} of"))
        })
        .collect()
}

/// Uploads `doc` as `incoming/long.txt` and summarizes it as a Step Functions task.
async fn summarize_long(s: &Stack, doc: String) -> Value {
    s.s3.put(BUCKET, "incoming/long.txt", doc).await;
    handle(
        &s.app,
        json!({"bucket": BUCKET, "key": "incoming/long.txt"}),
        deadline(),
    )
    .await
    .unwrap()
}

fn s3_event(records: &[(&str, &str)]) -> Value {
    testkit::events::s3_created(BUCKET, records)
}

async fn etag_of(s: &Stack, key: &str) -> String {
    s.s3.etag(BUCKET, key).await
}

async fn record(s: &Stack, key: &str) -> Value {
    s.s3.get_json(BUCKET, key)
        .await
        .unwrap_or_else(|| panic!("no {key}"))
}

const ENGLISH: &str = "The northern warehouse shipped more parcels this quarter than ever before. \
    On-time delivery stayed close to target despite two storms.";

#[tokio::test]
async fn upload_with_encoded_key_is_summarized_into_the_output_prefix() {
    let s = stack(vec![Rule::new(Outcome::text(
        "Parcels rose; delivery held.",
    ))])
    .await;
    for (key, encoded) in [
        (
            "incoming/q3 report (final).txt",
            "incoming/q3+report+%28final%29.txt",
        ),
        ("incoming/über uns.md", "incoming/%C3%BCber+uns.md"),
    ] {
        s.s3.put(BUCKET, key, ENGLISH).await;
        let etag = etag_of(&s, key).await;
        let out = handle(&s.app, s3_event(&[(encoded, &etag)]), deadline())
            .await
            .unwrap();
        assert_eq!(out["records"][0]["status"], "summarized", "{out}");
        let r = record(&s, &format!("summaries/{key}.json")).await;
        assert_eq!(r["summary"], "Parcels rose; delivery held.");
        assert_eq!(r["source"]["key"], key);
        assert_eq!(r["source"]["bucket"], BUCKET);
        assert_eq!(r["source"]["etag"], etag.as_str());
        assert_eq!(r["source"]["size"], ENGLISH.len());
        assert_eq!(r["language"], "en");
        assert_eq!(r["model"], "us.meta.llama3-2-3b-instruct-v1:0");
        assert_eq!(r["usage"]["model_calls"], 1);
        assert!(r["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        assert_eq!(r["parts"], 1);
        assert!(r["timings"]["total_ms"].is_u64());
    }
    assert_eq!(s.emulator.calls(), 2);
}

#[tokio::test]
async fn a_repeated_event_does_not_call_the_model_again() {
    let s = stack(vec![Rule::new(Outcome::text("Once."))]).await;
    s.s3.put(BUCKET, "incoming/a.txt", ENGLISH).await;
    let etag = etag_of(&s, "incoming/a.txt").await;
    let event = s3_event(&[("incoming/a.txt", &etag)]);
    handle(&s.app, event.clone(), deadline()).await.unwrap();
    let again = handle(&s.app, event, deadline()).await.unwrap();
    assert_eq!(again["records"][0]["status"], "already_done");
    assert_eq!(s.emulator.calls(), 1);
    // A new version of the object is summarized again.
    s.s3.put(BUCKET, "incoming/a.txt", format!("{ENGLISH} Revised."))
        .await;
    let etag2 = etag_of(&s, "incoming/a.txt").await;
    let out = handle(&s.app, s3_event(&[("incoming/a.txt", &etag2)]), deadline())
        .await
        .unwrap();
    assert_eq!(out["records"][0]["status"], "summarized");
    assert_eq!(s.emulator.calls(), 2);
}

#[tokio::test]
async fn own_outputs_and_other_prefixes_are_ignored() {
    let s = stack(vec![Rule::new(Outcome::text("never"))]).await;
    s.s3.put(BUCKET, "summaries/incoming/a.txt.json", "{}")
        .await;
    let out = handle(
        &s.app,
        s3_event(&[
            ("summaries/incoming/a.txt.json", "x"),
            ("failed/incoming/b.txt.json", "y"),
            ("elsewhere/c.txt", "z"),
        ]),
        deadline(),
    )
    .await
    .unwrap();
    for i in 0..3 {
        assert_eq!(out["records"][i]["status"], "ignored", "{out}");
    }
    assert_eq!(s.emulator.calls(), 0);
}

#[tokio::test]
async fn unsupported_and_empty_files_become_failure_records() {
    let s = stack(vec![Rule::new(Outcome::text("never"))]).await;
    let png = [
        0x89u8, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13,
    ];
    s.s3.put(BUCKET, "incoming/photo.png", png.to_vec()).await;
    s.s3.put(BUCKET, "incoming/blank.txt", "   \n\n ").await;
    let e1 = etag_of(&s, "incoming/photo.png").await;
    let e2 = etag_of(&s, "incoming/blank.txt").await;
    let out = handle(
        &s.app,
        s3_event(&[("incoming/photo.png", &e1), ("incoming/blank.txt", &e2)]),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(out["records"][0]["status"], "failed");
    assert_eq!(out["records"][1]["status"], "failed");
    let r = record(&s, "failed/incoming/photo.png.json").await;
    assert_eq!(r["error"]["type"], "UnsupportedDocument");
    assert_eq!(r["source"]["etag"], e1.as_str());
    let r = record(&s, "failed/incoming/blank.txt.json").await;
    assert_eq!(r["error"]["type"], "UnsupportedDocument");
    assert_eq!(s.emulator.calls(), 0);
    // A repeat of a failed version is not retried either.
    let out = handle(&s.app, s3_event(&[("incoming/photo.png", &e1)]), deadline())
        .await
        .unwrap();
    assert_eq!(out["records"][0]["status"], "already_done");
}

#[tokio::test]
async fn an_oversized_object_fails_before_any_model_call() {
    let s = stack_with(vec![Rule::new(Outcome::text("never"))], |c| {
        c.max_document_bytes = 100
    })
    .await;
    s.s3.put(BUCKET, "incoming/big.txt", "x".repeat(101)).await;
    let etag = etag_of(&s, "incoming/big.txt").await;
    handle(&s.app, s3_event(&[("incoming/big.txt", &etag)]), deadline())
        .await
        .unwrap();
    let r = record(&s, "failed/incoming/big.txt.json").await;
    assert_eq!(r["error"]["type"], "InputTooLarge");
    assert_eq!(s.emulator.calls(), 0);
}

fn long_document(paragraphs: usize) -> String {
    (0..paragraphs)
        .map(|i| format!("Section {i}. {}", ENGLISH.repeat(4)))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[tokio::test]
async fn a_document_larger_than_the_window_is_split_and_combined_in_order() {
    let doc = long_document(60);
    let estimate = bedrock::estimate_tokens(&doc);
    assert!(
        estimate > 4 * WINDOW,
        "the document must exceed the window: {estimate}"
    );
    // Each part answers with its number; the final combination checks the order.
    let mut rules = part_rules(40);
    rules.push(Rule::new(Outcome::text("COMBINED")).prompt_contains("You combine summaries"));
    let s = stack(rules).await;
    let r = summarize_long(&s, doc.clone()).await;
    let parts = r["parts"].as_u64().unwrap();
    assert!(parts >= 4, "{r}");
    assert_eq!(r["summary"], "COMBINED");
    assert_eq!(
        r["usage"]["model_calls"].as_u64().unwrap(),
        s.emulator.calls()
    );
    assert!(s.emulator.calls() > parts);
}

#[tokio::test]
async fn part_summaries_are_combined_in_input_order() {
    let doc = long_document(24);
    let mut rules = part_rules(20);
    // The combination prompt lists "Part 1:\nP1", "Part 2:\nP2", ... only if the order held.
    rules.push(
        Rule::new(Outcome::text("IN ORDER"))
            .prompt_contains("Part 1:\nP1\n\nPart 2:\nP2\n\nPart 3:\nP3"),
    );
    rules.push(Rule::new(Outcome::text("OUT OF ORDER")).prompt_contains("You combine summaries"));
    let s = stack(rules).await;
    let r = summarize_long(&s, doc).await;
    assert!(r["parts"].as_u64().unwrap() >= 3, "{r}");
    assert_eq!(r["summary"], "IN ORDER");
}

#[tokio::test]
async fn throttling_that_recovers_still_writes_the_summary() {
    let s = stack(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).times(2),
        Rule::new(Outcome::text("After the storm.")),
    ])
    .await;
    s.s3.put(BUCKET, "incoming/t.txt", ENGLISH).await;
    let etag = etag_of(&s, "incoming/t.txt").await;
    handle(&s.app, s3_event(&[("incoming/t.txt", &etag)]), deadline())
        .await
        .unwrap();
    assert_eq!(
        record(&s, "summaries/incoming/t.txt.json").await["summary"],
        "After the storm."
    );
    assert_eq!(s.emulator.calls(), 3);
}

#[tokio::test]
async fn throttling_that_does_not_recover_fails_the_invocation_for_a_retry() {
    let s = stack(vec![Rule::new(Outcome::error(
        ErrorKind::ThrottlingException,
    ))])
    .await;
    s.s3.put(BUCKET, "incoming/t.txt", ENGLISH).await;
    let etag = etag_of(&s, "incoming/t.txt").await;
    let err = handle(&s.app, s3_event(&[("incoming/t.txt", &etag)]), deadline())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ModelThrottled");
    assert!(err.is_retryable());
    assert!(
        s.s3.keys(BUCKET, "failed/").await.is_empty(),
        "a retryable failure is not final"
    );
    assert!(s.s3.keys(BUCKET, "summaries/").await.is_empty());
}

fn http(body: &str, content_type: &str) -> Value {
    testkit::events::http("POST", "/summaries", Some(content_type), body)
}

fn body_of(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn http_summaries_and_their_errors() {
    let s = stack_with(vec![Rule::new(Outcome::text("Kurz gesagt."))], |c| {
        c.max_request_bytes = 2000
    })
    .await;
    let ok = handle(
        &s.app,
        http(
            &json!({"text": ENGLISH, "length": "short", "language": "de"}).to_string(),
            "application/json",
        ),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(ok["statusCode"], 200, "{ok}");
    let body = body_of(&ok);
    assert_eq!(body["summary"], "Kurz gesagt.");
    assert_eq!(body["output_language"], "de");
    assert_eq!(body["language"], "en");
    // The HTTP route streams the final summary; nothing else does.
    let stats = s.emulator.server.stats();
    assert_eq!(
        (
            stats.stream.values().sum::<u64>(),
            stats.invoke.values().sum::<u64>()
        ),
        (1, 0)
    );
    let cases = [
        (http("{}", "application/json"), 400, "text"),
        (
            http(r#"{"text":"a","colour":"red"}"#, "application/json"),
            400,
            "colour",
        ),
        (
            http(r#"{"text":"a","language":"ja"}"#, "application/json"),
            400,
            "ja",
        ),
        (http(r#"{"text":"  "}"#, "application/json"), 422, "no text"),
        (
            http(
                &json!({"text": "x".repeat(3000)}).to_string(),
                "application/json",
            ),
            413,
            "limit",
        ),
        (
            http(r#"{"text":"a"}"#, "text/plain"),
            415,
            "application/json",
        ),
    ];
    for (event, status, needle) in cases {
        let resp = handle(&s.app, event, deadline()).await.unwrap();
        assert_eq!(resp["statusCode"], status, "{resp}");
        let body = body_of(&resp);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{status}: {message}");
    }
    assert_eq!(s.emulator.calls(), 1, "bad requests never reach the model");
}

#[tokio::test]
async fn http_throttled_is_429_and_task_throttled_is_model_throttled() {
    let s = stack(vec![Rule::new(Outcome::error(
        ErrorKind::ThrottlingException,
    ))])
    .await;
    let resp = handle(
        &s.app,
        http(&json!({"text": ENGLISH}).to_string(), "application/json"),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(resp["statusCode"], 429);
    assert_eq!(body_of(&resp)["error"]["type"], "ModelThrottled");
    let err = handle(&s.app, json!({"text": ENGLISH}), deadline())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ModelThrottled");
}

#[tokio::test]
async fn task_input_errors() {
    let s = stack(vec![Rule::new(Outcome::text("never"))]).await;
    let cases = [
        (json!({}), "InvalidInput"),
        (json!({"bucket": BUCKET}), "InvalidInput"),
        (
            json!({"bucket": BUCKET, "key": "k", "text": "t"}),
            "InvalidInput",
        ),
        (
            json!({"text": "t", "options": {"length": "epic"}}),
            "InvalidInput",
        ),
        (
            json!({"bucket": BUCKET, "key": "incoming/missing.txt"}),
            "DocumentNotFound",
        ),
        (json!(["not", "an", "object"]), "InvalidInput"),
    ];
    for (input, expected) in cases {
        let err = handle(&s.app, input.clone(), deadline()).await.unwrap_err();
        assert_eq!(err.error_type(), expected, "{input}: {err}");
    }
    assert_eq!(s.emulator.calls(), 0);
}

#[tokio::test]
async fn sample_events_are_valid() {
    let s = stack(vec![Rule::new(Outcome::text("Sample summary."))]).await;
    s.s3.put(BUCKET, "incoming/quarterly report.txt", ENGLISH)
        .await;
    // The object must still be the version the event announces.
    let etag = etag_of(&s, "incoming/quarterly report.txt").await;
    for (name, expect_status) in [
        ("summarize-document-s3.json", None),
        ("summarize-document-task.json", None),
        ("summarize-document-http.json", Some(200)),
    ] {
        let mut event = testkit::events::sample(name);
        if let Some(records) = event.get_mut("Records").and_then(Value::as_array_mut) {
            for r in records {
                r["s3"]["bucket"]["name"] = BUCKET.into();
                r["s3"]["object"]["eTag"] = etag.as_str().into();
            }
        } else if event.get("bucket").is_some() {
            event["bucket"] = BUCKET.into();
        }
        let out = handle(&s.app, event, deadline())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(status) = expect_status {
            assert_eq!(out["statusCode"], status, "{name}: {out}");
        } else if let Some(records) = out["records"].as_array() {
            assert_eq!(records[0]["status"], "summarized", "{name}: {out}");
        } else {
            assert_eq!(out["summary"], "Sample summary.", "{name}: {out}");
        }
    }
}

#[tokio::test]
async fn long_part_summaries_are_combined_in_groups_then_once_more() {
    // Parts are filled to the window by exact counts: enough of them that their summaries
    // need grouping.
    let doc = long_document(120);
    let long_summary =
        "The report describes shipments, storms, sorting lines and staffing. ".repeat(12);
    let s = stack(vec![
        Rule::new(Outcome::text(long_summary)).prompt_contains("Summarize part"),
        Rule::new(Outcome::text("GROUP SUMMARY")).prompt_contains("into one dense paragraph"),
        Rule::new(Outcome::text("FINAL SUMMARY"))
            .prompt_contains("one summary of the whole document"),
    ])
    .await;
    let r = summarize_long(&s, doc).await;
    assert_eq!(r["summary"], "FINAL SUMMARY");
    let parts = r["parts"].as_u64().unwrap();
    let calls = r["usage"]["model_calls"].as_u64().unwrap();
    // Parts, at least two group combinations, and the final one.
    assert!(calls >= parts + 3, "{calls} calls for {parts} parts");
    assert_eq!(calls, s.emulator.calls());
}
