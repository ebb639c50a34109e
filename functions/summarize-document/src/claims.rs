//! Claims: a short lease object per document key, created with a conditional write, so
//! that of several deliveries of one upload event only one calls the model.
//!
//! A claim holds the version it was taken for, its holder (the invocation's request id)
//! and when it expires (the holder's deadline). A delivery finds the key:
//! - unclaimed: it claims it;
//! - claimed for the same version, alive, by another invocation: a duplicate, it stops
//!   (the holder's invocation ends with a record, or fails and is retried by Lambda);
//! - claimed by its own request id: an earlier attempt of this very invocation died
//!   (Lambda's retries keep the request id), so it takes the claim over;
//! - claimed for a newer version: its own version is superseded;
//! - claimed but expired, or for an older version: it takes the claim over.
//!
//! Takeovers use `If-Match`, so of two takers only one wins.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bedrock::Deadline;
use lambda_kit::TaskError;
use lambda_kit::storage::{Precondition, delete_if_matches, get_json_if_exists, put_json_if};
use serde_json::{Value, json};

use crate::versions::Announced;

/// How often a contended claim is read and tried again before the delivery is retried.
const ATTEMPTS: usize = 5;
/// Claims outlive their holder's deadline by this much (clock differences).
const GRACE: Duration = Duration::from_secs(5);

/// A claim this delivery holds.
#[derive(Debug)]
pub struct Claim {
    bucket: String,
    key: String,
    etag: String,
}

/// What trying to claim a document found.
#[derive(Debug)]
pub enum Claimed {
    /// This delivery holds the claim and does the work.
    Held(Claim),
    /// Another delivery of the same version holds a live claim.
    Busy,
    /// A newer version of the object has been claimed: this one needs no work.
    Superseded,
}

/// Claims `claim_key` in `bucket` for `version` until `deadline` (plus a grace period).
pub async fn acquire(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    claim_key: &str,
    version: &Announced,
    deadline: Deadline,
    holder: Option<&str>,
) -> Result<Claimed, TaskError> {
    let body = json!({
        "source": version,
        "holder": holder,
        "expires_at_ms": epoch_ms(SystemTime::now() + deadline.remaining() + GRACE),
    });
    for _ in 0..ATTEMPTS {
        let precondition = match get_json_if_exists(s3, bucket, claim_key, 64 * 1024).await? {
            None => Precondition::Absent,
            Some(current) => {
                let source = &current.value["source"];
                if version.is_older_than(source) {
                    return Ok(Claimed::Superseded);
                }
                let ours = holder.is_some() && current.value["holder"].as_str() == holder;
                if is_alive(&current.value) && version.is_same_version(source) && !ours {
                    return Ok(Claimed::Busy);
                }
                // Expired, an older version's, or left by our own earlier attempt.
                if let Some(etag) = put_json_if(
                    s3,
                    bucket,
                    claim_key,
                    &body,
                    Precondition::Matches(&current.etag),
                )
                .await?
                {
                    return Ok(held(bucket, claim_key, etag));
                }
                continue;
            }
        };
        if let Some(etag) = put_json_if(s3, bucket, claim_key, &body, precondition).await? {
            return Ok(held(bucket, claim_key, etag));
        }
    }
    Err(TaskError::Storage(format!(
        "{claim_key}: the claim kept changing under {ATTEMPTS} attempts"
    )))
}

impl Claim {
    /// Gives the claim up, unless someone took it over meanwhile. A failure is only
    /// logged: an unreleased claim expires on its own.
    pub async fn release(self, s3: &aws_sdk_s3::Client) {
        if let Err(e) = delete_if_matches(s3, &self.bucket, &self.key, &self.etag).await {
            tracing::warn!(claim = %self.key, error = %e, "claim not released; it will expire");
        }
    }
}

fn held(bucket: &str, key: &str, etag: String) -> Claimed {
    Claimed::Held(Claim {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag,
    })
}

fn is_alive(claim: &Value) -> bool {
    claim["expires_at_ms"]
        .as_u64()
        .is_some_and(|at| at > epoch_ms(SystemTime::now()))
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
