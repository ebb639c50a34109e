//! The document workflow's steps (Step Functions tasks with an `action`): prepare the
//! text, plan the parts, summarize one part (inside a Map), combine, and write the
//! result or failure record. Texts and part summaries travel through S3, never through
//! state data: the state holds only keys, byte ranges and counts (see [`MAX_PARTS`]).
//!
//! An execution started by an S3 event does the work only once per object version, as
//! the upload path does: Prepare first skips a version whose records show it done or
//! superseded, then claims the key for the execution (a duplicate running at the same
//! time stops there), then checks the records again under the claim. The claim lasts as
//! long as the execution may ([`EXECUTION_TIMEOUT`]); writing the result or failure
//! record releases it, and so does the failure record of an unfinished execution.

use std::time::Duration;

use bedrock::{Deadline, UsageTotals};
use lambda_kit::TaskError;
use lambda_kit::storage::{
    Version, delete_if_matches, get_json_if_exists, get_object, get_object_version, put_json,
    put_text,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use text::Language;

use crate::claims::{self, Claimed};
use crate::document::extract_text;
use crate::options::SummaryOptions;
use crate::records::{Kind, Records, Settled};
use crate::summarize::{Sizes, combine, summarize_part, summarize_whole};
use crate::versions::Announced;
use crate::{App, source_key};

/// Most parts a document may be split into in the workflow.
///
/// The Map state's items and results are state data, which Step Functions caps at 256 KiB
/// (`States.DataLimitExceeded`, which no Catch can catch). With this cap, the worst case
/// (7-digit byte offsets, 3-digit indexes) is at most 500 x ~45 bytes = ~23 KB of Plan
/// items and 500 x ~12 bytes = ~6 KB of Map results, well below the limit together with
/// the rest of the state (input event, settings, summary, classification: a few KB each;
/// see the test `worst_case_state_payload_is_far_below_the_limit`). It also keeps an
/// execution under Step Functions' 25,000 history events: a part costs ~7 events, and 3
/// more per retry. Texts that need more parts fail with `InputTooLarge`; with the
/// template's smallest `ContextWindow` (4,096 tokens, parts of ~3,600 tokens) 500 parts
/// hold about 1.8 M tokens, more than the 4 MiB default `MaxTextBytes` of prose.
pub const MAX_PARTS: usize = 500;

/// The state machine's `TimeoutSeconds`: no execution runs longer, so a claim Prepare
/// takes for this long outlives its execution.
pub const EXECUTION_TIMEOUT: Duration = Duration::from_secs(10_800);

/// Prepare's `outcome` when the execution goes on to summarize the document.
const PREPARED: &str = "prepared";

/// One workflow step.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Skip a version that is done, superseded or in progress elsewhere (`outcome`);
    /// otherwise read and extract the document, detect its language, store its text under
    /// `work_prefix` (`outcome` "prepared").
    Prepare {
        /// Source bucket.
        bucket: String,
        /// Source key, as the event gave it (tried URL-decoded when not found as given).
        key: String,
        /// Where this execution keeps its working files (e.g. `work/<execution>/`).
        work_prefix: String,
        /// The language the workflow works in (translation target); default English.
        #[serde(default)]
        working_language: Option<Language>,
        /// The most text bytes the workflow's Translate step takes; a document that needs
        /// translation and has more text fails here, before any model call.
        #[serde(default)]
        translate_max_bytes: Option<u64>,
        /// The EventBridge event's `detail.object` (`null` for a direct start): the version
        /// is read by its `version-id` when it has one. With its `etag`, a version that is
        /// done or being done is skipped; a direct start always runs.
        #[serde(default)]
        version: Value,
        /// The execution's id, which holds the claim on the key.
        #[serde(default)]
        execution: Option<String>,
    },
    /// Split a stored text into parts that fit the window (at most [`MAX_PARTS`]).
    Plan {
        /// Bucket of the text.
        bucket: String,
        /// Key of the UTF-8 text.
        text_key: String,
        /// Language of the text (and of the summaries).
        language: Language,
    },
    /// Summarize one part (a byte range of the stored text) and store the part's summary
    /// under `work_prefix` (see [`part_key`]).
    SummarizePart {
        /// Bucket of the text.
        bucket: String,
        /// Key of the text.
        text_key: String,
        /// Where this execution keeps its working files.
        work_prefix: String,
        /// Start byte.
        start: usize,
        /// End byte (exclusive).
        end: usize,
        /// 1-based part number.
        index: usize,
        /// Number of parts.
        total: usize,
        /// Language of the summary.
        language: Language,
    },
    /// Combine the stored part summaries 1 to `count`, in order, into the final summary.
    Combine {
        /// Bucket of the part summaries.
        bucket: String,
        /// Where this execution keeps its working files.
        work_prefix: String,
        /// Number of parts.
        count: usize,
        /// Language of the summary.
        language: Language,
        /// Summary options.
        #[serde(default)]
        options: SummaryOptions,
    },
    /// Write the workflow's result record to `results/<key>.json`.
    WriteResult {
        /// Bucket.
        bucket: String,
        /// Source key.
        key: String,
        /// The record.
        result: Value,
        /// The EventBridge event's `detail.object`, whose `sequencer` orders versions.
        #[serde(default)]
        version: Value,
        /// The execution's id: its claim on the key is released.
        #[serde(default)]
        execution: Option<String>,
    },
    /// Write a failure record to `failed/<key>.json` from a Catch's error output.
    WriteFailure {
        /// Bucket.
        bucket: String,
        /// Source key.
        key: String,
        /// `{"Error": ..., "Cause": ...}` from the Catch.
        error: Value,
        /// The execution's id, kept in the record; its claim on the key is released.
        #[serde(default)]
        execution: Option<String>,
        /// The EventBridge event's `detail.object`, whose `sequencer` orders versions.
        #[serde(default)]
        version: Value,
    },
}

