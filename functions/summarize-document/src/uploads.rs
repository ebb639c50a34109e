//! S3 `ObjectCreated` events: each record ends as a summary record or a failure record
//! of the newest version of its object, whatever the order and number of deliveries.
//!
//! Per record: skip it when a newer version is recorded or this version is done; claim
//! the key (a duplicate delivery in flight stops here, before any model call); read the
//! announced version (by version id, else only while the object still has the event's
//! ETag); summarize; write the record conditionally; release the claim. Failures of the
//! document itself ([`records::FINAL_ERROR_TYPES`]) end as failure records; anything else
//! fails the delivery so it comes back (Lambda retries the invocation, or the queue
//! receives the message again) and finally reaches the dead-letter queue. On a queue's
//! last receive (`UPLOAD_MAX_RECEIVES`) such a failure also writes a failure record with
//! its own (not final) type, so the document's state is visible and a later delivery
//! (a redrive) still processes it.

use std::time::Instant;

use aws_lambda_events::s3::S3Event;
use bedrock::{Deadline, UsageTotals};
use lambda_kit::storage::{Version, get_object_version};
use lambda_kit::{Delivery, TaskError, decode_s3_key};
use serde::Serialize;
use serde_json::json;

use crate::App;
use crate::claims::{self, Claimed};
use crate::document::summarize_stored;
use crate::records::{self, Kind, Records, Settled};
use crate::versions::Announced;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Summarized; the record is at `output_key`.
    Summarized,
    /// Already summarized or failed for good for this version; nothing was done.
    AlreadyDone,
    /// Another delivery of this version is being processed right now; nothing was done.
    InProgress,
    /// A newer version of the object exists (or it was deleted): its own event decides.
    Superseded,
    /// Not ours to process (own output, outside the input prefix, not a creation).
    Ignored,
    /// Failed permanently; the failure record is at `output_key`.
    Failed,
    /// Failed for now; the delivery fails so it comes back (on the last receive, with a
    /// failure record of this type at `output_key`).
    Retry,
}

/// The outcome of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    /// The object key (decoded).
    pub key: String,
    /// What happened.
    pub status: Status,
    /// Where the summary or failure record is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    /// The error type, for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
}

