//! The batch workflow's tasks (`batch_item`, `batch_failure`, `batch_report`) as Step
//! Functions sends them, through the real SDK clients against the scripted Bedrock emulator
//! and an in-process S3 server.

mod common;

use bedrock_local::{ErrorKind, Outcome, Rule};
use common::{BUCKET, Stack, deadline};
use lambda_kit::handle;
use serde_json::{Value, json};

const BATCH: &str = "batch-1";
const TEXT: &str = "The northern warehouse shipped more parcels this quarter than ever before. \
    On-time delivery stayed close to target despite two storms.";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";

async fn stack(rules: Vec<Rule>) -> Stack {
    Stack::builder(rules)
        .fallback(Outcome::text("A short summary."))
        .start()
        .await
}

/// The Map's `ItemSelector` output for one document (see the ASL).
fn item(key: &str, index: u64) -> Value {
    item_of(BATCH, key, index)
}

/// The same, in another batch.
fn item_of(batch: &str, key: &str, index: u64) -> Value {
    json!({"action": "batch_item", "bucket": BUCKET, "key": key, "batch": batch, "index": index})
}

/// Runs a task; its error type on failure.
async fn task(s: &Stack, input: Value) -> Result<Value, String> {
    handle(&s.app, input, deadline())
        .await
        .map_err(|e| e.error_type().to_owned())
}

