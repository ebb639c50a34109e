//! S3 reads with a size limit and JSON writes.

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

/// Reads `bucket/key`, refusing objects over `max_bytes` before downloading them.
pub async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<StoredObject, TaskError> {
    let output = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| storage_error(e, bucket, key))?;
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
    Ok(StoredObject {
        bytes,
        etag,
        version_id,
        content_type,
    })
}

/// Reads `bucket/key` as JSON if it exists; `None` when it does not.
pub async fn get_json_if_exists(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<Option<serde_json::Value>, TaskError> {
    match get_object(s3, bucket, key, max_bytes).await {
        Ok(object) => Ok(serde_json::from_slice(&object.bytes).ok()),
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

fn storage_error<E, R>(err: SdkError<E, R>, bucket: &str, key: &str) -> TaskError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
    if matches!(code, "NoSuchKey" | "NotFound") {
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
