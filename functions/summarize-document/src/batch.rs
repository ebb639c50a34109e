//! The batch workflow's tasks (`statemachines/document-batch.asl.json`): a Distributed Map
//! over an S3 prefix or a manifest runs [`Step::BatchItem`] per document, which is the
//! upload path's per-document logic ([`uploads::process`]: version check, claim, summary
//! or failure record), so a document already done is not paid for twice. Each item also
//! writes its line to `batches/<batch>/items/<key>.json` (first a `started` line, before
//! any model call, then the final one); [`Step::BatchReport`] gathers those lines into a
//! summary, `reports/batches/<batch>.json`, and the per-document lines,
//! `reports/batches/<batch>.items.jsonl`.
//!
//! An item whose error is not final fails its task, so the Map's `Retry` tries it again;
//! when the retries are spent its `Catch` runs [`Step::BatchFailure`], which writes the
//! failure record. A failure record of a type that is not final does not settle the
//! document: the next batch tries it again. An item that ended without its final line
//! (not even its failure record could be written, or its function died) still has its
//! `started` line, which the report counts as failed (`BatchItemFailed`).

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use bedrock::Deadline;
use futures::{StreamExt, TryStreamExt, stream};
use lambda_kit::TaskError;
use lambda_kit::storage::{Precondition, get_json_if_exists, put_json, put_json_if};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::App;
use crate::records::{Kind, Settled};
use crate::uploads::{self, Status};
use crate::versions::Announced;
use crate::workflow::failure_error;

/// Where a batch keeps its item lines and the Map's `ResultWriter` output.
pub fn batch_prefix(batch: &str) -> String {
    format!("batches/{batch}/")
}

/// Where a batch's report (the summary) goes.
pub fn report_key(batch: &str) -> String {
    format!("reports/batches/{batch}.json")
}

/// Where a batch's per-document lines go (JSON Lines, by key).
pub fn items_key(batch: &str) -> String {
    format!("reports/batches/{batch}.items.jsonl")
}

/// Where one document's line of a batch goes.
pub fn item_key(batch: &str, key: &str) -> String {
    format!("{}items/{key}.json", batch_prefix(batch))
}

/// Item lines read at once by the report.
const REPORT_READS: usize = 32;
/// The error type the report gives an item that ended without its final line (the ASL's
/// `*ItemFailed` states fail with it).
const ITEM_FAILED: &str = "BatchItemFailed";
/// The largest record or item line read back.
const MAX_LINE_BYTES: u64 = 4 * 1024 * 1024;

/// Whether a task input's `action` is one of the batch workflow's.
pub fn is_batch_action(action: &str) -> bool {
    matches!(action, "batch_item" | "batch_failure" | "batch_report")
}

/// One task of the batch workflow.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// One document: summarize it unless it is done (the upload path's logic).
    BatchItem {
        /// The documents bucket.
        bucket: String,
        /// The document's key.
        key: String,
        /// The batch (the execution's name).
        batch: String,
        /// The item's index in the Map (names the claim's holder, so a retry of the
        /// same item takes its own stale claim over).
        #[serde(default)]
        index: u64,
    },
    /// The failure record of an item whose retries are spent.
    BatchFailure {
        /// The documents bucket.
        bucket: String,
        /// The document's key.
        key: String,
        /// The batch.
        batch: String,
        /// The item's index in the Map.
        #[serde(default)]
        index: Option<u64>,
        /// `{"Error", "Cause"}` from the Catch.
        error: Value,
    },
    /// Gathers the item lines into the batch report.
    BatchReport {
        /// The documents bucket.
        bucket: String,
        /// The batch.
        batch: String,
        /// The execution's ARN.
        #[serde(default)]
        execution: Option<String>,
        /// When the execution started (`$$.Execution.StartTime`, ISO 8601).
        #[serde(default)]
        started_at: Option<String>,
        /// The execution's input: `{"prefix"}` or `{"manifest"}` (other fields, such as
        /// who requested the batch, are left out of the report).
        #[serde(default)]
        source: Value,
        /// The state after the Map: `results` (the `ResultWriter` output: `MapRunArn`,
        /// `ResultWriterDetails`) when it ended, `map_error` (`{Error, Cause}`) when its
        /// `Catch` caught a failure of the Map itself.
        #[serde(default)]
        outcome: Value,
    },
}