/// A part of the stored text, as the Map state's items; the Map's `ItemSelector` adds the
/// fields all parts share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartRange {
    /// 1-based part number.
    pub index: usize,
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
}

/// What a part's summary is stored as: `<work_prefix>parts/<index>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PartSummary {
    summary: String,
    model: String,
    usage: StoredUsage,
}

/// The cost of a document's calls: its parts, combination, translation and
/// classification (each a `usage.cost_usd` in the result the state machine assembles).
fn document_cost(result: &Value) -> bedrock::Cost {
    let cost = |usage: &Value| bedrock::Cost::from_usd(usage["cost_usd"].as_f64().unwrap_or(0.0));
    cost(&result["usage"]["parts"])
        + cost(&result["usage"]["combine"])
        + cost(&result["translation"]["usage"])
        + cost(&result["classification"]["usage"])
}

/// [`UsageTotals`] as stored in a part summary; the cost in whole pico-dollars, so that
/// the document's total is exact (absent in parts stored before costs: 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredUsage {
    prompt_tokens: u64,
    generation_tokens: u64,
    model_calls: u32,
    attempts: u32,
    #[serde(default)]
    cost_pico_usd: u64,
}

impl From<UsageTotals> for StoredUsage {
    fn from(u: UsageTotals) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            generation_tokens: u.generation_tokens,
            model_calls: u.model_calls,
            attempts: u.attempts,
            cost_pico_usd: u.cost.pico_usd(),
        }
    }
}

impl From<StoredUsage> for UsageTotals {
    fn from(u: StoredUsage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            generation_tokens: u.generation_tokens,
            model_calls: u.model_calls,
            attempts: u.attempts,
            cost: bedrock::Cost::from_pico_usd(u.cost_pico_usd),
        }
    }
}

/// Where part `index`'s summary is stored under `work_prefix`.
pub fn part_key(work_prefix: &str, index: usize) -> String {
    format!("{}parts/{index:05}.json", with_slash(work_prefix))
}

/// The largest part summary record read back.
const MAX_PART_RECORD_BYTES: u64 = 1024 * 1024;

