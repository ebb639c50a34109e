//! The document workflow's steps (Step Functions tasks with an `action`) and the failure
//! records of unfinished executions, through the real SDK clients against the scripted
//! Bedrock emulator and an in-process S3 server.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use bedrock_local::{Outcome, Rule};
use common::{BUCKET, Stack, WINDOW, deadline, small_parts};
use lambda_kit::handle;
use serde_json::{Value, json};
use summarize_document::App;
use summarize_document::workflow::MAX_PARTS;
use testkit::LocalS3;

async fn stack_with_window(rules: Vec<Rule>, window: u32) -> Stack {
    Stack::builder(rules)
        .window(window)
        .config(small_parts)
        .start()
        .await
}

async fn stack(rules: Vec<Rule>) -> Stack {
    stack_with_window(rules, WINDOW).await
}

async fn record(s: &Stack, key: &str) -> Value {
    s.s3.get_json(BUCKET, key)
        .await
        .unwrap_or_else(|| panic!("no {key}"))
}

const ENGLISH: &str = "The northern warehouse shipped more parcels this quarter than ever before. \
    On-time delivery stayed close to target despite two storms.";

const GERMAN: &str = "Das nördliche Lager hat in diesem Quartal mehr Pakete verschickt als je \
    zuvor. Die Lieferungen kamen trotz zweier Stürme fast immer pünktlich an.";