/// How a document of a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Summarized by this batch.
    Summarized,
    /// Its summary or final failure record was there already; nothing was paid.
    AlreadyDone,
    /// Failed; its failure record is at `output_key`.
    Failed,
    /// Another delivery of the same version was processing it (it writes the record).
    InProgress,
    /// A newer version is recorded or being processed, or it changed while read.
    Superseded,
    /// Not a document the upload path takes (outside the input prefix, own output), or a
    /// folder marker (a key ending in `/`).
    Ignored,
    /// No such object (a manifest naming a missing key, or deleted before its failure
    /// record was written).
    Missing,
    /// Being processed: the line an item writes before its work. Left at the end, the item
    /// failed without a line of its own; the report counts it as failed.
    Started,
}

/// Tokens, calls and cost spent on one document, or on a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Model calls that answered.
    pub model_calls: u64,
    /// What the calls cost (the records' `usage.cost_usd`), summed exactly.
    #[serde(default, rename = "cost_usd")]
    pub cost: bedrock::Cost,
}

impl std::ops::AddAssign for Spent {
    fn add_assign(&mut self, other: Self) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.model_calls += other.model_calls;
        self.cost += other.cost;
    }
}

/// One document's line of a batch (its task's output and `batches/<batch>/items/<key>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemLine {
    /// The document's key.
    pub key: String,
    /// How it ended.
    pub status: ItemStatus,
    /// Its summary or failure record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    /// The error type, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// What this batch spent on it (nothing for documents already done).
    #[serde(default)]
    pub usage: Spent,
    /// Time spent on the item, in milliseconds.
    pub elapsed_ms: u64,
    /// The item's index in the Map (its position in the listing or manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// Counts of a batch's documents by how they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub summarized: usize,
    pub already_done: usize,
    pub failed: usize,
    pub in_progress: usize,
    pub superseded: usize,
    pub ignored: usize,
    pub missing: usize,
}

impl Counts {
    fn add(&mut self, status: ItemStatus) {
        let slot = match status {
            ItemStatus::Summarized => &mut self.summarized,
            ItemStatus::AlreadyDone => &mut self.already_done,
            ItemStatus::Failed => &mut self.failed,
            ItemStatus::InProgress => &mut self.in_progress,
            ItemStatus::Superseded => &mut self.superseded,
            ItemStatus::Ignored => &mut self.ignored,
            ItemStatus::Missing => &mut self.missing,
            // The report turns a `started` line into a failure first.
            ItemStatus::Started => &mut self.failed,
        };
        *slot += 1;
    }
}

/// The batch report's summary, `reports/batches/<batch>.json` (small whatever the batch's
/// size: the per-document lines are in `reports/batches/<batch>.items.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub batch: String,
    pub execution: Option<String>,
    /// `{"prefix"}` or `{"manifest"}`.
    pub source: Value,
    pub started_at: Option<String>,
    pub finished_at: String,
    /// From the execution's start to the report.
    pub elapsed_ms: Option<u64>,
    /// Documents in the batch: one per item line (a key named twice in a manifest has one).
    pub documents: usize,
    /// The Map's items as far as the lines tell: the highest item index seen plus one (a
    /// lower bound: an item that failed before it wrote any line is not seen unless a
    /// later item is). More than `documents` means items without a line of their own.
    pub map_items: u64,
    pub counts: Counts,
    /// Failures by error type.
    pub failures: BTreeMap<String, usize>,
    /// What the batch spent on model calls.
    pub usage: Spent,
    /// Where the per-document lines, the item lines and the Map's `ResultWriter` output are.
    pub results: Value,
    /// The Map's own failure (`{"type", "message"}`), when it failed as a whole (an
    /// unreadable manifest, too many failed items): the counts then cover the items that
    /// ran before it stopped.
    pub error: Option<Value>,
}

/// Runs one batch task.
pub async fn run(app: &App, step: Step, deadline: Deadline) -> Result<Value, TaskError> {
    match step {
        Step::BatchItem {
            bucket,
            key,
            batch,
            index,
        } => {
            let line = item(app, &bucket, &key, &batch, index, deadline).await?;
            put_json(&app.s3, &bucket, &item_key(&batch, &key), &line).await?;
            lambda_kit::to_json(&line)
        }
        Step::BatchFailure {
            bucket,
            key,
            batch,
            index,
            error,
        } => {
            let line = record_failure(app, &bucket, &key, &batch, index, &error).await?;
            put_json(&app.s3, &bucket, &item_key(&batch, &key), &line).await?;
            lambda_kit::to_json(&line)
        }
        Step::BatchReport {
            bucket,
            batch,
            execution,
            started_at,
            source,
            outcome,
        } => {
            let (report, items) = report(
                app, &bucket, &batch, execution, started_at, &source, &outcome,
            )
            .await?;
            put_jsonl(&app.s3, &bucket, &items_key(&batch), items).await?;
            put_json(&app.s3, &bucket, &report_key(&batch), &report).await?;
            Ok(json!({
                "report_key": report_key(&batch),
                "items_key": items_key(&batch),
                "documents": report.documents,
                "counts": report.counts,
                "failures": report.failures,
            }))
        }
    }
}