/// Processes every record; fails (so the delivery comes back) when a record hit an error
/// that is not final, after all other records are done. Records done before are skipped
/// on the retry, so nothing runs twice.
pub async fn handle_upload(
    app: &App,
    event: S3Event,
    deadline: Deadline,
    delivery: &Delivery,
) -> Result<Vec<RecordOutcome>, TaskError> {
    let request_id = delivery.id.as_deref();
    let last = delivery.is_last(app.config.upload_max_receives);
    let mut outcomes = Vec::with_capacity(event.records.len());
    let mut retry: Option<TaskError> = None;
    for record in event.records {
        let raw_key = record.s3.object.key.clone().unwrap_or_default();
        let bucket = record.s3.bucket.name.clone().unwrap_or_default();
        let key = match decode_s3_key(&raw_key) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable key ignored");
                outcomes.push(outcome(
                    raw_key,
                    Status::Ignored,
                    None,
                    Some(e.error_type()),
                ));
                continue;
            }
        };
        let created = record
            .event_name
            .as_deref()
            .is_some_and(|n| n.starts_with("ObjectCreated"));
        if bucket.is_empty()
            || !created
            || app.config.is_own_output(&key)
            || !key.starts_with(&app.config.input_prefix)
        {
            tracing::info!(key = %key, "record ignored");
            outcomes.push(outcome(key, Status::Ignored, None, None));
            continue;
        }
        let object = &record.s3.object;
        let version = Announced {
            etag: object
                .e_tag
                .as_deref()
                .map(|t| t.trim_matches('"').to_owned()),
            version_id: object.version_id.clone().filter(|v| !v.is_empty()),
            sequencer: object.sequencer.clone().filter(|s| !s.is_empty()),
        };
        let (processed, usage) =
            bedrock::metered(process(app, &bucket, &key, &version, deadline, request_id)).await;
        match processed {
            Ok(o) => outcomes.push(o),
            Err(e) if last => {
                tracing::error!(key = %key, error_type = e.error_type(), error = %e, "document failed on its last receive; it goes to the dead-letter queue");
                let output_key =
                    record_last_failure(app, &bucket, &key, &version, &e, &usage).await;
                outcomes.push(outcome(
                    key,
                    Status::Retry,
                    output_key,
                    Some(e.error_type()),
                ));
                retry = Some(e);
            }
            Err(e) => {
                tracing::error!(key = %key, error_type = e.error_type(), error = %e, "document will be retried");
                outcomes.push(outcome(key, Status::Retry, None, Some(e.error_type())));
                retry = Some(e);
            }
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

/// Writes the failure record of a failure that is not final, on the last receive; returns
/// where it is. A failure to write it is logged: the message still reaches the
/// dead-letter queue, which alarms.
async fn record_last_failure(
    app: &App,
    bucket: &str,
    key: &str,
    version: &Announced,
    error: &TaskError,
    usage: &UsageTotals,
) -> Option<String> {
    let records = records_of(app, bucket, key);
    match records
        .write(
            Kind::Failure,
            version,
            &failure_record(bucket, key, version, error, usage),
        )
        .await
    {
        Ok(true) => Some(records.failure_key),
        Ok(false) => {
            tracing::info!(key = %key, "a newer version, or this version's summary, is recorded; no failure record");
            None
        }
        Err(e) => {
            tracing::error!(key = %key, error_type = e.error_type(), error = %e, "could not write the failure record");
            None
        }
    }
}

/// The failure record of `version`, with what this delivery's model calls cost before it
/// failed (`usage.cost_usd`; failed calls count their attempts and any tokens they reported).
fn failure_record(
    bucket: &str,
    key: &str,
    version: &Announced,
    error: &TaskError,
    usage: &UsageTotals,
) -> serde_json::Value {
    json!({
        "source": {"bucket": bucket, "key": key, "etag": version.etag,
                   "version_id": version.version_id, "sequencer": version.sequencer},
        "error": {"type": error.error_type(), "message": error.to_string()},
        "usage": usage,
    })
}

/// Where the upload path's records of `key` are: its summary and failure records.
pub(crate) fn records_of<'a>(app: &'a App, bucket: &'a str, key: &str) -> Records<'a> {
    Records::of(app, bucket, key, &app.config.summary_prefix)
}

fn outcome(
    key: String,
    status: Status,
    output_key: Option<String>,
    error_type: Option<&'static str>,
) -> RecordOutcome {
    RecordOutcome {
        key,
        status,
        output_key,
        error_type,
    }
}

/// One record, as the module's documentation describes. Failures that are not final are
/// returned (the invocation fails and is retried). The batch workflow runs it per item.
pub async fn process(
    app: &App,
    bucket: &str,
    key: &str,
    version: &Announced,
    deadline: Deadline,
    request_id: Option<&str>,
) -> Result<RecordOutcome, TaskError> {
    let config = &app.config;
    let out_bucket = config.output_bucket.as_deref().unwrap_or(bucket);
    let records = records_of(app, bucket, key);
    let done = |status, output_key| Ok(outcome(key.to_owned(), status, output_key, None));
    // Checked before claiming (a repeat costs no write) and again under the claim: a
    // delivery that claims the key just after another one finished and released it
    // finds that one's record.
    if let Some(settled) = settled(&records, key, version).await? {
        return Ok(settled);
    }
    let claim_key = format!("{}{key}.json", config.claim_prefix);
    let claim = match claims::acquire(
        &app.s3, out_bucket, &claim_key, version, deadline, request_id,
    )
    .await?
    {
        Claimed::Held(claim) => claim,
        Claimed::Busy => {
            tracing::info!(key = %key, "another delivery of this version is in progress");
            return done(Status::InProgress, None);
        }
        Claimed::Superseded => {
            tracing::info!(key = %key, "a newer version is being processed");
            return done(Status::Superseded, None);
        }
    };
    let result = match settled(&records, key, version).await {
        Ok(Some(settled)) => Ok(settled),
        Ok(None) => summarize_version(app, bucket, key, version, &records, deadline).await,
        Err(e) => Err(e),
    };
    claim.release(&app.s3).await;
    result
}

/// The outcome when the records show that `version` needs no work.
async fn settled(
    records: &Records<'_>,
    key: &str,
    version: &Announced,
) -> Result<Option<RecordOutcome>, TaskError> {
    Ok(match records.settled(version).await? {
        Some(Settled::Superseded) => {
            tracing::info!(key = %key, "a newer version is already recorded");
            Some(outcome(key.to_owned(), Status::Superseded, None, None))
        }
        Some(Settled::Done(at)) => {
            tracing::info!(key = %key, "this version is already done");
            Some(outcome(key.to_owned(), Status::AlreadyDone, Some(at), None))
        }
        None => None,
    })
}

/// Reads the announced version, summarizes it and writes its summary or failure record.
async fn summarize_version(
    app: &App,
    bucket: &str,
    key: &str,
    version: &Announced,
    records: &Records<'_>,
    deadline: Deadline,
) -> Result<RecordOutcome, TaskError> {
    let started = Instant::now();
    // By version id when the bucket is versioned; else the current object, but only
    // while it is still the version announced (a newer one has its own event).
    let wanted = Version {
        version_id: version.version_id.as_deref(),
        etag: if version.version_id.is_none() {
            version.etag.as_deref()
        } else {
            None
        },
    };
    let read =
        get_object_version(&app.s3, bucket, key, wanted, app.config.max_document_bytes).await;
    let (result, usage) = match read {
        Ok(Some(object)) => {
            bedrock::metered(summarize_stored(
                app,
                bucket,
                key,
                object,
                app.config.upload_options(),
                deadline,
                started,
            ))
            .await
        }
        Ok(None) | Err(TaskError::DocumentNotFound(_)) => {
            tracing::info!(key = %key, "the object changed or was deleted after this event");
            return Ok(outcome(key.to_owned(), Status::Superseded, None, None));
        }
        Err(e) => (Err(e), UsageTotals::default()),
    };
    match result {
        Ok(mut record) => {
            if let Some(source) = record.source.as_mut() {
                source.sequencer.clone_from(&version.sequencer);
            }
            let written = records.write(Kind::Success, version, &record).await?;
            let (status, message) = if written {
                (Status::Summarized, "document summarized")
            } else {
                (Status::Superseded, "summary superseded by a newer version")
            };
            tracing::info!(
                key = %key,
                etag = version.etag.as_deref().unwrap_or_default(),
                parts = record.parts,
                model_calls = record.usage.model_calls,
                "{message}"
            );
            let at = (status == Status::Summarized).then(|| records.success_key.clone());
            Ok(outcome(key.to_owned(), status, at, None))
        }
        Err(e) if records::is_final(e.error_type()) => {
            let failure = failure_record(bucket, key, version, &e, &usage);
            if !records.write(Kind::Failure, version, &failure).await? {
                return Ok(outcome(key.to_owned(), Status::Superseded, None, None));
            }
            tracing::warn!(key = %key, error_type = e.error_type(), "document failed permanently");
            Ok(outcome(
                key.to_owned(),
                Status::Failed,
                Some(records.failure_key.clone()),
                Some(e.error_type()),
            ))
        }
        Err(e) => Err(e),
    }
}