/// Runs one workflow step.
pub async fn run(app: &App, step: Step, deadline: Deadline) -> Result<Value, TaskError> {
    match step {
        Step::Prepare {
            bucket,
            key,
            work_prefix,
            working_language,
            translate_max_bytes,
            version,
            execution,
        } => {
            let version = Announced::from_event_object(&version);
            let max = app.config.max_document_bytes;
            // The key as found (given, or URL-decoded): the records and the claim are its.
            let (object, key) = source_key::read_either(&key, |k| {
                let (s3, bucket, version) = (&app.s3, &bucket, &version);
                async move { read_version(s3, bucket, &k, version, max).await }
            })
            .await?;
            let Some(object) = object else {
                // Overwritten since the event (no version id to read it by): the newer
                // version's own event does the work.
                return Ok(skipped("superseded", &bucket, &key, None));
            };
            if let Some(skipped) = skip(app, &bucket, &key, &version, execution.as_deref()).await? {
                return Ok(skipped);
            }
            let extracted = extract_text(&object.bytes, &key, object.content_type.as_deref())?;
            if extracted.text.len() as u64 > app.config.max_text_bytes {
                return Err(TaskError::InputTooLarge(format!(
                    "the document's text is {} bytes; the limit is {}",
                    extracted.text.len(),
                    app.config.max_text_bytes
                )));
            }
            let language = text::detect_confident(&extracted.text).map(|d| d.language);
            let working = working_language.unwrap_or(Language::English);
            let needs_translation = language.is_some_and(|l| l != working);
            let translate_limit = translate_max_bytes.filter(|_| needs_translation);
            if let Some(limit) = translate_limit.filter(|&l| extracted.text.len() as u64 > l) {
                return Err(TaskError::InputTooLarge(format!(
                    "the document's text is {} bytes of {}; the workflow translates at most \
                     {limit} bytes into {} (TranslateMaxTextBytes)",
                    extracted.text.len(),
                    language.map(Language::name).unwrap_or_default(),
                    working.name()
                )));
            }
            let text_key = format!("{}source.txt", with_slash(&work_prefix));
            put_text(&app.s3, &bucket, &text_key, &extracted.text).await?;
            Ok(json!({
                "outcome": PREPARED,
                "record_key": null,
                "bucket": bucket,
                "key": key,
                "name": source_key::display_name(&key),
                "etag": object.etag,
                "size": object.bytes.len(),
                "format": extracted.format.as_str(),
                "text_key": text_key,
                "language": language,
                "working_language": working,
                "needs_translation": needs_translation,
                "estimated_tokens": bedrock::estimate_tokens(&extracted.text),
            }))
        }
        Step::Plan {
            bucket,
            text_key,
            language,
        } => {
            let text = read_text(app, &bucket, &text_key).await?;
            let sizes = Sizes::new(
                &app.llama,
                &SummaryOptions::default(),
                &app.config.plan(),
                language,
            );
            let parts = sizes.split(&text);
            if parts.len() > MAX_PARTS {
                return Err(TaskError::InputTooLarge(format!(
                    "the text needs {} parts of at most {} tokens; the workflow summarizes \
                     at most {MAX_PARTS} parts (a larger ContextWindow makes fewer parts)",
                    parts.len(),
                    sizes.part_tokens
                )));
            }
            let items: Vec<PartRange> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| PartRange {
                    index: i + 1,
                    start: p.start,
                    end: p.start + p.text.len(),
                })
                .collect();
            Ok(json!({ "parts": items, "count": items.len() }))
        }
        Step::SummarizePart {
            bucket,
            text_key,
            work_prefix,
            start,
            end,
            index,
            total,
            language,
        } => {
            let text = read_text(app, &bucket, &text_key).await?;
            let part = text.get(start..end).ok_or_else(|| {
                TaskError::InvalidInput(format!(
                    "part {start}..{end} is not a character range of {text_key}"
                ))
            })?;
            let options = SummaryOptions::default();
            let sizes = Sizes::new(&app.llama, &options, &app.config.plan(), language);
            // A one-part document gets its final summary here; combining a single
            // summary passes it through.
            let (summary, model, usage) =
                if total == 1 && sizes.fits_whole(part, &options, language) {
                    let s = summarize_whole(&app.llama, part, &options, language, &sizes, deadline)
                        .await?;
                    (s.summary, s.model, s.usage)
                } else {
                    let done =
                        summarize_part(&app.llama, part, index, total, language, &sizes, deadline)
                            .await?;
                    let usage = UsageTotals::of(&done);
                    (done.generation.trim().to_owned(), done.model_id, usage)
                };
            let summary_key = part_key(&work_prefix, index);
            let record = PartSummary {
                summary,
                model,
                usage: usage.into(),
            };
            put_json(&app.s3, &bucket, &summary_key, &record).await?;
            Ok(json!({ "index": index, "summary_key": summary_key }))
        }
        Step::Combine {
            bucket,
            work_prefix,
            count,
            language,
            options,
        } => {
            if count == 0 || count > MAX_PARTS {
                return Err(TaskError::InvalidInput(format!(
                    "cannot combine {count} parts (1 to {MAX_PARTS})"
                )));
            }
            let mut summaries = Vec::with_capacity(count);
            let mut parts_usage = UsageTotals::default();
            let mut part_model = String::new();
            for index in 1..=count {
                let key = part_key(&work_prefix, index);
                let object = get_object(&app.s3, &bucket, &key, MAX_PART_RECORD_BYTES).await?;
                let part: PartSummary = serde_json::from_slice(&object.bytes).map_err(|e| {
                    TaskError::InvalidInput(format!("{key} is not a part summary: {e}"))
                })?;
                parts_usage += part.usage.into();
                part_model = part.model;
                summaries.push(part.summary);
            }
            let sizes = Sizes::new(&app.llama, &options, &app.config.plan(), language);
            let mut summary = combine(
                &app.llama,
                summaries,
                &options,
                language,
                &sizes,
                &app.config.plan(),
                deadline,
            )
            .await?;
            if count == 1 {
                // No call was made: the one part's model wrote the summary.
                summary.model = part_model;
            }
            let mut out =
                serde_json::to_value(summary).map_err(|e| TaskError::Internal(e.to_string()))?;
            out["parts_usage"] = json!(parts_usage);
            Ok(out)
        }
        Step::WriteResult {
            bucket,
            key,
            mut result,
            version,
            execution,
        } => {
            let records = records_of(app, &bucket, &key);
            // Written conditionally, never over a newer version's record; the other kind
            // of record of an earlier version or run is removed.
            let mut version = Announced::from_event_object(&version);
            if version.etag.is_none() {
                version.etag = result["source"]["etag"].as_str().map(str::to_owned);
            }
            if let Some(source) = result.get_mut("source").and_then(Value::as_object_mut) {
                source.insert("version_id".into(), json!(version.version_id));
                source.insert("sequencer".into(), json!(version.sequencer));
            }
            let cost = document_cost(&result);
            if let Some(usage) = result.get_mut("usage").and_then(Value::as_object_mut) {
                usage.insert("cost_usd".into(), json!(cost));
            }
            records.write(Kind::Success, &version, &result).await?;
            release_claim(app, &bucket, &key, execution.as_deref()).await;
            Ok(json!({ "bucket": records.bucket(), "result_key": records.success_key }))
        }
        Step::WriteFailure {
            bucket,
            key,
            error,
            execution,
            version,
        } => {
            let records = records_of(app, &bucket, &key);
            let version = Announced::from_event_object(&version);
            let record = json!({
                "source": {"bucket": bucket, "key": key, "etag": version.etag,
                           "version_id": version.version_id, "sequencer": version.sequencer},
                "error": failure_error(&error),
                "execution": execution,
            });
            // Never over a newer version's record, nor over this version's result (a
            // repeated run that failed cannot undo a success); among runs of unknown order
            // the one that finishes last decides, so an earlier run's result goes.
            let written = records.write(Kind::Failure, &version, &record).await?;
            release_claim(app, &bucket, &key, execution.as_deref()).await;
            Ok(json!({
                "bucket": records.bucket(),
                "failure_key": written.then_some(&records.failure_key),
            }))
        }
    }
}