/// One document, as the upload path does it. Errors that are not final are returned, for
/// the Map's `Retry` and then its `Catch`.
async fn item(
    app: &App,
    bucket: &str,
    key: &str,
    batch: &str,
    index: u64,
    deadline: Deadline,
) -> Result<ItemLine, TaskError> {
    let started = Instant::now();
    let line = |status, output_key, usage| ItemLine {
        key: key.to_owned(),
        status,
        output_key,
        error_type: None,
        usage,
        elapsed_ms: crate::document::ms(started),
        index: Some(index),
    };
    // A key ending in `/` is a console "folder" marker, not a document.
    if app.config.is_own_output(key)
        || !key.starts_with(&app.config.input_prefix)
        || key.ends_with('/')
    {
        tracing::info!(key = %key, "batch item ignored");
        return Ok(line(ItemStatus::Ignored, None, Spent::default()));
    }
    let Some(version) = current_version(&app.s3, bucket, key).await? else {
        tracing::info!(key = %key, "batch item not found");
        return Ok(line(ItemStatus::Missing, None, Spent::default()));
    };
    let line_key = item_key(batch, key);
    // The `started` line goes first, so an item that ends without its final line is still
    // seen; one already there is an earlier run of this item (a retry) or of its key.
    let earlier = match put_json_if(
        &app.s3,
        bucket,
        &line_key,
        &line(ItemStatus::Started, None, Spent::default()),
        Precondition::Absent,
    )
    .await?
    {
        Some(_) => None,
        None => get_json_if_exists(&app.s3, bucket, &line_key, MAX_LINE_BYTES)
            .await?
            .and_then(|l| serde_json::from_value::<ItemLine>(l.value).ok()),
    };
    let holder = format!("{batch}#{index}");
    let outcome = uploads::process(app, bucket, key, &version, deadline, Some(&holder)).await?;
    let status = match outcome.status {
        Status::Summarized => ItemStatus::Summarized,
        Status::AlreadyDone => ItemStatus::AlreadyDone,
        Status::Failed => ItemStatus::Failed,
        Status::InProgress => ItemStatus::InProgress,
        Status::Superseded => ItemStatus::Superseded,
        Status::Ignored => ItemStatus::Ignored,
        // `process` returns its errors, never a retry.
        Status::Retry => {
            return Err(TaskError::Internal(format!(
                "{key}: the upload path asked for a retry instead of returning its error"
            )));
        }
    };
    if let Some(earlier) = earlier
        && status == ItemStatus::AlreadyDone
        && let Some(ours) = ours_already(app, bucket, &line_key, earlier, &outcome).await?
    {
        tracing::info!(key = %key, "summarized earlier by this batch");
        return Ok(ItemLine {
            elapsed_ms: crate::document::ms(started),
            index: Some(index),
            ..ours
        });
    }
    let usage = match (&outcome.output_key, status) {
        (Some(at), ItemStatus::Summarized) => spent(app, bucket, at).await?,
        _ => Spent::default(),
    };
    Ok(ItemLine {
        error_type: outcome.error_type.map(str::to_owned),
        ..line(status, outcome.output_key, usage)
    })
}

