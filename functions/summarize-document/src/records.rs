//! The two records a document key can end with, a success record (a summary, or the
//! workflow's result) and a failure record, kept consistent under concurrent and out-of-order deliveries: every write is
//! conditional on what was read before it, a version never overwrites a newer one, a
//! failure never replaces its own version's success record, and writing one kind removes
//! the other kind's record of an older version.

use lambda_kit::TaskError;
use lambda_kit::storage::{
    Precondition, StoredJson, delete_if_matches, get_json_if_exists, put_json_if,
};
use serde::Serialize;
use serde_json::Value;

use crate::App;
use crate::versions::Announced;

/// How often a contended record is read and written again before the delivery is retried.
const ATTEMPTS: usize = 5;
/// The largest record read back.
const MAX_RECORD_BYTES: u64 = 4 * 1024 * 1024;

/// Error types that are properties of the document itself: trying again cannot help,
/// so they end as failure records and a repeat of the same version is not redone. Every
/// other failure (access, configuration, service) fails the invocation, so it is
/// retried and finally lands in the dead-letter queue, where it alarms.
pub const FINAL_ERROR_TYPES: [&str; 4] = [
    "UnsupportedDocument",
    "InputTooLarge",
    "ContextOverflow",
    "ContentBlocked",
];

/// Whether a failure of this type is final for the document version.
pub fn is_final(error_type: &str) -> bool {
    FINAL_ERROR_TYPES.contains(&error_type)
}

/// Where a document key's records live.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    /// `summaries/<key>.json` (uploads) or `results/<key>.json` (the workflow).
    pub success_key: String,
    /// `failed/<key>.json`.
    pub failure_key: String,
}

/// What the existing records say about a version, before any work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// A record of a newer version exists.
    Superseded,
    /// This version already has a success record, or a final failure record; at this key.
    Done(String),
}

/// Which record to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The summary or result record.
    Success,
    /// The failure record.
    Failure,
}

impl<'a> Records<'a> {
    /// The records of document `key` in `bucket`.
    pub fn new(
        s3: &'a aws_sdk_s3::Client,
        bucket: &'a str,
        success_key: String,
        failure_key: String,
    ) -> Self {
        Self {
            s3,
            bucket,
            success_key,
            failure_key,
        }
    }

    /// The records of document `key` (read from `bucket`) as `app` keeps them: in its
    /// output bucket (else `bucket`), the success record under `success_prefix` (summaries
    /// or results), the failure record under the failure prefix.
    pub(crate) fn of(app: &'a App, bucket: &'a str, key: &str, success_prefix: &str) -> Self {
        let config = &app.config;
        Self::new(
            &app.s3,
            config.output_bucket.as_deref().unwrap_or(bucket),
            format!("{success_prefix}{key}.json"),
            format!("{}{key}.json", config.failure_prefix),
        )
    }

    /// The bucket the records are in.
    pub fn bucket(&self) -> &'a str {
        self.bucket
    }

    /// Whether `version` needs no work: a newer version is recorded, or this one is done.
    pub async fn settled(&self, version: &Announced) -> Result<Option<Settled>, TaskError> {
        let success = self.read(&self.success_key).await?;
        let failure = self.read(&self.failure_key).await?;
        let sources = [&success, &failure].map(|r| r.as_ref().map(|r| &r.value["source"]));
        if sources.iter().flatten().any(|s| version.is_older_than(s)) {
            return Ok(Some(Settled::Superseded));
        }
        if let Some(s) = sources[0]
            && version.is_same_version(s)
        {
            return Ok(Some(Settled::Done(self.success_key.clone())));
        }
        if let (Some(s), Some(f)) = (sources[1], &failure)
            && version.is_same_version(s)
            && f.value["error"]["type"].as_str().is_some_and(is_final)
        {
            return Ok(Some(Settled::Done(self.failure_key.clone())));
        }
        Ok(None)
    }

    /// Writes `record` (whose `source` describes `version`) unless a newer version's
    /// record is there, or, for a failure, this version's success record (a run of a
    /// version that is done cannot undo it); then removes the other kind's record when it
    /// is of an older or the same version. Returns `false` when the record gave way.
    pub async fn write(
        &self,
        kind: Kind,
        version: &Announced,
        record: &impl Serialize,
    ) -> Result<bool, TaskError> {
        let (key, other) = match kind {
            Kind::Success => (&self.success_key, &self.failure_key),
            Kind::Failure => (&self.failure_key, &self.success_key),
        };
        // Whether the other kind's record wins over ours.
        let wins = |theirs: &StoredJson| {
            let source = &theirs.value["source"];
            version.is_older_than(source)
                || (kind == Kind::Failure && version.is_same_version(source))
        };
        if self.read(other).await?.as_ref().is_some_and(wins) {
            return Ok(false);
        }
        let mut written = None;
        for _ in 0..ATTEMPTS {
            let current = self.read(key).await?;
            let precondition = match &current {
                Some(c) if version.is_older_than(&c.value["source"]) => return Ok(false),
                Some(c) => Precondition::Matches(&c.etag),
                None => Precondition::Absent,
            };
            written = put_json_if(self.s3, self.bucket, key, record, precondition).await?;
            if written.is_some() {
                break;
            }
        }
        let Some(ours) = written else {
            return Err(TaskError::Storage(format!(
                "{key}: the record kept changing under {ATTEMPTS} attempts"
            )));
        };
        match self.read(other).await? {
            // A record that wins over ours was written meanwhile: ours gives way.
            Some(theirs) if wins(&theirs) => {
                delete_if_matches(self.s3, self.bucket, key, &ours).await?;
                return Ok(false);
            }
            Some(stale) if delete_if_matches(self.s3, self.bucket, other, &stale.etag).await? => {
                tracing::info!(record = %other, "stale record of an earlier version removed");
            }
            _ => {}
        }
        Ok(true)
    }

    /// The `source` of the record of `kind`, when there is one.
    pub async fn source(&self, kind: Kind) -> Result<Option<Value>, TaskError> {
        let key = match kind {
            Kind::Success => &self.success_key,
            Kind::Failure => &self.failure_key,
        };
        Ok(self.read(key).await?.map(|r| r.value["source"].clone()))
    }

    async fn read(&self, key: &str) -> Result<Option<StoredJson>, TaskError> {
        get_json_if_exists(self.s3, self.bucket, key, MAX_RECORD_BYTES).await
    }
}
