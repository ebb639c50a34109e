//! Uploads queued in SQS: batches of S3 notifications through the real function logic, the
//! real SDK clients, the scripted Bedrock emulator and an in-process S3 server. Only the
//! messages that must come back are listed in `batchItemFailures`.

mod common;

use std::time::Duration;

use bedrock::Deadline;
use bedrock_local::{ErrorKind, Outcome, Rule};
use common::{BUCKET, Stack};
use lambda_kit::handle;
use serde_json::{Value, json};

const MAX_RECEIVES: u32 = 3;

async fn stack(rules: Vec<Rule>) -> Stack {
    Stack::builder(rules)
        .config(|c| c.upload_max_receives = MAX_RECEIVES)
        .start()
        .await
}

/// Far more than `lambda_kit::sqs::MESSAGE_START_RESERVE`: every message starts.
fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(600))
}

fn text(name: &str) -> String {
    format!(
        "Document {name}. The northern warehouse shipped more parcels this quarter than \
         ever before. On-time delivery stayed close to target despite two storms."
    )
}

/// Uploads `incoming/<name>.txt` and returns the body of its S3 notification.
async fn upload(s: &Stack, name: &str) -> String {
    let key = format!("incoming/{name}.txt");
    let etag = s.s3.put_for_etag(BUCKET, &key, text(name)).await;
    testkit::events::s3_created(BUCKET, &[(&key, &etag)]).to_string()
}

/// An SQS message as the event source mapping delivers it.
fn message(id: &str, body: &str, receive_count: u32) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": receive_count.to_string(),
            "SentTimestamp": "1795166102500",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795166102514"
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
        "awsRegion": "us-east-1"
    })
}

fn batch(messages: Vec<Value>) -> Value {
    json!({ "Records": messages })
}

/// The message ids in `batchItemFailures`, sorted.
fn failures(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    ids.sort_unstable();
    ids
}

async fn json_at(s: &Stack, key: &str) -> Option<Value> {
    s.s3.get_json(BUCKET, key).await
}

#[tokio::test]
async fn a_throttled_document_alone_comes_back_and_the_others_are_summarized_once() {
    let s = stack(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).prompt_contains("Document b."),
        Rule::new(Outcome::text("Summary.")),
    ])
    .await;
    let (a, b, c) = (
        upload(&s, "a").await,
        upload(&s, "b").await,
        upload(&s, "c").await,
    );
    let event = batch(vec![
        message("m-a", &a, 1),
        message("m-b", &b, 1),
        message("m-c", &c, 1),
    ]);
    let answer = handle(&s.app, event, deadline()).await.unwrap();
    assert_eq!(failures(&answer), ["m-b"], "{answer}");
    for name in ["a", "c"] {
        let record = json_at(&s, &format!("summaries/incoming/{name}.txt.json")).await;
        assert_eq!(record.expect(name)["summary"], "Summary.");
    }
    assert!(json_at(&s, "summaries/incoming/b.txt.json").await.is_none());
    assert!(
        s.s3.keys(BUCKET, "failed/").await.is_empty(),
        "not the last receive"
    );
    assert!(
        s.s3.keys(BUCKET, "claims/").await.is_empty(),
        "claims released"
    );
    let calls_after_first_batch = s.emulator.calls();
    // Only m-b comes back; a repeat of a summarized document (S3 delivers at least once)
    // costs nothing.
    let answer = handle(&s.app, batch(vec![message("m-a2", &a, 1)]), deadline())
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(s.emulator.calls(), calls_after_first_batch);
}

#[tokio::test]
async fn a_test_event_is_acknowledged_and_a_malformed_body_comes_back() {
    let s = stack(vec![Rule::new(Outcome::text("Summary."))]).await;
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent",
        "Time": "2026-11-30T08:00:00.000Z", "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"})
    .to_string();
    let good = upload(&s, "a").await;
    let event = batch(vec![
        message("m-test", &test_event, 1),
        message("m-text", "confidential text that is not JSON", 1),
        message(
            "m-other",
            r#"{"detail-type": "Object Created", "detail": {}}"#,
            1,
        ),
        message("m-good", &good, 1),
    ]);
    let answer = handle(&s.app, event, deadline()).await.unwrap();
    assert_eq!(failures(&answer), ["m-other", "m-text"], "{answer}");
    assert!(json_at(&s, "summaries/incoming/a.txt.json").await.is_some());
    assert_eq!(s.emulator.calls(), 1);
}