/// When this batch itself summarized the document in an earlier run of the item (or of
/// the same key named twice), the `summarized` line with what it spent; `None` otherwise.
/// An earlier `started` line counts when the summary record is no older than it: the
/// earlier run summarized, then failed before its final line was written.
async fn ours_already(
    app: &App,
    bucket: &str,
    line_key: &str,
    earlier: ItemLine,
    outcome: &uploads::RecordOutcome,
) -> Result<Option<ItemLine>, TaskError> {
    let Some(record_key) = outcome.output_key.as_deref() else {
        return Ok(None);
    };
    let summary_key = format!("{}{}.json", app.config.summary_prefix, earlier.key);
    if record_key != summary_key {
        return Ok(None);
    }
    match earlier.status {
        ItemStatus::Summarized => Ok(Some(earlier)),
        ItemStatus::Started => {
            let out_bucket = app.config.output_bucket.as_deref().unwrap_or(bucket);
            let line_time = last_modified(&app.s3, bucket, line_key).await?;
            let record_time = last_modified(&app.s3, out_bucket, record_key).await?;
            if !matches!((line_time, record_time), (Some(l), Some(r)) if r >= l) {
                return Ok(None);
            }
            Ok(Some(ItemLine {
                status: ItemStatus::Summarized,
                output_key: Some(record_key.to_owned()),
                usage: spent(app, bucket, record_key).await?,
                ..earlier
            }))
        }
        _ => Ok(None),
    }
}

/// When `bucket/key` was last written (S3's time, to the second); `None` when it is gone.
async fn last_modified(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<DateTime>, TaskError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => Ok(head.last_modified().copied()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
        Err(e) => Err(TaskError::Storage(format!(
            "cannot read s3://{bucket}/{key}: {}",
            DisplayErrorContext(&e)
        ))),
    }
}

/// The current version of `bucket/key` (ETag and version id); `None` when there is none.
async fn current_version(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Announced>, TaskError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => Ok(Some(Announced {
            etag: head.e_tag().map(|t| t.trim_matches('"').to_owned()),
            version_id: head.version_id().map(str::to_owned),
            sequencer: None,
        })),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
        Err(e) => Err(TaskError::Storage(format!(
            "cannot read s3://{bucket}/{key}: {}",
            DisplayErrorContext(&e)
        ))),
    }
}

/// The usage a summary record states.
async fn spent(app: &App, bucket: &str, record_key: &str) -> Result<Spent, TaskError> {
    let out_bucket = app.config.output_bucket.as_deref().unwrap_or(bucket);
    let record = get_json_if_exists(&app.s3, out_bucket, record_key, MAX_LINE_BYTES).await?;
    let usage = record.map(|r| r.value["usage"].clone()).unwrap_or_default();
    let number = |name: &str| usage[name].as_u64().unwrap_or(0);
    Ok(Spent {
        input_tokens: number("prompt_tokens"),
        output_tokens: number("generation_tokens"),
        model_calls: number("model_calls"),
        cost: bedrock::Cost::from_usd(usage["cost_usd"].as_f64().unwrap_or(0.0)),
    })
}

/// Writes the failure record of an item whose retries are spent (like the document
/// workflow's `RecordFailure`), of the version there is now; a document deleted meanwhile
/// is `missing` and gets no record.
async fn record_failure(
    app: &App,
    bucket: &str,
    key: &str,
    batch: &str,
    index: Option<u64>,
    error: &Value,
) -> Result<ItemLine, TaskError> {
    let error = failure_error(error);
    let error_type = error["type"].as_str().unwrap_or("Unknown").to_owned();
    let line = |status, output_key| ItemLine {
        key: key.to_owned(),
        status,
        output_key,
        error_type: Some(error_type.clone()),
        usage: Spent::default(),
        elapsed_ms: 0,
        index,
    };
    let Some(version) = current_version(&app.s3, bucket, key).await? else {
        tracing::info!(key = %key, error_type = %error_type, "failed batch item is gone");
        return Ok(line(ItemStatus::Missing, None));
    };
    let records = uploads::records_of(app, bucket, key);
    let record = json!({
        "source": {"bucket": bucket, "key": key, "etag": version.etag,
                   "version_id": version.version_id, "sequencer": version.sequencer},
        "error": error,
        "batch": batch,
    });
    let written = records.write(Kind::Failure, &version, &record).await?;
    tracing::warn!(key = %key, error_type = %error_type, "batch item failed");
    // Not written: a newer version is recorded, or this version's summary (a failure gives
    // way to its own version's result), which makes the item done.
    Ok(if written {
        line(ItemStatus::Failed, Some(records.failure_key.clone()))
    } else {
        match records.settled(&version).await? {
            Some(Settled::Done(key)) => line(ItemStatus::AlreadyDone, Some(key)),
            _ => line(ItemStatus::Superseded, None),
        }
    })
}