/// The result and failure records of the workflow's document `key` in `bucket`.
pub(crate) fn records_of<'a>(app: &'a App, bucket: &'a str, key: &str) -> Records<'a> {
    Records::of(app, bucket, key, &app.config.result_prefix)
}

/// Prepare's output when the execution has nothing to do, as [`skip`] decides, with every
/// field Prepare's `ResultSelector` selects (those of a prepared document `null`).
fn skipped(outcome: &str, bucket: &str, key: &str, record_key: Option<String>) -> Value {
    json!({
        "outcome": outcome,
        "record_key": record_key,
        "bucket": bucket,
        "key": key,
        "name": source_key::display_name(key),
        "etag": null,
        "size": null,
        "format": null,
        "text_key": null,
        "language": null,
        "working_language": null,
        "needs_translation": null,
        "estimated_tokens": null,
    })
}

/// Whether an execution for `version` of `key` has nothing to do, before any model work:
/// the records show a newer version (`superseded`) or this version done (`already_done`),
/// or another execution holds a live claim for this version (`in_progress`). Otherwise
/// the key is claimed for `execution` (a retry of Prepare takes its own claim over) and
/// `None` is returned. A version without an ETag (a direct start) always runs.
async fn skip(
    app: &App,
    bucket: &str,
    key: &str,
    version: &Announced,
    execution: Option<&str>,
) -> Result<Option<Value>, TaskError> {
    if version.etag.is_none() {
        return Ok(None);
    }
    let records = records_of(app, bucket, key);
    let settled = |s: Settled| match s {
        Settled::Superseded => skipped("superseded", bucket, key, None),
        Settled::Done(at) => skipped("already_done", bucket, key, Some(at)),
    };
    if let Some(s) = records.settled(version).await? {
        return Ok(Some(settled(s)));
    }
    let claim = match claims::acquire(
        &app.s3,
        records.bucket(),
        &claim_key(app, key),
        version,
        Deadline::after(EXECUTION_TIMEOUT),
        execution,
    )
    .await?
    {
        Claimed::Held(claim) => claim,
        Claimed::Busy => return Ok(Some(skipped("in_progress", bucket, key, None))),
        Claimed::Superseded => return Ok(Some(skipped("superseded", bucket, key, None))),
    };
    // Again under the claim: an execution that finished just before it was taken.
    let again = records.settled(version).await;
    if !matches!(again, Ok(None)) {
        claim.release(&app.s3).await;
    }
    Ok(again?.map(settled))
}