#[tokio::test]
async fn a_retryable_failure_on_the_last_receive_writes_a_failure_record_and_still_comes_back() {
    let s = stack(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).times(6),
        Rule::new(Outcome::text("Summary after the redrive.")),
    ])
    .await;
    let body = upload(&s, "d").await;
    // An earlier receive: no record yet.
    let answer = handle(
        &s.app,
        batch(vec![message("m-d", &body, MAX_RECEIVES - 1)]),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(failures(&answer), ["m-d"]);
    assert!(json_at(&s, "failed/incoming/d.txt.json").await.is_none());
    // The last receive: the failure record (not final) and still a batch item failure, so
    // the queue moves the message to its dead-letter queue.
    let answer = handle(
        &s.app,
        batch(vec![message("m-d", &body, MAX_RECEIVES)]),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(failures(&answer), ["m-d"]);
    let failure = json_at(&s, "failed/incoming/d.txt.json")
        .await
        .expect("failure record");
    assert_eq!(failure["error"]["type"], "ModelThrottled");
    assert_eq!(failure["source"]["key"], "incoming/d.txt");
    // What this receive spent: its throttled attempts, no answered call, nothing billed.
    assert_eq!(failure["usage"]["model_calls"], 0);
    assert!(
        failure["usage"]["attempts"].as_u64().unwrap() >= 1,
        "{failure}"
    );
    assert_eq!(failure["usage"]["cost_usd"], 0.0);
    assert!(s.s3.keys(BUCKET, "claims/").await.is_empty());
    // A redrive from the dead-letter queue (a new message, its count restarted) is not
    // blocked by that record: the summary replaces it.
    let answer = handle(&s.app, batch(vec![message("m-d2", &body, 1)]), deadline())
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    let summary = json_at(&s, "summaries/incoming/d.txt.json")
        .await
        .expect("summary");
    assert_eq!(summary["summary"], "Summary after the redrive.");
    assert!(json_at(&s, "failed/incoming/d.txt.json").await.is_none());
}

#[tokio::test]
async fn a_failure_record_carries_what_the_answered_calls_before_the_failure_cost() {
    // Parts are answered; the combination is throttled until this receive gives up.
    let s = Stack::builder(vec![
        Rule::new(Outcome::text("A part summary.")).prompt_contains("Summarize part"),
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)),
    ])
    .window(1024)
    .config(|c| c.upload_max_receives = 1)
    .start()
    .await;
    let key = "incoming/long.txt";
    let long = (0..40)
        .map(|i| text(&i.to_string()))
        .collect::<Vec<_>>()
        .join("\n\n");
    let etag = s.s3.put_for_etag(BUCKET, key, long).await;
    let body = testkit::events::s3_created(BUCKET, &[(key, &etag)]).to_string();
    let answer = handle(&s.app, batch(vec![message("m-l", &body, 1)]), deadline())
        .await
        .unwrap();
    assert_eq!(failures(&answer), ["m-l"]);
    let failure = json_at(&s, "failed/incoming/long.txt.json").await.unwrap();
    assert_eq!(failure["error"]["type"], "ModelThrottled");
    let usage = &failure["usage"];
    let calls = usage["model_calls"].as_u64().unwrap();
    assert!(calls >= 2, "the parts were answered: {failure}");
    assert!(usage["attempts"].as_u64().unwrap() > calls, "{failure}");
    // Priced at the default 0.00015 USD per 1,000 tokens, in and out.
    let tokens =
        usage["prompt_tokens"].as_u64().unwrap() + usage["generation_tokens"].as_u64().unwrap();
    let expected = tokens as f64 * 0.000_15 / 1000.0;
    let cost = usage["cost_usd"].as_f64().unwrap();
    assert!(
        cost > 0.0 && (cost - expected).abs() < 1e-12,
        "{cost} vs {expected}"
    );
}