/// Reads every item line of `batch` (in key order) and sums them up: the summary, and the
/// lines as JSON Lines.
async fn report(
    app: &App,
    bucket: &str,
    batch: &str,
    execution: Option<String>,
    started_at: Option<String>,
    source: &Value,
    outcome: &Value,
) -> Result<(Report, Vec<u8>), TaskError> {
    let prefix = format!("{}items/", batch_prefix(batch));
    let keys = list_keys(&app.s3, bucket, &prefix).await?;
    let mut lines = stream::iter(keys)
        .map(|key| async move {
            let line = get_json_if_exists(&app.s3, bucket, &key, MAX_LINE_BYTES).await?;
            Ok::<_, TaskError>(line.and_then(|l| serde_json::from_value::<ItemLine>(l.value).ok()))
        })
        .buffered(REPORT_READS);
    let mut counts = Counts::default();
    let mut failures = BTreeMap::new();
    let mut usage = Spent::default();
    let mut documents = 0;
    let mut map_items = 0;
    let mut items = Vec::new();
    while let Some(line) = lines.try_next().await? {
        let Some(mut line) = line else { continue };
        if line.status == ItemStatus::Started {
            line.status = ItemStatus::Failed;
            line.error_type = Some(ITEM_FAILED.into());
        }
        documents += 1;
        map_items = map_items.max(line.index.map_or(0, |i| i.saturating_add(1)));
        counts.add(line.status);
        usage += line.usage;
        if line.status == ItemStatus::Failed {
            let error_type = line.error_type.clone().unwrap_or_else(|| "Unknown".into());
            *failures.entry(error_type).or_insert(0) += 1;
        }
        serde_json::to_writer(&mut items, &line)
            .map_err(|e| TaskError::Internal(format!("cannot serialize an item line: {e}")))?;
        items.push(b'\n');
    }
    let now = DateTime::from(SystemTime::now());
    let elapsed_ms = started_at
        .as_deref()
        .and_then(parse_time)
        .and_then(|start| u64::try_from(now.to_millis().ok()? - start.to_millis().ok()?).ok());
    let results = &outcome["results"];
    let error = outcome.get("map_error").map(|e| {
        json!({
            "type": e.get("Error").cloned().unwrap_or(Value::Null),
            "message": e.get("Cause").cloned().unwrap_or(Value::Null),
        })
    });
    let source: serde_json::Map<String, Value> = ["prefix", "manifest"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), source.get(name)?.clone())))
        .collect();
    let report = Report {
        batch: batch.to_owned(),
        execution,
        source: Value::Object(source),
        started_at,
        finished_at: now
            .fmt(DateTimeFormat::DateTime)
            .map_err(|e| TaskError::Internal(format!("cannot format the time: {e}")))?,
        elapsed_ms,
        documents,
        map_items,
        counts,
        failures,
        usage,
        results: json!({
            "bucket": bucket,
            "items_key": items_key(batch),
            "items_prefix": prefix,
            "result_writer": results.get("ResultWriterDetails").cloned().unwrap_or(Value::Null),
            "map_run": results.get("MapRunArn").cloned().unwrap_or(Value::Null),
        }),
        error,
    };
    Ok((report, items))
}

/// Writes JSON Lines to `bucket/key`.
async fn put_jsonl(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(), TaskError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/x-ndjson")
        .body(body.into())
        .send()
        .await
        .map_err(|e| {
            TaskError::Storage(format!(
                "cannot write s3://{bucket}/{key}: {}",
                DisplayErrorContext(&e)
            ))
        })?;
    Ok(())
}

/// An RFC 3339 time in UTC, with `Z` (AWS's `$$.Execution.StartTime`) or `+00:00`.
pub fn parse_time(time: &str) -> Option<DateTime> {
    let utc = match time.strip_suffix("+00:00") {
        Some(rest) => format!("{rest}Z"),
        None => time.to_owned(),
    };
    DateTime::from_str(&utc, DateTimeFormat::DateTime).ok()
}

/// Every key under `prefix`.
async fn list_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, TaskError> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            TaskError::Storage(format!(
                "cannot list s3://{bucket}/{prefix}: {}",
                DisplayErrorContext(&e)
            ))
        })?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_parse_in_both_utc_forms() {
        let aws = parse_time("2026-11-30T08:30:36.688Z").unwrap();
        let offset = parse_time("2026-11-30T08:30:36.688228+00:00").unwrap();
        assert_eq!(aws.to_millis().unwrap(), offset.to_millis().unwrap());
        assert!(parse_time("yesterday").is_none());
    }
}