fn claim_key(app: &App, key: &str) -> String {
    format!("{}{key}.json", app.config.claim_prefix)
}

/// Releases the claim on `key` if `execution` still holds it. A failure is only logged:
/// the claim expires on its own.
pub(crate) async fn release_claim(app: &App, bucket: &str, key: &str, execution: Option<&str>) {
    let Some(execution) = execution else { return };
    let out_bucket = app.config.output_bucket.as_deref().unwrap_or(bucket);
    let claim_key = claim_key(app, key);
    let released = match get_json_if_exists(&app.s3, out_bucket, &claim_key, 64 * 1024).await {
        Ok(Some(claim)) if claim.value["holder"].as_str() == Some(execution) => {
            delete_if_matches(&app.s3, out_bucket, &claim_key, &claim.etag)
                .await
                .map(drop)
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = released {
        tracing::warn!(claim = %claim_key, error = %e, "claim not released; it will expire");
    }
}

/// The `{type, message}` of a Catch's `{"Error", "Cause"}`. A Lambda task's Cause is the
/// function's error JSON as a string; its `errorMessage` is the message.
pub(crate) fn failure_error(error: &Value) -> Value {
    let cause = error
        .get("Cause")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| cause.to_owned());
    json!({"type": error.get("Error").cloned().unwrap_or(Value::Null), "message": message})
}

fn with_slash(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

/// Reads the version the event announced: by its version id, else only while the object
/// still has the event's ETag (`None` when it no longer has); a direct start (neither)
/// reads the current object.
async fn read_version(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: &Announced,
    max_bytes: u64,
) -> Result<Option<lambda_kit::storage::StoredObject>, TaskError> {
    let wanted = Version {
        version_id: version.version_id.as_deref(),
        etag: version
            .etag
            .as_deref()
            .filter(|_| version.version_id.is_none()),
    };
    get_object_version(s3, bucket, key, wanted, max_bytes).await
}

async fn read_text(app: &App, bucket: &str, key: &str) -> Result<String, TaskError> {
    let object = get_object(&app.s3, bucket, key, app.config.max_text_bytes).await?;
    String::from_utf8(object.bytes)
        .map_err(|_| TaskError::InvalidInput(format!("{key} is not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Step Functions' limit on state data (input and output of every state).
    const STATE_LIMIT: usize = 256 * 1024;

    /// The largest state of an execution, built from the worst values every field can
    /// take: a 1,024-byte key in the input event and in the records, `MAX_PARTS` ranges with
    /// 13-digit byte offsets (`MAX_TEXT_BYTES` may be up to 2^40), the Map's results, and
    /// a summary and a classification rationale of 2,048 tokens (the largest
    /// `max_gen_len` either function accepts) at 16 bytes a token.
    #[test]
    fn worst_case_state_payload_is_far_below_the_limit() {
        let key = format!("workflow/{}", "k".repeat(1024 - 9));
        let bucket = "b".repeat(63);
        let generated = "x".repeat(2048 * 16);
        let offset = 1usize << 40;
        let ranges: Vec<PartRange> = (1..=MAX_PARTS)
            .map(|index| PartRange {
                index,
                start: offset,
                end: offset,
            })
            .collect();
        let plan = json!({"parts": ranges, "count": MAX_PARTS});
        let map_results: Vec<Value> = (1..=MAX_PARTS).map(|i| json!({"part": i})).collect();
        let usage = json!({"prompt_tokens": u64::MAX, "generation_tokens": u64::MAX,
                           "model_calls": u32::MAX, "attempts": u32::MAX,
                           "cost_usd": u64::MAX as f64 / 1e12});
        let event = json!({
            "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "time": "2026-11-26T09:20:11Z", "region": "us-east-1",
            "resources": [format!("arn:aws:s3:::{bucket}")],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": key, "size": offset, "etag": "e".repeat(34),
                                  "version-id": "v".repeat(32), "sequencer": "s".repeat(16)},
                       "request-id": "r".repeat(16), "requester": "123456789012",
                       "source-ip-address": "203.0.113.10", "reason": "PutObject"}
        });
        let mut state = event;
        state["source"] = json!({"bucket": bucket, "key": key});
        state["settings"] = json!({"working_language": "en", "max_concurrency": 40,
                                   "translate_max_bytes": offset});
        state["prepared"] = json!({"outcome": "prepared", "record_key": null,
            "bucket": bucket, "key": key,
            "name": "n".repeat(crate::source_key::MAX_NAME_CHARS * 4), "etag": "e".repeat(34),
            "size": offset, "format": "markdown", "text_key": format!("work/{}/source.txt", "x".repeat(80)),
            "language": "en", "working_language": "en", "needs_translation": true,
            "estimated_tokens": u32::MAX});
        state["translation"] = json!({"output_key": format!("work/{}/translated.txt", "x".repeat(80)),
            "source_language": "de", "target_language": "en", "model": "m".repeat(200),
            "chunks": u32::MAX, "usage": usage});
        state["work"] = json!({"text_key": state["translation"]["output_key"], "language": "en",
            "translated": true, "translation": state["translation"]});
        // During the Map the ranges are in the state; after it, the Map's results.
        state["plan"] = plan.clone();
        let during_map = state.to_string().len();
        state["plan"]["parts"] = json!(map_results);
        state["combined"] = json!({"summary": generated, "model": "m".repeat(200), "usage": usage,
            "parts": MAX_PARTS, "combine_rounds": 99, "truncated": true, "parts_usage": usage});
        state["classification"] = json!({"category": "c".repeat(200), "priority": "p".repeat(200),
            "sentiment": {"label": "negative", "score": 0.5}, "language": "en",
            "queue": "q".repeat(200), "confidence": 0.5, "rationale": generated,
            "needs_review": true, "model": "m".repeat(200), "usage": usage});
        state["error"] = json!({"Error": "e".repeat(100), "Cause": "c".repeat(32 * 1024)});
        let at_the_end = state.to_string().len();
        let largest = during_map.max(at_the_end);
        assert!(
            largest < STATE_LIMIT / 2,
            "worst-case state is {largest} bytes; the limit is {STATE_LIMIT}"
        );
        // The Map's items alone, for the arithmetic in MAX_PARTS' documentation.
        assert!(plan.to_string().len() < 32 * 1024);
    }
}