fn long_document(paragraphs: usize) -> String {
    (0..paragraphs)
        .map(|i| format!("Section {i}. {}", ENGLISH.repeat(4)))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn prepare(key: &str) -> Value {
    json!({"action": "prepare", "bucket": BUCKET, "key": key, "work_prefix": "work/exec-1/"})
}

/// Runs `step`; its error type on failure.
async fn step(s: &Stack, input: Value) -> Result<Value, String> {
    handle(&s.app, input, deadline())
        .await
        .map_err(|e| e.error_type().to_owned())
}

/// The Map state's `ItemSelector` for one Plan item (see the ASL).
fn map_item(item: &Value, plan: &Value, text_key: &str) -> Value {
    json!({
        "action": "summarize_part",
        "bucket": BUCKET,
        "text_key": text_key,
        "work_prefix": "work/exec-1/",
        "language": "en",
        "total": plan["count"],
        "index": item["index"],
        "start": item["start"],
        "end": item["end"],
    })
}

#[tokio::test]
async fn workflow_steps_keep_only_references_in_the_state() {
    let mut rules: Vec<Rule> = (1..=30)
        .rev()
        .map(|i| {
            Rule::new(Outcome::text(format!("P{i}")))
                .prompt_contains(format!("Summarize part {i} of"))
        })
        .collect();
    rules.push(Rule::new(Outcome::text("WHOLE")).prompt_contains("Part 1:\nP1\n\nPart 2:\nP2"));
    let s = stack(rules).await;
    let doc = long_document(24);
    s.s3.put(BUCKET, "workflow/long doc.txt", doc.clone()).await;
    let prepared = step(&s, prepare("workflow/long doc.txt")).await.unwrap();
    assert_eq!(prepared["language"], "en");
    assert_eq!(prepared["needs_translation"], false);
    assert_eq!(prepared["key"], "workflow/long doc.txt");
    assert_eq!(prepared["name"], "long doc.txt");
    assert_eq!(prepared["text_key"], "work/exec-1/source.txt");
    assert_eq!(
        s.s3.get(BUCKET, "work/exec-1/source.txt").await.unwrap(),
        doc.trim().as_bytes()
    );
    let plan = step(
        &s,
        json!({"action": "plan", "bucket": BUCKET, "text_key": "work/exec-1/source.txt", "language": "en"}),
    )
    .await
    .unwrap();
    let items = plan["parts"].as_array().unwrap().clone();
    assert!(items.len() >= 3, "{plan}");
    assert_eq!(plan["count"], items.len());
    // Items are byte ranges only: no texts, no keys.
    assert_eq!(
        items[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["end", "index", "start"]
    );
    let mut outputs = Vec::new();
    for item in &items {
        let out = step(&s, map_item(item, &plan, "work/exec-1/source.txt"))
            .await
            .unwrap();
        assert!(
            !out.to_string().contains("P1"),
            "a part's output holds no summary: {out}"
        );
        outputs.push(out);
    }
    assert_eq!(outputs[0]["summary_key"], "work/exec-1/parts/00001.json");
    assert_eq!(
        record(&s, "work/exec-1/parts/00001.json").await["summary"],
        "P1"
    );
    let combined = step(
        &s,
        json!({"action": "combine", "bucket": BUCKET, "work_prefix": "work/exec-1/",
               "count": items.len(), "language": "en"}),
    )
    .await
    .unwrap();
    assert_eq!(combined["summary"], "WHOLE");
    assert_eq!(combined["parts"], items.len());
    assert_eq!(combined["parts_usage"]["model_calls"], items.len());
    assert_eq!(combined["usage"]["model_calls"], 1);
    assert_eq!(s.emulator.calls(), items.len() as u64 + 1);
    // Every token at the default 0.00015 USD per 1,000 (150,000 pico-dollars).
    let pico = |usage: &Value| {
        let tokens =
            usage["prompt_tokens"].as_u64().unwrap() + usage["generation_tokens"].as_u64().unwrap();
        tokens * 150_000
    };
    let (parts_pico, combine_pico) = (pico(&combined["parts_usage"]), pico(&combined["usage"]));
    assert!(parts_pico > 0 && combine_pico > 0);
    assert_eq!(
        combined["parts_usage"]["cost_usd"],
        parts_pico as f64 / 1e12
    );
    assert_eq!(combined["usage"]["cost_usd"], combine_pico as f64 / 1e12);

    let written = step(
        &s,
        json!({"action": "write_result", "bucket": BUCKET, "key": "workflow/long doc.txt",
               "result": {"summary": "WHOLE",
                          "usage": {"combine": combined["usage"], "parts": combined["parts_usage"]}}}),
    )
    .await
    .unwrap();
    assert_eq!(written["result_key"], "results/workflow/long doc.txt.json");
    let result = record(&s, "results/workflow/long doc.txt.json").await;
    assert_eq!(
        result["usage"]["cost_usd"],
        (parts_pico + combine_pico) as f64 / 1e12,
        "the document's cost is its parts' and its combination's"
    );
    let failed = step(
        &s,
        json!({"action": "write_failure", "bucket": BUCKET, "key": "workflow/x.bin",
               "execution": "arn:aws:states:us-east-1:123456789012:execution:wf:run-1",
               "error": {"Error": "UnsupportedDocument",
                         "Cause": "{\"errorType\":\"UnsupportedDocument\",\"errorMessage\":\"not a document\"}"}}),
    )
    .await
    .unwrap();
    assert_eq!(failed["failure_key"], "failed/workflow/x.bin.json");
    let failure = record(&s, "failed/workflow/x.bin.json").await;
    assert_eq!(failure["error"]["type"], "UnsupportedDocument");
    assert_eq!(
        failure["execution"],
        "arn:aws:states:us-east-1:123456789012:execution:wf:run-1"
    );
    assert_eq!(
        step(&s, json!({"action": "explode"})).await.unwrap_err(),
        "InvalidInput"
    );
}

/// A `write_failure` step for `key`, of `version` (the EventBridge `detail.object`, or
/// `null` for a direct start), with a Catch's error of type `error`.
fn write_failure(key: &str, version: Value, error: &str) -> Value {
    json!({"action": "write_failure", "bucket": BUCKET, "key": key, "version": version,
           "execution": "arn:aws:states:us-east-1:123456789012:execution:wf:run-2",
           "error": {"Error": error, "Cause": "failed"}})
}

/// A failure replaces an older version's result, never its own version's: a repeated run of
/// a version that has its result (a duplicate event, or WriteResult's own error after its
/// write) may fail, transiently or even with a final error (the bytes are the same, so a
/// final error is a fluke), and the result stays the one record of the key. Only among
/// runs of unknown order (direct starts, no version) does the last one to finish decide.
#[tokio::test]
async fn the_last_workflow_run_to_finish_leaves_the_only_record() {
    let s = stack(vec![]).await;
    let key = "workflow/retry.txt";
    s.s3.put(
        BUCKET,
        "failed/workflow/retry.txt.json",
        r#"{"source": {"key": "workflow/retry.txt"}, "error": {"type": "ModelThrottled"}}"#,
    )
    .await;
    let v1 = json!({"key": key, "etag": "e1", "version-id": "v1", "sequencer": "0A"});
    let written = step(
        &s,
        json!({"action": "write_result", "bucket": BUCKET, "key": key, "version": v1,
               "result": {"summary": "Done at last.", "source": {"etag": "e1"}}}),
    )
    .await
    .unwrap();
    assert_eq!(written["result_key"], "results/workflow/retry.txt.json");
    assert_eq!(
        record(&s, "results/workflow/retry.txt.json").await["summary"],
        "Done at last."
    );
    assert_eq!(
        s.s3.get(BUCKET, "failed/workflow/retry.txt.json").await,
        None
    );
    // The same version failing again, transiently or for good: the result stays.
    for error in ["ModelThrottled", "UnsupportedDocument"] {
        let out = step(&s, write_failure(key, v1.clone(), error))
            .await
            .unwrap();
        assert_eq!(out["failure_key"], Value::Null, "{error}: {out}");
        assert_eq!(
            record(&s, "results/workflow/retry.txt.json").await["summary"],
            "Done at last.",
            "{error}"
        );
        assert_eq!(
            s.s3.get(BUCKET, "failed/workflow/retry.txt.json").await,
            None,
            "{error}"
        );
    }
    // A newer version that fails replaces the result: one record per key, of the newest.
    let v2 = json!({"key": key, "etag": "e2", "version-id": "v2", "sequencer": "0B"});
    let out = step(&s, write_failure(key, v2, "ModelThrottled"))
        .await
        .unwrap();
    assert_eq!(out["failure_key"], "failed/workflow/retry.txt.json");
    assert_eq!(
        s.s3.get(BUCKET, "results/workflow/retry.txt.json").await,
        None
    );
    let failure = record(&s, "failed/workflow/retry.txt.json").await;
    assert_eq!(failure["error"]["type"], "ModelThrottled");
    assert_eq!(failure["source"]["sequencer"], "0B");

    // Direct starts name no version: the run that finishes last decides.
    let key = "workflow/direct.txt";
    step(
        &s,
        json!({"action": "write_result", "bucket": BUCKET, "key": key,
               "result": {"summary": "Direct.", "source": {"etag": "e1"}}}),
    )
    .await
    .unwrap();
    step(&s, write_failure(key, Value::Null, "UnsupportedDocument"))
        .await
        .unwrap();
    assert_eq!(
        s.s3.get(BUCKET, "results/workflow/direct.txt.json").await,
        None
    );
    assert_eq!(
        record(&s, "failed/workflow/direct.txt.json").await["error"]["type"],
        "UnsupportedDocument"
    );
}

#[tokio::test]
async fn an_older_version_finishing_last_does_not_replace_the_newer_result() {
    let s = stack(vec![]).await;
    let write = |summary: &str, etag: &str, sequencer: &str| {
        json!({"action": "write_result", "bucket": BUCKET, "key": "workflow/v.txt",
               "version": {"key": "workflow/v.txt", "etag": etag, "sequencer": sequencer},
               "result": {"summary": summary, "source": {"etag": etag}}})
    };
    step(&s, write("B", "eb", "0B")).await.unwrap();
    step(&s, write("A", "ea", "0A")).await.unwrap();
    let result = record(&s, "results/workflow/v.txt.json").await;
    assert_eq!(result["summary"], "B");
    assert_eq!(result["source"]["sequencer"], "0B");
    // Nor does an older version's failure.
    step(
        &s,
        json!({"action": "write_failure", "bucket": BUCKET, "key": "workflow/v.txt",
               "version": {"etag": "ea", "sequencer": "0A"},
               "error": {"Error": "UnsupportedDocument", "Cause": "late"}}),
    )
    .await
    .unwrap();
    assert_eq!(s.s3.get(BUCKET, "failed/workflow/v.txt.json").await, None);
    assert_eq!(
        record(&s, "results/workflow/v.txt.json").await["summary"],
        "B"
    );
}

/// Prepare for an EventBridge-started execution `execution` of `object` (its
/// `detail.object`), working under `work/<execution>/`.
fn prepare_event(object: &Value, execution: &str) -> Value {
    json!({"action": "prepare", "bucket": BUCKET, "key": object["key"],
           "work_prefix": format!("work/{execution}/"), "version": object,
           "execution": execution})
}

#[tokio::test]
async fn prepare_ends_an_execution_of_a_version_that_is_done_or_being_done() {
    let s = stack(vec![]).await;
    let key = "workflow/dup.txt";
    s.s3.put(BUCKET, key, ENGLISH).await;
    // Versions by id (the test S3 reads the current object whatever the id): without one,
    // Prepare reads only while the object has the event's ETag (tested on its own below).
    let v1 = json!({"key": key, "etag": "e1", "version-id": "v1", "sequencer": "0A"});
    let outcome = |out: &Value| out["outcome"].as_str().unwrap_or_default().to_owned();

    // The first execution claims the key and prepares the text.
    let first = step(&s, prepare_event(&v1, "exec-1")).await.unwrap();
    assert_eq!(outcome(&first), "prepared", "{first}");
    assert_eq!(first["text_key"], "work/exec-1/source.txt");
    let claim = record(&s, "claims/workflow/dup.txt.json").await;
    assert_eq!(claim["holder"], "exec-1");
    // A duplicate running at the same time stops; a retry of the first one's Prepare
    // goes on under its own claim.
    let busy = step(&s, prepare_event(&v1, "exec-2")).await.unwrap();
    assert_eq!(outcome(&busy), "in_progress", "{busy}");
    assert_eq!(busy["text_key"], Value::Null);
    assert_eq!(s.s3.get(BUCKET, "work/exec-2/source.txt").await, None);
    let retry = step(&s, prepare_event(&v1, "exec-1")).await.unwrap();
    assert_eq!(outcome(&retry), "prepared", "{retry}");

    // The result is written and the claim released; a late duplicate finds the result.
    step(
        &s,
        json!({"action": "write_result", "bucket": BUCKET, "key": key, "version": v1,
               "execution": "exec-1", "result": {"summary": "S", "source": {"etag": "e1"}}}),
    )
    .await
    .unwrap();
    assert_eq!(s.s3.get(BUCKET, "claims/workflow/dup.txt.json").await, None);
    let late = step(&s, prepare_event(&v1, "exec-3")).await.unwrap();
    assert_eq!(outcome(&late), "already_done", "{late}");
    assert_eq!(late["record_key"], "results/workflow/dup.txt.json");
    assert_eq!(s.s3.get(BUCKET, "work/exec-3/source.txt").await, None);
    assert_eq!(s.s3.get(BUCKET, "claims/workflow/dup.txt.json").await, None);

    // An older version's event, late: superseded by the newer version's record.
    let v0 = json!({"key": key, "etag": "e0", "version-id": "v0", "sequencer": "09"});
    let old = step(&s, prepare_event(&v0, "exec-4")).await.unwrap();
    assert_eq!(outcome(&old), "superseded", "{old}");
    // A newer version runs; while it holds the claim, a version between the recorded one
    // and it (sequencers are padded with zeros on the right) is superseded.
    let v2 = json!({"key": key, "etag": "e2", "version-id": "v2", "sequencer": "0B"});
    let newer = step(&s, prepare_event(&v2, "exec-5")).await.unwrap();
    assert_eq!(outcome(&newer), "prepared", "{newer}");
    let between = json!({"key": key, "etag": "e15", "version-id": "v15", "sequencer": "0A8"});
    let between = step(&s, prepare_event(&between, "exec-6")).await.unwrap();
    assert_eq!(outcome(&between), "superseded", "{between}");
    assert_eq!(
        record(&s, "claims/workflow/dup.txt.json").await["holder"],
        "exec-5"
    );
    step(&s, write_failure(key, v2.clone(), "UnsupportedDocument"))
        .await
        .unwrap();
    // A final failure of this version is done too; a failure that is not final is not.
    let final_failure = step(&s, prepare_event(&v2, "exec-7")).await.unwrap();
    assert_eq!(outcome(&final_failure), "already_done", "{final_failure}");
    assert_eq!(final_failure["record_key"], "failed/workflow/dup.txt.json");
    let v3 = json!({"key": key, "etag": "e3", "version-id": "v3", "sequencer": "0C"});
    step(&s, write_failure(key, v3.clone(), "ModelThrottled"))
        .await
        .unwrap();
    let again = step(&s, prepare_event(&v3, "exec-8")).await.unwrap();
    assert_eq!(outcome(&again), "prepared", "{again}");

    // A direct start names no version: it always runs.
    let direct = step(&s, prepare(key)).await.unwrap();
    assert_eq!(outcome(&direct), "prepared", "{direct}");
    assert_eq!(s.emulator.calls(), 0);
}

/// The state machine as deployed reads Prepare's output through a `ResultSelector`, which
/// fails on a missing field: every outcome carries every selected field, the outcomes that
/// skip the work end the execution, and claims outlive the execution.
#[tokio::test]
async fn prepare_outputs_what_the_state_machine_selects() {
    let asl: Value = serde_json::from_str(include_str!(
        "../../../statemachines/document-workflow.asl.json"
    ))
    .unwrap();
    assert_eq!(
        asl["TimeoutSeconds"].as_u64(),
        Some(summarize_document::workflow::EXECUTION_TIMEOUT.as_secs())
    );
    let states = &asl["States"];
    let selector = states["Prepare"]["ResultSelector"].as_object().unwrap();
    let choice = &states[states["Prepare"]["Next"].as_str().unwrap()];
    let skip_outcomes: Vec<&str> = choice["Choices"][0]["Or"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["StringEquals"].as_str().unwrap())
        .collect();
    assert_eq!(skip_outcomes, ["already_done", "superseded", "in_progress"]);
    let end = &states[choice["Choices"][0]["Next"].as_str().unwrap()];
    assert_eq!(end["Type"], "Succeed");
    assert_eq!(choice["Default"], "UseFoundKey");
    let s = stack(vec![]).await;
    let key = "workflow/fields.txt";
    s.s3.put(BUCKET, key, ENGLISH).await;
    let v1 = json!({"key": key, "etag": "e1", "version-id": "v1", "sequencer": "0A"});
    let prepared = step(&s, prepare_event(&v1, "exec-1")).await.unwrap();
    let busy = step(&s, prepare_event(&v1, "exec-2")).await.unwrap();
    assert_eq!(busy["outcome"], "in_progress");
    for out in [prepared, busy] {
        for (field, path) in selector {
            let path = path.as_str().unwrap().trim_start_matches("$.Payload.");
            assert!(
                out.get(path).is_some(),
                "{field}: `{path}` missing from {out}"
            );
        }
    }
}

#[tokio::test]
async fn plan_refuses_more_parts_than_the_cap() {
    // The smallest window the bedrock crate takes makes parts of ~130 tokens.
    let s = stack_with_window(vec![Rule::new(Outcome::text("unused"))], 256).await;
    let doc = long_document(700);
    assert!(
        doc.len() < 512 * 1024,
        "within MAX_TEXT_BYTES: {}",
        doc.len()
    );
    s.s3.put(BUCKET, "work/exec-1/source.txt", doc).await;
    let err = handle(
        &s.app,
        json!({"action": "plan", "bucket": BUCKET, "text_key": "work/exec-1/source.txt", "language": "en"}),
        deadline(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "InputTooLarge");
    let message = err.to_string();
    assert!(
        message.contains(&format!("at most {MAX_PARTS} parts")),
        "{message}"
    );
    assert_eq!(s.emulator.calls(), 0);

    // A text of MAX_PARTS parts or fewer is planned.
    let s = stack_with_window(vec![Rule::new(Outcome::text("unused"))], 256).await;
    s.s3.put(BUCKET, "work/exec-1/source.txt", long_document(40))
        .await;
    let plan = step(
        &s,
        json!({"action": "plan", "bucket": BUCKET, "text_key": "work/exec-1/source.txt", "language": "en"}),
    )
    .await
    .unwrap();
    let count = plan["count"].as_u64().unwrap() as usize;
    assert!(count > 1 && count <= MAX_PARTS, "{count}");
}

#[tokio::test]
async fn prepare_finds_keys_given_as_they_are_or_url_encoded() {
    let s = stack(vec![]).await;
    let stored = [
        "workflow/a b.txt",
        "workflow/c+d.txt",
        "workflow/50% off.txt",
        "workflow/über uns.txt",
    ];
    for key in stored {
        s.s3.put(BUCKET, key, ENGLISH).await;
    }
    // EventBridge gives keys as they are: each is read as given.
    for key in stored {
        let out = step(&s, prepare(key)).await.unwrap();
        assert_eq!(out["key"], key);
    }
    // Form-encoded (as S3 notifications send them): not found as given, found decoded.
    for (given, found) in [
        ("workflow/a+b.txt", "workflow/a b.txt"),
        ("workflow/c%2Bd.txt", "workflow/c+d.txt"),
        ("workflow/50%25+off.txt", "workflow/50% off.txt"),
        ("workflow/%C3%BCber+uns.txt", "workflow/über uns.txt"),
    ] {
        let out = step(&s, prepare(given)).await.unwrap();
        assert_eq!(out["key"], found, "{given}");
        assert_eq!(out["name"], found.trim_start_matches("workflow/"));
    }
    for missing in [
        "workflow/x+y.txt",
        "workflow/nothing.txt",
        "workflow/100%.txt",
    ] {
        assert_eq!(
            step(&s, prepare(missing)).await.unwrap_err(),
            "DocumentNotFound",
            "{missing}"
        );
    }
    assert_eq!(s.emulator.calls(), 0);
}

#[tokio::test]
async fn an_encoded_key_is_claimed_and_recorded_as_found() {
    let s = stack(vec![]).await;
    let found = "workflow/q3 plan.txt";
    let etag = s.s3.put_for_etag(BUCKET, found, ENGLISH).await;
    let given = json!({"key": "workflow/q3+plan.txt", "etag": etag, "sequencer": "0A"});
    let first = step(&s, prepare_event(&given, "exec-1")).await.unwrap();
    assert_eq!(first["key"], found);
    // The claim and the records are the found key's, so the result releases the claim
    // and a duplicate, given either way, finds the result.
    assert_eq!(
        record(&s, "claims/workflow/q3 plan.txt.json").await["holder"],
        "exec-1"
    );
    step(
        &s,
        json!({"action": "write_result", "bucket": BUCKET, "key": found, "version": given,
               "execution": "exec-1", "result": {"summary": "S", "source": {"etag": etag}}}),
    )
    .await
    .unwrap();
    assert_eq!(
        s.s3.get(BUCKET, "claims/workflow/q3 plan.txt.json").await,
        None
    );
    for (key, execution) in [("workflow/q3+plan.txt", "exec-2"), (found, "exec-3")] {
        let again = json!({"key": key, "etag": etag, "sequencer": "0A"});
        let out = step(&s, prepare_event(&again, execution)).await.unwrap();
        assert_eq!(out["outcome"], "already_done", "{key}: {out}");
    }
    assert_eq!(s.s3.keys(BUCKET, "claims/").await, Vec::<String>::new());
    assert_eq!(s.emulator.calls(), 0);
}

#[tokio::test]
async fn an_event_for_an_overwritten_object_is_superseded_before_any_work() {
    let s = stack(vec![]).await;
    let key = "workflow/changed.txt";
    let old = s.s3.put_for_etag(BUCKET, key, ENGLISH).await;
    s.s3.put(BUCKET, key, "A newer text, with its own event.")
        .await;
    // No version id to read the announced version by: it is read only while the object
    // still has the event's ETag.
    let event = json!({"key": key, "etag": old, "sequencer": "0A"});
    let out = step(&s, prepare_event(&event, "exec-1")).await.unwrap();
    assert_eq!(out["outcome"], "superseded", "{out}");
    assert_eq!(s.s3.get(BUCKET, "work/exec-1/source.txt").await, None);
    assert_eq!(s.s3.keys(BUCKET, "claims/").await, Vec::<String>::new());
    // The current version's event does the work.
    let current = s.s3.etag(BUCKET, key).await;
    let event = json!({"key": key, "etag": current, "sequencer": "0B"});
    let out = step(&s, prepare_event(&event, "exec-2")).await.unwrap();
    assert_eq!(out["outcome"], "prepared", "{out}");
    assert_eq!(s.emulator.calls(), 0);
}

#[tokio::test]
async fn prepare_uses_the_shared_language_threshold_and_the_translation_cap() {
    let s = stack(vec![]).await;
    // A short English title that the detector calls Italian with little confidence: not
    // translated from a guess (the translate function would refuse it too).
    s.s3.put(BUCKET, "workflow/title.txt", "Data file v2 final")
        .await;
    let out = step(&s, prepare("workflow/title.txt")).await.unwrap();
    assert_eq!(out["language"], Value::Null);
    assert_eq!(out["needs_translation"], false);

    s.s3.put(BUCKET, "workflow/de.txt", GERMAN).await;
    let mut input = prepare("workflow/de.txt");
    input["translate_max_bytes"] = json!(GERMAN.len());
    let out = step(&s, input.clone()).await.unwrap();
    assert_eq!(out["needs_translation"], true);
    // One byte over what Translate takes: refused before any model call.
    input["translate_max_bytes"] = json!(GERMAN.len() - 1);
    assert_eq!(step(&s, input).await.unwrap_err(), "InputTooLarge");
    // In the working language the cap does not apply.
    let mut input = prepare("workflow/de.txt");
    input["working_language"] = json!("de");
    input["translate_max_bytes"] = json!(10);
    assert_eq!(step(&s, input).await.unwrap()["needs_translation"], false);
    assert_eq!(s.emulator.calls(), 0);
}

// ---------------------------------------------------------------- unfinished executions

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The sample status event, for `key` in the test bucket, started at `start_ms`.
fn status_event(status: &str, key: &str, start_ms: i64) -> Value {
    let mut event = testkit::events::sample("summarize-document-execution-status.json");
    let mut input: Value =
        serde_json::from_str(event["detail"]["input"].as_str().unwrap()).unwrap();
    input["detail"]["bucket"]["name"] = BUCKET.into();
    input["detail"]["object"]["key"] = key.into();
    event["detail"]["input"] = input.to_string().into();
    event["detail"]["status"] = status.into();
    event["detail"]["startDate"] = start_ms.into();
    if status == "FAILED" {
        event["detail"]["error"] = "StorageError".into();
        event["detail"]["cause"] =
            r#"{"errorType":"StorageError","errorMessage":"s3 is down"}"#.into();
    }
    event
}

#[tokio::test]
async fn unfinished_executions_get_a_failure_record() {
    let s = stack(vec![]).await;
    let hour = 3_600_000;
    // The sample event as it is: a timed-out execution of an EventBridge-started run.
    let mut sample = testkit::events::sample("summarize-document-execution-status.json");
    let input: Value = serde_json::from_str(sample["detail"]["input"].as_str().unwrap()).unwrap();
    let key = input["detail"]["object"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let bucket = input["detail"]["bucket"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = {
        let s3 = LocalS3::start(&[&bucket]).await;
        let app = App {
            s3: s3.client(),
            ..s.app.clone()
        };
        sample["detail"]["startDate"] = now_ms().into();
        let out = handle(&app, sample, deadline()).await.unwrap();
        let written: Value = serde_json::from_slice(
            &s3.get(&bucket, &format!("failed/{key}.json"))
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(written["error"]["type"], "States.Timeout");
        assert_eq!(written["source"]["key"], key.as_str());
        assert_eq!(written["execution_status"], "TIMED_OUT");
        out
    };
    assert_eq!(out["status"], "recorded", "{out}");

    // Aborted, nothing recorded yet.
    let out = handle(
        &s.app,
        status_event("ABORTED", "workflow/a b.pdf", now_ms()),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(out["failure_key"], "failed/workflow/a b.pdf.json", "{out}");
    assert_eq!(
        record(&s, "failed/workflow/a b.pdf.json").await["error"]["type"],
        "ExecutionAborted"
    );

    // Failed, with an older failure record of an earlier run: replaced, the error from
    // the event's Cause.
    let out = handle(
        &s.app,
        status_event("FAILED", "workflow/a b.pdf", now_ms() + hour),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], "recorded", "{out}");
    let failure = record(&s, "failed/workflow/a b.pdf.json").await;
    assert_eq!(failure["error"]["type"], "StorageError");
    assert_eq!(failure["error"]["message"], "s3 is down");

    // The workflow wrote its own record after the execution started: left as it is.
    s.s3.put(BUCKET, "failed/workflow/own.txt.json", r#"{"own": true}"#)
        .await;
    let out = handle(
        &s.app,
        status_event("FAILED", "workflow/own.txt", now_ms() - hour),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], "already_recorded", "{out}");
    assert_eq!(
        record(&s, "failed/workflow/own.txt.json").await["own"],
        true
    );

    // A newer run already wrote a result: no failure record over it.
    s.s3.put(BUCKET, "results/workflow/done.txt.json", "{}")
        .await;
    let out = handle(
        &s.app,
        status_event("TIMED_OUT", "workflow/done.txt", now_ms() - hour),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], "already_recorded", "{out}");
    assert_eq!(
        s.s3.get(BUCKET, "failed/workflow/done.txt.json").await,
        None
    );

    // The key as the workflow read it: URL-decoded when only that object exists.
    s.s3.put(BUCKET, "workflow/x y.txt", ENGLISH).await;
    let out = handle(
        &s.app,
        status_event("ABORTED", "workflow/x+y.txt", now_ms()),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(out["failure_key"], "failed/workflow/x y.txt.json", "{out}");

    // Other statuses and inputs that name no document: nothing to do, no error.
    let out = handle(
        &s.app,
        status_event("SUCCEEDED", "workflow/ok.txt", now_ms()),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], "ignored");
    let mut no_source = status_event("FAILED", "workflow/ok.txt", now_ms());
    no_source["detail"]["input"] = r#"{"something": "else"}"#.into();
    let out = handle(&s.app, no_source, deadline()).await.unwrap();
    assert_eq!(out["status"], "no_source");
    assert_eq!(s.emulator.calls(), 0);
}

/// [`status_event`] for an EventBridge-started execution of version (`etag`, version id
/// `v-<etag>`, `sequencer`) of `key`.
fn versioned_status_event(
    status: &str,
    key: &str,
    start_ms: i64,
    etag: &str,
    sequencer: &str,
) -> Value {
    let mut event = status_event(status, key, start_ms);
    let mut input: Value =
        serde_json::from_str(event["detail"]["input"].as_str().unwrap()).unwrap();
    input["detail"]["object"] = json!({"key": key, "size": 10, "etag": etag,
                                       "version-id": format!("v-{etag}"), "sequencer": sequencer});
    event["detail"]["input"] = input.to_string().into();
    event
}

#[tokio::test]
async fn an_unfinished_execution_records_its_version_like_the_workflow_does() {
    let s = stack(vec![]).await;
    let hour = 3_600_000;
    let result = |etag: &str, sequencer: &str| {
        json!({"summary": etag, "source": {"etag": etag, "version_id": format!("v-{etag}"),
                                           "sequencer": sequencer}})
        .to_string()
    };
    let execution = status_event("TIMED_OUT", "x", 0)["detail"]["executionArn"].clone();

    // An older version's result, from before the execution started: replaced by the
    // failure record (never both), which names its version; the execution's claim goes.
    s.s3.put(BUCKET, "results/workflow/old.txt.json", result("e1", "05"))
        .await;
    s.s3.put(
        BUCKET,
        "claims/workflow/old.txt.json",
        json!({"source": {"etag": "e2"}, "holder": execution}).to_string(),
    )
    .await;
    let event =
        versioned_status_event("TIMED_OUT", "workflow/old.txt", now_ms() + hour, "e2", "0B");
    let out = handle(&s.app, event, deadline()).await.unwrap();
    assert_eq!(out["status"], "recorded", "{out}");
    assert_eq!(
        s.s3.get(BUCKET, "results/workflow/old.txt.json").await,
        None
    );
    let failure = record(&s, "failed/workflow/old.txt.json").await;
    assert_eq!(failure["error"]["type"], "States.Timeout");
    assert_eq!(
        failure["source"],
        json!({"bucket": BUCKET, "key": "workflow/old.txt", "etag": "e2",
               "version_id": "v-e2", "sequencer": "0B"})
    );
    assert_eq!(s.s3.get(BUCKET, "claims/workflow/old.txt.json").await, None);

    // An older version's result written since the execution started is replaced too.
    s.s3.put(BUCKET, "results/workflow/late.txt.json", result("e1", "05"))
        .await;
    let event = versioned_status_event("ABORTED", "workflow/late.txt", now_ms() - hour, "e2", "0B");
    let out = handle(&s.app, event, deadline()).await.unwrap();
    assert_eq!(out["status"], "recorded", "{out}");
    assert_eq!(
        s.s3.get(BUCKET, "results/workflow/late.txt.json").await,
        None
    );

    // A newer version's result, and this very version's result (a duplicate execution
    // finished it), stay the only record, even from before the execution started. A
    // claim of another holder stays.
    s.s3.put(
        BUCKET,
        "claims/workflow/newer.txt.json",
        json!({"source": {"etag": "e3"}, "holder": "another"}).to_string(),
    )
    .await;
    for (name, theirs) in [("newer", result("e3", "0C")), ("same", result("e2", "0B"))] {
        let key = format!("workflow/{name}.txt");
        let result_key = format!("results/{key}.json");
        s.s3.put(BUCKET, &result_key, theirs.clone()).await;
        let event = versioned_status_event("FAILED", &key, now_ms() + hour, "e2", "0B");
        let out = handle(&s.app, event, deadline()).await.unwrap();
        assert_eq!(out["status"], "already_recorded", "{name}: {out}");
        assert_eq!(
            s.s3.get(BUCKET, &result_key).await,
            Some(theirs.into_bytes()),
            "{name}"
        );
        assert_eq!(
            s.s3.get(BUCKET, &format!("failed/{key}.json")).await,
            None,
            "{name}"
        );
    }
    assert!(
        s.s3.get(BUCKET, "claims/workflow/newer.txt.json")
            .await
            .is_some()
    );
    assert_eq!(s.emulator.calls(), 0);
}