#[tokio::test]
async fn a_final_document_error_ends_as_its_failure_record_and_the_message_is_deleted() {
    let s = stack(vec![Rule::new(Outcome::text("unused"))]).await;
    let key = "incoming/image.txt";
    let etag =
        s.s3.put_for_etag(BUCKET, key, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec())
            .await;
    let body = testkit::events::s3_created(BUCKET, &[(key, &etag)]).to_string();
    let answer = handle(&s.app, batch(vec![message("m-png", &body, 1)]), deadline())
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    let failure = json_at(&s, "failed/incoming/image.txt.json").await.unwrap();
    assert_eq!(failure["error"]["type"], "UnsupportedDocument");
    assert_eq!(s.emulator.calls(), 0);
}

#[tokio::test]
async fn messages_are_not_started_without_enough_time_left_and_come_back_untouched() {
    let s = stack(vec![Rule::new(Outcome::text("Summary."))]).await;
    let (a, b) = (upload(&s, "a").await, upload(&s, "b").await);
    // Less than the start reserve is left: nothing is started.
    let short = Deadline::after(lambda_kit::sqs::MESSAGE_START_RESERVE / 2);
    let event = batch(vec![message("m-a", &a, 1), message("m-b", &b, 1)]);
    let answer = handle(&s.app, event, short).await.unwrap();
    assert_eq!(failures(&answer), ["m-a", "m-b"]);
    assert_eq!(s.emulator.calls(), 0);
    assert!(s.s3.keys(BUCKET, "claims/").await.is_empty(), "untouched");
    assert!(s.s3.keys(BUCKET, "summaries/").await.is_empty());
}

#[tokio::test]
async fn the_sample_event_is_a_queued_upload() {
    let s = stack(vec![Rule::new(Outcome::text("Summary."))]).await;
    let mut event = testkit::events::sample("sqs-upload.json");
    // The sample's notification, pointed at an object of this test's bucket.
    let etag =
        s.s3.put_for_etag(BUCKET, "incoming/quarterly report.txt", text("q"))
            .await;
    let mut body: Value =
        serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
    body["Records"][0]["s3"]["bucket"]["name"] = json!(BUCKET);
    body["Records"][0]["s3"]["object"]["eTag"] = json!(etag);
    event["Records"][0]["body"] = json!(body.to_string());
    let answer = handle(&s.app, event, deadline()).await.unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert!(
        json_at(&s, "summaries/incoming/quarterly report.txt.json")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_redelivered_message_takes_over_the_claim_its_earlier_receive_left() {
    let s = stack(vec![Rule::new(Outcome::text("Summary."))]).await;
    let key = "incoming/e.txt";
    let etag = s.s3.put_for_etag(BUCKET, key, text("e")).await;
    let body = testkit::events::s3_created(BUCKET, &[(key, &etag)]).to_string();
    // The first receive of m-e died (out of memory, say) holding a live claim.
    let expires_at_ms = 4_102_444_800_000u64; // 2100-01-01
    let claim = |holder: &str| {
        json!({"source": {"etag": etag, "version_id": null, "sequencer": "0A1B2C3D4E5F678901"},
               "holder": holder, "expires_at_ms": expires_at_ms})
        .to_string()
    };
    s.s3.put(BUCKET, "claims/incoming/e.txt.json", claim("m-e"))
        .await;
    // Another message of the same notification (S3 delivers at least once) stops at the claim
    // and is deleted; the claim's holder will finish the document.
    let answer = handle(&s.app, batch(vec![message("m-dup", &body, 1)]), deadline())
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(s.emulator.calls(), 0);
    // The holder's message comes back and takes its own claim over.
    let answer = handle(&s.app, batch(vec![message("m-e", &body, 2)]), deadline())
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert!(json_at(&s, "summaries/incoming/e.txt.json").await.is_some());
    assert_eq!(s.emulator.calls(), 1);
    assert!(s.s3.keys(BUCKET, "claims/").await.is_empty());
}
