//! The upload path under repeated, concurrent and out-of-order deliveries and setup
//! errors, through the real SDK clients against the scripted Bedrock emulator and an
//! in-process S3 server.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bedrock_local::{ErrorKind, Outcome, Rule, Script};
use common::{BUCKET, Stack, WINDOW, deadline, stack, test_config};
use lambda_kit::{Invocation, TaskError, handle};
use serde_json::{Value, json};
use summarize_document::App;
use summarize_document::records::{self, Kind, Records};
use summarize_document::versions::Announced;
use testkit::{Emulator, LocalS3};

const TEXT: &str = "The northern warehouse shipped more parcels this quarter than ever before. \
    On-time delivery stayed close to target despite two storms.";

/// Puts `body` at `key` and returns its ETag.
async fn put(s: &Stack, key: &str, body: impl Into<Vec<u8>>) -> String {
    s.s3.put_for_etag(BUCKET, key, body).await
}

/// An `ObjectCreated` event for one version: `(URL-encoded key, etag, sequencer)`.
fn event(encoded_key: &str, etag: &str, sequencer: &str) -> Value {
    let mut event = testkit::events::s3_created(BUCKET, &[(encoded_key, etag)]);
    event["Records"][0]["s3"]["object"]["sequencer"] = json!(sequencer);
    event
}

async fn json_at(s: &Stack, key: &str) -> Option<Value> {
    s.s3.get_json(BUCKET, key).await
}

fn status(out: &Value) -> &str {
    out["records"][0]["status"].as_str().unwrap()
}