async fn jsonl_at(s: &Stack, key: &str) -> Vec<Value> {
    let bytes =
        s.s3.get(BUCKET, key)
            .await
            .unwrap_or_else(|| panic!("no {key}"));
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn json_at(s: &Stack, key: &str) -> Value {
    s.s3.get_json(BUCKET, key)
        .await
        .unwrap_or_else(|| panic!("no {key}"))
}

#[tokio::test]
async fn an_item_is_summarized_once_and_reported_already_done_after() {
    let s = stack(vec![]).await;
    s.s3.put(BUCKET, "incoming/a.txt", TEXT).await;
    let line = task(&s, item("incoming/a.txt", 0)).await.unwrap();
    assert_eq!(line["status"], "summarized");
    assert_eq!(line["output_key"], "summaries/incoming/a.txt.json");
    assert_eq!(line["usage"]["model_calls"], 1);
    assert!(line["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        json_at(&s, "batches/batch-1/items/incoming/a.txt.json").await,
        line
    );
    let record = json_at(&s, "summaries/incoming/a.txt.json").await;
    assert_eq!(record["summary"], "A short summary.");
    // The line states the record's cost: every token at the default 0.00015 USD per 1,000.
    let tokens = line["usage"]["input_tokens"].as_u64().unwrap()
        + line["usage"]["output_tokens"].as_u64().unwrap();
    assert_eq!(line["usage"]["cost_usd"], (tokens * 150_000) as f64 / 1e12);
    assert_eq!(line["usage"]["cost_usd"], record["usage"]["cost_usd"]);
    assert_eq!(s.emulator.calls(), 1);

    // The next batch finds it done.
    let again = task(&s, item_of("batch-2", "incoming/a.txt", 0))
        .await
        .unwrap();
    assert_eq!(again["status"], "already_done");
    assert_eq!(again["usage"]["model_calls"], 0);
    assert_eq!(
        s.emulator.calls(),
        1,
        "a document already done costs no call"
    );
    // A repeat within the same batch (a Step Functions retry after the line was written)
    // keeps the line that says what the batch paid.
    let repeat = task(&s, item("incoming/a.txt", 0)).await.unwrap();
    assert_eq!(repeat["status"], "summarized");
    assert_eq!(repeat["usage"], line["usage"]);
    assert_eq!(s.emulator.calls(), 1);
}

#[tokio::test]
async fn a_retry_after_the_line_was_lost_reports_the_summary_the_batch_paid_for() {
    let s = stack(vec![]).await;
    s.s3.put(BUCKET, "incoming/a.txt", TEXT).await;
    // The first run: its `started` line, then the summary record (written by the upload
    // path's logic, as that run did), then its final line failed to be written.
    let started = json!({"key": "incoming/a.txt", "status": "started", "usage":
                         {"input_tokens": 0, "output_tokens": 0, "model_calls": 0},
                         "elapsed_ms": 0, "index": 0});
    s.s3.put(
        BUCKET,
        "batches/batch-1/items/incoming/a.txt.json",
        started.to_string(),
    )
    .await;
    let first = task(&s, item_of("batch-0", "incoming/a.txt", 0))
        .await
        .unwrap();
    assert_eq!(first["status"], "summarized");
    // Step Functions' retry of the item.
    let line = task(&s, item("incoming/a.txt", 0)).await.unwrap();
    assert_eq!(line["status"], "summarized", "{line}");
    assert_eq!(line["usage"], first["usage"]);
    assert_eq!(line["output_key"], "summaries/incoming/a.txt.json");
    assert_eq!(
        json_at(&s, "batches/batch-1/items/incoming/a.txt.json").await,
        line
    );
    assert_eq!(s.emulator.calls(), 1, "no second call");
}

#[tokio::test]
async fn an_unsupported_item_ends_as_a_final_failure_record() {
    let s = stack(vec![]).await;
    s.s3.put(BUCKET, "incoming/photo.png", PNG).await;
    let line = task(&s, item("incoming/photo.png", 3)).await.unwrap();
    assert_eq!(line["status"], "failed");
    assert_eq!(line["error_type"], "UnsupportedDocument");
    assert_eq!(line["output_key"], "failed/incoming/photo.png.json");
    let record = json_at(&s, "failed/incoming/photo.png.json").await;
    assert_eq!(record["error"]["type"], "UnsupportedDocument");
    let again = task(&s, item("incoming/photo.png", 3)).await.unwrap();
    assert_eq!(again["status"], "already_done");
    assert_eq!(s.emulator.calls(), 0);
}

#[tokio::test]
async fn items_the_upload_path_would_not_take_are_ignored_or_missing() {
    let s = stack(vec![]).await;
    s.s3.put(BUCKET, "elsewhere/a.txt", TEXT).await;
    for (key, status) in [
        ("elsewhere/a.txt", "ignored"),
        ("summaries/incoming/a.txt.json", "ignored"),
        ("incoming/folder/", "ignored"),
        ("incoming/never-uploaded.txt", "missing"),
    ] {
        let line = task(&s, item(key, 0)).await.unwrap();
        assert_eq!(line["status"], status, "{key}");
        assert!(line.get("output_key").is_none(), "{key}");
    }
    assert_eq!(s.emulator.calls(), 0);
    // A document deleted before its failure record: missing, and no record.
    let cause = json!({"errorType": "ModelThrottled", "errorMessage": "busy"});
    let line = task(
        &s,
        json!({"action": "batch_failure", "bucket": BUCKET, "key": "incoming/gone.txt",
               "batch": BATCH, "index": 2,
               "error": {"Error": "ModelThrottled", "Cause": cause.to_string()}}),
    )
    .await
    .unwrap();
    assert_eq!(line["status"], "missing");
    assert!(line.get("output_key").is_none());
    assert!(
        s.s3.get(BUCKET, "failed/incoming/gone.txt.json")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_transient_failure_is_returned_for_retry_then_recorded_and_retried_by_the_next_batch() {
    // Three throttles spend the client's own attempts once.
    let s = stack(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).times(3),
    ])
    .await;
    s.s3.put(BUCKET, "incoming/busy.txt", TEXT).await;
    assert_eq!(
        task(&s, item("incoming/busy.txt", 1)).await.unwrap_err(),
        "ModelThrottled"
    );
    // The Map's Catch after its retries: {Error, Cause} as Step Functions passes them.
    let cause = json!({"errorType": "ModelThrottled", "errorMessage": "the model is busy"});
    let line = task(
        &s,
        json!({"action": "batch_failure", "bucket": BUCKET, "key": "incoming/busy.txt",
               "batch": BATCH, "error": {"Error": "ModelThrottled", "Cause": cause.to_string()}}),
    )
    .await
    .unwrap();
    assert_eq!(line["status"], "failed");
    assert_eq!(line["error_type"], "ModelThrottled");
    let record = json_at(&s, "failed/incoming/busy.txt.json").await;
    assert_eq!(
        record["error"],
        json!({"type": "ModelThrottled", "message": "the model is busy"})
    );
    assert_eq!(record["batch"], BATCH);
    assert_eq!(
        record["source"]["etag"],
        s.s3.etag(BUCKET, "incoming/busy.txt").await
    );

    // Not a final type: the next batch summarizes it, and the failure record goes.
    let line = task(&s, item("incoming/busy.txt", 1)).await.unwrap();
    assert_eq!(line["status"], "summarized");
    assert!(
        s.s3.get(BUCKET, "failed/incoming/busy.txt.json")
            .await
            .is_none()
    );
}

/// A `batch_report` task input for `batch-2`, with the state after the Map.
fn report_input(outcome: Value) -> Value {
    json!({"action": "batch_report", "bucket": BUCKET, "batch": "batch-2",
           "execution": "arn:aws:states:us-east-1:123456789012:execution:document-batch:batch-2",
           "started_at": "2026-11-30T08:30:36.688Z",
           "source": {"prefix": "incoming/", "requested_by": "arn:aws:iam::123456789012:user/a"},
           "outcome": outcome})
}

#[tokio::test]
async fn the_report_sums_up_every_item_line_in_a_summary_and_json_lines() {
    let s = stack(vec![]).await;
    s.s3.put(BUCKET, "incoming/b.txt", TEXT).await;
    s.s3.put(BUCKET, "incoming/a.txt", TEXT).await;
    s.s3.put(BUCKET, "incoming/photo.png", PNG).await;
    task(&s, item("incoming/a.txt", 0)).await.unwrap();
    for (i, key) in ["incoming/a.txt", "incoming/b.txt", "incoming/photo.png"]
        .iter()
        .enumerate()
    {
        let index = u64::try_from(i).unwrap();
        task(&s, item_of("batch-2", key, index)).await.unwrap();
    }
    let out = task(
        &s,
        report_input(
            json!({"prefix": "incoming/", "results": {"MapRunArn": "arn:map",
            "ResultWriterDetails": {"Bucket": BUCKET,
                                    "Key": "batches/batch-2/results/x/manifest.json"}}}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["report_key"], "reports/batches/batch-2.json");
    assert_eq!(out["items_key"], "reports/batches/batch-2.items.jsonl");
    assert_eq!(out["documents"], 3);
    let report = json_at(&s, "reports/batches/batch-2.json").await;
    assert_eq!(report["documents"], 3);
    assert_eq!(report["map_items"], 3);
    assert_eq!(report["counts"]["summarized"], 1);
    assert_eq!(report["counts"]["already_done"], 1);
    assert_eq!(report["counts"]["failed"], 1);
    assert_eq!(report["failures"], json!({"UnsupportedDocument": 1}));
    assert_eq!(report["usage"]["model_calls"], 1, "only b.txt was paid for");
    let paid = report["usage"]["cost_usd"].as_f64().unwrap();
    let tokens = report["usage"]["input_tokens"].as_u64().unwrap()
        + report["usage"]["output_tokens"].as_u64().unwrap();
    assert!(paid > 0.0);
    assert_eq!(
        paid,
        (tokens * 150_000) as f64 / 1e12,
        "the report's total cost"
    );
    assert_eq!(
        report["source"],
        json!({"prefix": "incoming/"}),
        "the source only"
    );
    assert!(report["elapsed_ms"].as_u64().is_some());
    assert_eq!(report["error"], Value::Null);
    assert_eq!(
        report["results"]["result_writer"]["Key"],
        "batches/batch-2/results/x/manifest.json"
    );
    assert_eq!(report["results"]["items_prefix"], "batches/batch-2/items/");
    assert!(report.get("items").is_none(), "the lines are apart");
    let lines = jsonl_at(&s, "reports/batches/batch-2.items.jsonl").await;
    let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["incoming/a.txt", "incoming/b.txt", "incoming/photo.png"]
    );
    assert_eq!(lines[1]["status"], "summarized");
    assert_eq!(lines[1]["index"], 1);
}

#[tokio::test]
async fn the_report_counts_items_that_ended_without_a_line_and_the_maps_error() {
    let s = stack(vec![]).await;
    s.s3.put(BUCKET, "incoming/a.txt", TEXT).await;
    task(&s, item_of("batch-2", "incoming/a.txt", 0))
        .await
        .unwrap();
    // An item whose function died after its `started` line (and whose failure record
    // could not be written): only that line is left.
    let started = json!({"key": "incoming/c.txt", "status": "started", "usage":
                         {"input_tokens": 0, "output_tokens": 0, "model_calls": 0},
                         "elapsed_ms": 0, "index": 4});
    s.s3.put(
        BUCKET,
        "batches/batch-2/items/incoming/c.txt.json",
        started.to_string(),
    )
    .await;
    // The Map failed as a whole; its Catch put the error where the results would be.
    let error = json!({"Error": "States.ExceedToleratedFailureThreshold",
                       "Cause": "The specified tolerated failure threshold was exceeded"});
    task(
        &s,
        report_input(json!({"prefix": "incoming/", "map_error": error})),
    )
    .await
    .unwrap();
    let report = json_at(&s, "reports/batches/batch-2.json").await;
    assert_eq!(report["documents"], 2);
    assert_eq!(
        report["map_items"], 5,
        "indexes 1 to 3 wrote no line at all"
    );
    assert_eq!(report["counts"]["summarized"], 1);
    assert_eq!(report["counts"]["failed"], 1);
    assert_eq!(report["failures"], json!({"BatchItemFailed": 1}));
    assert_eq!(
        report["error"],
        json!({"type": "States.ExceedToleratedFailureThreshold",
               "message": "The specified tolerated failure threshold was exceeded"})
    );
    assert_eq!(report["results"]["result_writer"], Value::Null);
    let lines = jsonl_at(&s, "reports/batches/batch-2.items.jsonl").await;
    assert_eq!(lines[1]["status"], "failed");
    assert_eq!(lines[1]["error_type"], "BatchItemFailed");
}

#[tokio::test]
async fn batch_tasks_refuse_malformed_input() {
    let s = stack(vec![]).await;
    let missing_key = json!({"action": "batch_item", "bucket": BUCKET, "batch": BATCH});
    assert_eq!(task(&s, missing_key).await.unwrap_err(), "InvalidInput");
    let extra = json!({"action": "batch_report", "bucket": BUCKET, "batch": BATCH, "x": 1});
    assert_eq!(task(&s, extra).await.unwrap_err(), "InvalidInput");
}

#[tokio::test]
async fn the_sample_events_are_served() {
    let s = stack(vec![]).await;
    let bucket = "text-processing-documents-123456789012";
    let sample = |name: &str| {
        let mut event = testkit::events::sample(name);
        assert_eq!(event["bucket"], bucket, "{name}");
        event["bucket"] = json!(BUCKET);
        event
    };
    let item = sample("summarize-document-batch-item.json");
    let failure = sample("summarize-document-batch-failure.json");
    let report = sample("summarize-document-batch-report.json");
    assert_eq!(task(&s, item).await.unwrap()["status"], "missing");
    // The failed document is there (a deleted one would be `missing`).
    s.s3.put(BUCKET, failure["key"].as_str().unwrap(), TEXT)
        .await;
    let line = task(&s, failure).await.unwrap();
    assert_eq!(line["status"], "failed");
    assert_eq!(line["error_type"], "ModelThrottled");
    let out = task(&s, report).await.unwrap();
    assert_eq!(out["documents"], 1);
    assert_eq!(out["counts"]["failed"], 1);
}
