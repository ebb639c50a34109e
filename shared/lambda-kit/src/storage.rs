//! S3 reads with a size limit, JSON writes, and the conditional reads, writes and deletes
//! that make record keeping safe under concurrent and repeated deliveries.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;

use crate::TaskError;

/// An object read from S3.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// The object's bytes.
    pub bytes: Vec<u8>,
    /// Its ETag, quotes removed.
    pub etag: Option<String>,
    /// Its version id, when the bucket is versioned.
    pub version_id: Option<String>,
    /// Its `Content-Type`, if set.
    pub content_type: Option<String>,
}

/// Which version of an object to read: a version id, and an ETag the object must have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Version<'a> {
    /// Read this version (versioned buckets); `None`: the current one.
    pub version_id: Option<&'a str>,
    /// The ETag the object read must have (`If-Match`).
    pub etag: Option<&'a str>,
}

/// A precondition for a conditional write or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition<'a> {
    /// The object must not exist (`If-None-Match: *`).
    Absent,
    /// The object must still have this ETag (`If-Match`).
    Matches(&'a str),
}

/// Reads `bucket/key`, refusing objects over `max_bytes` before downloading them.
pub async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<StoredObject, TaskError> {
    get_object_version(s3, bucket, key, Version::default(), max_bytes)
        .await?
        .ok_or_else(|| TaskError::Internal("an unconditional read failed a precondition".into()))
}

/// Reads one version of `bucket/key` like [`get_object`]; `None` when the object no
/// longer has the ETag asked for (it was overwritten since).
pub async fn get_object_version(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Version<'_>,
    max_bytes: u64,
) -> Result<Option<StoredObject>, TaskError> {
    let sent = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.version_id.map(str::to_owned))
        .set_if_match(version.etag.map(quoted))
        .send()
        .await;
    let output = match sent {
        Ok(output) => output,
        Err(e) if precondition_failed(&e) => return Ok(None),
        Err(e) => return Err(storage_error(e, bucket, key)),
    };
    let size = output
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    if size > max_bytes {
        return Err(TaskError::InputTooLarge(format!(
            "s3://{bucket}/{key} is {size} bytes; the limit is {max_bytes}"
        )));
    }
    let etag = output.e_tag().map(|t| t.trim_matches('"').to_owned());
    let version_id = output.version_id().map(str::to_owned);
    let content_type = output.content_type().map(str::to_owned);
    let bytes = output
        .body
        .collect()
        .await
        .map_err(|e| TaskError::Storage(format!("reading s3://{bucket}/{key} failed: {e}")))?
        .into_bytes()
        .to_vec();
    if bytes.len() as u64 > max_bytes {
        return Err(TaskError::InputTooLarge(format!(
            "s3://{bucket}/{key} is over the limit of {max_bytes} bytes"
        )));
    }
    Ok(Some(StoredObject {
        bytes,
        etag,
        version_id,
        content_type,
    }))
}

/// A JSON object read from S3 with its ETag (for a conditional write after it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJson {
    /// The parsed JSON (`Null` when the object is not JSON).
    pub value: serde_json::Value,
    /// The object's ETag, quotes removed.
    pub etag: String,
}

/// Reads `bucket/key` as JSON if it exists; `None` when it does not.
pub async fn get_json_if_exists(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<Option<StoredJson>, TaskError> {
    match get_object(s3, bucket, key, max_bytes).await {
        Ok(object) => Ok(Some(StoredJson {
            value: serde_json::from_slice(&object.bytes).unwrap_or_default(),
            etag: object.etag.unwrap_or_default(),
        })),
        Err(TaskError::DocumentNotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `value` as pretty JSON to `bucket/key`.
pub async fn put_json(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    value: &impl Serialize,
) -> Result<(), TaskError> {
    let body = serde_json::to_vec_pretty(value)
        .map_err(|e| TaskError::Internal(format!("cannot serialize result: {e}")))?;
    put_bytes(s3, bucket, key, "application/json", body).await
}

/// Writes `value` as pretty JSON to `bucket/key` if `precondition` holds. Returns the new
/// object's ETag, or `None` when the precondition failed (someone else wrote first).
pub async fn put_json_if(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    value: &impl Serialize,
    precondition: Precondition<'_>,
) -> Result<Option<String>, TaskError> {
    let body = serde_json::to_vec_pretty(value)
        .map_err(|e| TaskError::Internal(format!("cannot serialize result: {e}")))?;
    let request = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(body));
    let request = match precondition {
        Precondition::Absent => request.if_none_match("*"),
        Precondition::Matches(etag) => request.if_match(quoted(etag)),
    };
    match request.send().await {
        Ok(output) => Ok(Some(
            output
                .e_tag()
                .map(|t| t.trim_matches('"').to_owned())
                .unwrap_or_default(),
        )),
        Err(e) if precondition_failed(&e) => Ok(None),
        Err(e) => Err(storage_error(e, bucket, key)),
    }
}

/// Deletes `bucket/key` if it still has `etag` (`If-Match`); `false` when it has another
/// one. A missing object counts as deleted.
pub async fn delete_if_matches(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    etag: &str,
) -> Result<bool, TaskError> {
    match s3
        .delete_object()
        .bucket(bucket)
        .key(key)
        .if_match(quoted(etag))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if precondition_failed(&e) => Ok(false),
        Err(e) => match storage_error(e, bucket, key) {
            TaskError::DocumentNotFound(_) => Ok(true),
            other => Err(other),
        },
    }
}

/// Writes UTF-8 `text` to `bucket/key`.
pub async fn put_text(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    text: &str,
) -> Result<(), TaskError> {
    put_bytes(
        s3,
        bucket,
        key,
        "text/plain; charset=utf-8",
        text.as_bytes().to_vec(),
    )
    .await
}

async fn put_bytes(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(), TaskError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| storage_error(e, bucket, key))?;
    Ok(())
}

fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

/// Whether a request failed a precondition: 412, or 409 `ConditionalRequestConflict`
/// (another conditional write to the key was in flight).
fn precondition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| matches!(code, "PreconditionFailed" | "ConditionalRequestConflict"))
}

fn storage_error<E, R>(err: SdkError<E, R>, bucket: &str, key: &str) -> TaskError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
    if matches!(code, "NoSuchKey" | "NoSuchVersion" | "NotFound") {
        TaskError::DocumentNotFound(format!("s3://{bucket}/{key} does not exist"))
    } else if code == "NoSuchBucket" {
        TaskError::DocumentNotFound(format!("bucket {bucket} does not exist"))
    } else {
        TaskError::Storage(format!(
            "s3://{bucket}/{key}: {}",
            DisplayErrorContext(&err)
        ))
    }
}