#[tokio::test]
async fn model_access_errors_are_retried_not_recorded_and_do_not_block_a_later_run() {
    let s = stack(vec![
        Rule::new(Outcome::error(ErrorKind::AccessDeniedException)).times(1),
        Rule::new(Outcome::text("Granted now.")),
    ])
    .await;
    let etag = put(&s, "incoming/a.txt", TEXT).await;
    let err = handle(&s.app, event("incoming/a.txt", &etag, "01"), deadline())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ModelAccessDenied");
    assert!(s.s3.keys(BUCKET, "failed/").await.is_empty(), "not final");
    // Lambda's retry (or a redrive from the dead-letter queue) after access was granted.
    let out = handle(&s.app, event("incoming/a.txt", &etag, "01"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "summarized", "{out}");
    assert_eq!(s.emulator.calls(), 2);
    assert!(
        s.s3.keys(BUCKET, "claims/").await.is_empty(),
        "claims released"
    );
}

#[tokio::test]
async fn an_old_non_final_failure_record_is_replaced_by_the_summary() {
    let s = stack(vec![Rule::new(Outcome::text("Summary."))]).await;
    let etag = put(&s, "incoming/b.txt", TEXT).await;
    // Written by an earlier release for a setup error.
    let old = json!({"source": {"bucket": BUCKET, "key": "incoming/b.txt", "etag": etag},
                     "error": {"type": "ModelAccessDenied", "message": "no access"}});
    s.s3.put(BUCKET, "failed/incoming/b.txt.json", old.to_string())
        .await;
    let out = handle(&s.app, event("incoming/b.txt", &etag, "01"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "summarized", "{out}");
    assert!(json_at(&s, "failed/incoming/b.txt.json").await.is_none());
    assert_eq!(s.emulator.calls(), 1);
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_call_the_model_once() {
    let s = stack(vec![
        Rule::new(Outcome::text("Once.")).delay(Duration::from_millis(300)),
    ])
    .await;
    let etag = put(&s, "incoming/dup.txt", TEXT).await;
    let deliveries =
        (0..4).map(|_| handle(&s.app, event("incoming/dup.txt", &etag, "01"), deadline()));
    let outs = futures::future::join_all(deliveries).await;
    let statuses: Vec<String> = outs
        .iter()
        .map(|o| status(o.as_ref().unwrap()).to_owned())
        .collect();
    assert_eq!(s.emulator.calls(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "summarized").count(), 1);
    assert!(
        statuses
            .iter()
            .all(|s| ["summarized", "in_progress", "already_done"].contains(&s.as_str())),
        "{statuses:?}"
    );
}

/// An invocation of Lambda request `id`.
fn as_request(id: &str) -> Invocation {
    Invocation {
        request_id: Some(id.to_owned()),
        ..Invocation::from(deadline())
    }
}

/// A claim on `incoming/c.txt` for `etag`, held by `holder`, expiring at `expires_at_ms`.
fn claim(etag: &str, holder: &str, expires_at_ms: u64) -> String {
    json!({"source": {"etag": etag, "version_id": null, "sequencer": "01"},
           "holder": holder, "expires_at_ms": expires_at_ms})
    .to_string()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn a_live_claim_stops_a_duplicate_but_not_a_retry_of_its_own_holder() {
    let s = stack(vec![Rule::new(Outcome::text("Taken over."))]).await;
    let etag = put(&s, "incoming/c.txt", TEXT).await;
    let live = now_ms() + 600_000;
    s.s3.put(
        BUCKET,
        "claims/incoming/c.txt.json",
        claim(&etag, "req-0", live),
    )
    .await;
    let out = handle(
        &s.app,
        event("incoming/c.txt", &etag, "01"),
        as_request("req-1"),
    )
    .await
    .unwrap();
    assert_eq!(status(&out), "in_progress");
    assert_eq!(s.emulator.calls(), 0);
    // req-0 died holding the claim (out of memory, say); Lambda retries it, same id.
    let out = handle(
        &s.app,
        event("incoming/c.txt", &etag, "01"),
        as_request("req-0"),
    )
    .await
    .unwrap();
    assert_eq!(status(&out), "summarized", "{out}");
    assert_eq!(s.emulator.calls(), 1);
    assert!(s.s3.keys(BUCKET, "claims/").await.is_empty());
}

#[tokio::test]
async fn an_expired_claim_is_taken_over() {
    let s = stack(vec![Rule::new(Outcome::text("Taken over."))]).await;
    let etag = put(&s, "incoming/c.txt", TEXT).await;
    s.s3.put(
        BUCKET,
        "claims/incoming/c.txt.json",
        claim(&etag, "req-0", now_ms() - 1),
    )
    .await;
    let out = handle(
        &s.app,
        event("incoming/c.txt", &etag, "01"),
        as_request("req-1"),
    )
    .await
    .unwrap();
    assert_eq!(status(&out), "summarized");
    assert_eq!(s.emulator.calls(), 1);
}

#[tokio::test]
async fn a_late_event_of_an_older_version_never_replaces_the_newer_summary() {
    let s = stack(vec![
        Rule::new(Outcome::text("Version A.")).prompt_contains("Version A"),
        Rule::new(Outcome::text("Version B.")),
    ])
    .await;
    let etag_a = put(&s, "incoming/v.txt", format!("Version A. {TEXT}")).await;
    let etag_b = put(&s, "incoming/v.txt", format!("Version B. {TEXT}")).await;
    // B's event arrives first, A's late.
    let out = handle(&s.app, event("incoming/v.txt", &etag_b, "0B"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "summarized");
    let out = handle(&s.app, event("incoming/v.txt", &etag_a, "0A"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "superseded", "{out}");
    let record = json_at(&s, "summaries/incoming/v.txt.json").await.unwrap();
    assert_eq!(record["summary"], "Version B.");
    assert_eq!(record["source"]["etag"], etag_b.as_str());
    assert_eq!(record["source"]["sequencer"], "0B");
    assert_eq!(s.emulator.calls(), 1, "the older version costs nothing");
}

#[tokio::test]
async fn an_older_run_finishing_last_does_not_overwrite_the_newer_record() {
    let s = stack(vec![]).await;
    let records = Records::new(
        &s.app.s3,
        BUCKET,
        "summaries/incoming/r.txt.json".into(),
        "failed/incoming/r.txt.json".into(),
    );
    let version = |etag: &str, sequencer: &str| Announced {
        etag: Some(etag.into()),
        version_id: None,
        sequencer: Some(sequencer.into()),
    };
    let record = |etag: &str, sequencer: &str| json!({"summary": etag, "source": {"etag": etag, "sequencer": sequencer}});
    // Sequencers of different lengths: S3 pads the shorter one with zeros on the right.
    let newer = version("b", "0101");
    let older = version("a", "01");
    assert!(
        records
            .write(Kind::Success, &newer, &record("b", "0101"))
            .await
            .unwrap()
    );
    assert!(
        !records
            .write(Kind::Success, &older, &record("a", "01"))
            .await
            .unwrap()
    );
    assert!(
        !records
            .write(Kind::Failure, &older, &record("a", "01"))
            .await
            .unwrap()
    );
    let kept = json_at(&s, "summaries/incoming/r.txt.json").await.unwrap();
    assert_eq!(kept["summary"], "b");
    assert!(json_at(&s, "failed/incoming/r.txt.json").await.is_none());
}

#[tokio::test]
async fn a_success_removes_the_failure_record_of_an_earlier_version_and_vice_versa() {
    let s = stack(vec![Rule::new(Outcome::text("Readable now."))]).await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let etag_a = put(&s, "incoming/f.txt", png.clone()).await;
    let out = handle(&s.app, event("incoming/f.txt", &etag_a, "01"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "failed", "{out}");
    assert!(json_at(&s, "failed/incoming/f.txt.json").await.is_some());
    let etag_b = put(&s, "incoming/f.txt", TEXT).await;
    let out = handle(&s.app, event("incoming/f.txt", &etag_b, "02"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "summarized", "{out}");
    assert!(json_at(&s, "failed/incoming/f.txt.json").await.is_none());
    // A newer version that cannot be read replaces the summary with its failure record.
    let etag_c = put(&s, "incoming/f.txt", png).await;
    let out = handle(&s.app, event("incoming/f.txt", &etag_c, "03"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "failed", "{out}");
    assert!(json_at(&s, "summaries/incoming/f.txt.json").await.is_none());
    let failure = json_at(&s, "failed/incoming/f.txt.json").await.unwrap();
    assert_eq!(failure["source"]["sequencer"], "03");
    assert_eq!(s.emulator.calls(), 1);
}

#[tokio::test]
async fn keys_with_spaces_plus_percent_and_non_ascii_are_decoded() {
    let s = stack(vec![Rule::new(Outcome::text("Decoded."))]).await;
    for (key, encoded) in [
        ("incoming/a+b 100%.txt", "incoming/a%2Bb+100%25.txt"),
        (
            "incoming/résumé 2026.md",
            "incoming/r%C3%A9sum%C3%A9+2026.md",
        ),
        (
            "incoming/日本 語.txt",
            "incoming/%E6%97%A5%E6%9C%AC+%E8%AA%9E.txt",
        ),
    ] {
        let etag = put(&s, key, TEXT).await;
        let out = handle(&s.app, event(encoded, &etag, "01"), deadline())
            .await
            .unwrap();
        assert_eq!(status(&out), "summarized", "{key}: {out}");
        let record = json_at(&s, &format!("summaries/{key}.json")).await.unwrap();
        assert_eq!(record["source"]["key"], key);
    }
}

#[tokio::test]
async fn an_event_for_an_overwritten_version_reads_nothing_and_costs_nothing() {
    let s = stack(vec![Rule::new(Outcome::text("Summary."))]).await;
    let etag_a = put(&s, "incoming/o.txt", format!("Version A. {TEXT}")).await;
    // Overwritten after A's event was sent; the bucket is not versioned (no version id).
    let etag_b = put(&s, "incoming/o.txt", format!("Version B. {TEXT}")).await;
    assert_ne!(etag_a, etag_b);
    let out = handle(&s.app, event("incoming/o.txt", &etag_a, "0A"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "superseded", "{out}");
    assert_eq!(s.emulator.calls(), 0, "B is not read as A");
    assert!(s.s3.keys(BUCKET, "summaries/").await.is_empty());
    assert!(s.s3.keys(BUCKET, "failed/").await.is_empty());
    assert!(s.s3.keys(BUCKET, "claims/").await.is_empty());
    // B's own event summarizes B.
    let out = handle(&s.app, event("incoming/o.txt", &etag_b, "0B"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "summarized", "{out}");
    let record = json_at(&s, "summaries/incoming/o.txt.json").await.unwrap();
    assert_eq!(record["source"]["etag"], etag_b.as_str());
    assert_eq!(s.emulator.calls(), 1);
}

#[tokio::test]
async fn an_event_for_a_deleted_object_is_superseded_at_no_cost() {
    let s = stack(vec![Rule::new(Outcome::text("Summary."))]).await;
    let etag = put(&s, "incoming/gone.txt", TEXT).await;
    s.app
        .s3
        .delete_object()
        .bucket(BUCKET)
        .key("incoming/gone.txt")
        .send()
        .await
        .unwrap();
    let out = handle(&s.app, event("incoming/gone.txt", &etag, "01"), deadline())
        .await
        .unwrap();
    assert_eq!(status(&out), "superseded", "{out}");
    assert_eq!(s.emulator.calls(), 0);
    assert!(s.s3.keys(BUCKET, "summaries/").await.is_empty());
    assert!(s.s3.keys(BUCKET, "failed/").await.is_empty());
}

/// A stack whose model calls carry a guardrail that blocks every one of them (the
/// emulator answers as Bedrock does: 200, the block message, `INTERVENED`).
async fn blocking_guardrail_stack() -> Stack {
    let emulator = Emulator::start_blocking_guardrail(
        Script::new(vec![Rule::new(Outcome::text("Summary."))]),
        WINDOW,
    )
    .await;
    let settings = emulator.guarded_settings(WINDOW);
    let s3 = LocalS3::start(&[BUCKET]).await;
    let app = App {
        requeue: None,
        llama: emulator.client(settings),
        s3: s3.client(),
        config: test_config(),
    };
    Stack { s3, emulator, app }
}

#[tokio::test]
async fn a_summary_the_guardrail_blocks_is_a_final_failure_record_not_redone() {
    let s = blocking_guardrail_stack().await;
    let etag = put(&s, "incoming/blocked.txt", TEXT).await;
    let out = handle(
        &s.app,
        event("incoming/blocked.txt", &etag, "01"),
        deadline(),
    )
    .await
    .expect("a blocked document is final, not a retry");
    assert_eq!(status(&out), "failed", "{out}");
    assert_eq!(out["records"][0]["error_type"], "ContentBlocked");
    let failure = json_at(&s, "failed/incoming/blocked.txt.json")
        .await
        .unwrap();
    assert_eq!(failure["error"]["type"], "ContentBlocked");
    assert_eq!(failure["source"]["etag"], etag.as_str());
    assert!(
        !failure.to_string().contains("Sorry"),
        "no block message in the record: {failure}"
    );
    assert!(s.s3.keys(BUCKET, "summaries/").await.is_empty());
    assert_eq!(s.emulator.calls(), 1, "not retried");
    // A repeat delivery of the same version is not redone.
    let out = handle(
        &s.app,
        event("incoming/blocked.txt", &etag, "01"),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(status(&out), "already_done", "{out}");
    assert_eq!(s.emulator.calls(), 1);
}

/// The extraction time limit is `text::Limits::DEFAULT_TIME_LIMIT` (60 s), not a setting,
/// so no upload here can run into it: this checks the decision the upload path makes on
/// such an error (`records::is_final` of its type), which makes it a failure record.
#[test]
fn a_timed_out_extraction_is_a_final_document_failure() {
    let error = TaskError::from(text::ExtractError::TimedOut {
        format: "pdf",
        limit: text::Limits::DEFAULT_TIME_LIMIT,
    });
    assert_eq!(error.error_type(), "UnsupportedDocument");
    assert!(records::is_final(error.error_type()));
}
