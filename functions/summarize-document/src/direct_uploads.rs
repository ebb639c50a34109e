//! `POST /uploads`: a presigned S3 `PUT` URL for one document, so that documents of any
//! size up to `MAX_DOCUMENT_BYTES` reach S3 directly instead of through the HTTP API
//! (10 MB, 30 s). The key is new for every request (`incoming/<uuid>/<filename>`, or under
//! `workflow/`), and the signature binds the content type and the content length: S3
//! refuses a `PUT` whose `Content-Type` or `Content-Length` differs from the declared ones
//! (`403 SignatureDoesNotMatch`). The upload's S3 notification (or the workflow's
//! EventBridge rule) does the rest; `GET /documents/{key}` tells where it stands.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use lambda_kit::TaskError;
use serde::{Deserialize, Serialize};

use crate::App;

/// The longest file name accepted, in bytes.
pub const MAX_FILENAME_BYTES: usize = 255;

/// The document types an upload may declare: those the summarizer reads.
pub const CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/markdown",
    "text/html",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
];

/// The body of `POST /uploads`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The document's file name (the last part of its key).
    pub filename: String,
    /// Its media type, one of [`CONTENT_TYPES`].
    pub content_type: String,
    /// Its exact size in bytes.
    pub size: u64,
    /// `true` to run the document workflow (`workflow/`), else a summary (`incoming/`).
    #[serde(default)]
    pub workflow: bool,
}

/// What the client needs to upload and then to follow the document.
#[derive(Debug, Serialize)]
pub struct Upload {
    /// The document's key.
    pub key: String,
    /// Always `PUT`.
    pub method: &'static str,
    /// The presigned URL.
    pub url: String,
    /// Headers the `PUT` must carry exactly as given (they are signed).
    pub headers: BTreeMap<String, String>,
    /// When the URL stops working (RFC 3339, UTC).
    pub expires_at: String,
    /// Where the document's state is reported: `/documents/<key, URL-encoded>`.
    pub status_url: String,
    /// Where the summary (or the workflow's result) will be written.
    pub record_key: String,
    /// Where a failure record would be written.
    pub failure_key: String,
}

/// Validates `request` and presigns its upload.
pub async fn create(app: &App, request: UploadRequest) -> Result<Upload, TaskError> {
    let config = &app.config;
    let filename = check_filename(&request.filename)?;
    let content_type = check_content_type(&request.content_type)?;
    check_size(request.size, config.max_document_bytes)?;
    let Some(bucket) = config.documents_bucket() else {
        return Err(TaskError::Internal(
            "POST /uploads needs DOCUMENTS_BUCKET (or OUTPUT_BUCKET) to be set".into(),
        ));
    };
    let (prefix, record_prefix) = if request.workflow {
        (&config.workflow_prefix, &config.result_prefix)
    } else {
        (&config.input_prefix, &config.summary_prefix)
    };
    let key = format!("{prefix}{}/{filename}", uuid::Uuid::new_v4());
    let length = i64::try_from(request.size)
        .map_err(|_| TaskError::InputTooLarge("size is too large".into()))?;
    let now = SystemTime::now();
    let valid_for = Duration::from_secs(config.upload_url_seconds);
    let presigning = PresigningConfig::builder()
        .start_time(now)
        .expires_in(valid_for)
        .build()
        .map_err(|e| TaskError::Internal(format!("presigning configuration: {e}")))?;
    let presigned = app
        .s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type(content_type)
        .content_length(length)
        // One upload per URL: a second PUT to the same key (a replay within the expiry)
        // would start a second summary.
        .if_none_match("*")
        .presigned(presigning)
        .await
        .map_err(|e| {
            TaskError::Internal(format!(
                "cannot presign the upload: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ))
        })?;
    let signed = signed_headers(presigned.uri());
    if !["content-type", "content-length", "if-none-match"]
        .iter()
        .all(|h| signed.iter().any(|s| s == h))
    {
        return Err(TaskError::Internal(format!(
            "the upload URL does not sign the content type, length and If-None-Match (signed: {signed:?})"
        )));
    }
    // What the client must send: the signed headers (`host` comes with the URL). Unsigned
    // ones the SDK adds (a trace id) are left out.
    let headers: BTreeMap<String, String> = presigned
        .headers()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .filter(|(name, _)| name != "host" && signed.contains(name))
        .collect();
    let expires_at = DateTime::from(now + valid_for)
        .fmt(DateTimeFormat::DateTime)
        .map_err(|e| TaskError::Internal(format!("cannot format the expiry: {e}")))?;
    tracing::info!(key = %key, size = request.size, content_type, "upload URL issued");
    Ok(Upload {
        status_url: status_url(&key),
        record_key: format!("{record_prefix}{key}.json"),
        failure_key: format!("{}{key}.json", config.failure_prefix),
        key,
        method: "PUT",
        url: presigned.uri().to_owned(),
        headers,
        expires_at,
    })
}

/// The header names a presigned URL's `X-Amz-SignedHeaders` lists.
fn signed_headers(uri: &str) -> Vec<String> {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
        .map(|v| v.split(';').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `/documents/<key>`, each path segment percent-encoded (the route's `{key+}` takes the
/// slashes between them; `%2F` works as well).
pub fn status_url(key: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encoded: Vec<String> = key
        .split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect();
    format!("/documents/{}", encoded.join("/"))
}

/// A file name that is safe as the last part of a key: letters, digits, space, and
/// `. _ - ( ) ,`; not starting with a dot or a space, not ending with a space; at most
/// [`MAX_FILENAME_BYTES`] bytes. No separators or escapes, so no traversal and nothing
/// that S3 event encoding (`+`, `%`) could make ambiguous.
fn check_filename(name: &str) -> Result<&str, TaskError> {
    let bad = |why: &str| TaskError::InvalidInput(format!("`filename` {why}"));
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if name.len() > MAX_FILENAME_BYTES {
        return Err(bad(&format!(
            "is {} bytes; the limit is {MAX_FILENAME_BYTES}",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || " ._-(),".contains(*c)))
    {
        return Err(bad(&format!(
            "may hold letters, digits, space and . _ - ( ) , only; found {c:?}"
        )));
    }
    if name.starts_with(['.', ' ']) || name.ends_with(' ') {
        return Err(bad(
            "may not start with a dot or a space, or end with a space",
        ));
    }
    Ok(name)
}

/// One of [`CONTENT_TYPES`], compared without case; returned as listed.
fn check_content_type(declared: &str) -> Result<&'static str, TaskError> {
    CONTENT_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(declared.trim()))
        .copied()
        .ok_or_else(|| {
            TaskError::UnsupportedDocument(format!(
                "`content_type` must be one of {}",
                CONTENT_TYPES.join(", ")
            ))
        })
}

fn check_size(size: u64, max: u64) -> Result<(), TaskError> {
    if size == 0 {
        return Err(TaskError::InvalidInput(
            "`size` must be at least 1 byte".into(),
        ));
    }
    if size > max {
        return Err(TaskError::InputTooLarge(format!(
            "`size` is {size} bytes; the limit is {max}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for good in [
            "report.pdf",
            "Q3 report (final), v2.docx",
            "über_plan-1.md",
            "a",
        ] {
            assert_eq!(check_filename(good), Ok(good), "{good}");
        }
        let long = "x".repeat(MAX_FILENAME_BYTES + 1);
        for bad in [
            "",
            "..",
            ".env",
            "../summaries/x.json",
            "a/b.pdf",
            "a\\b.pdf",
            "a%2Fb.pdf",
            "a+b.pdf",
            " a.pdf",
            "a.pdf ",
            "a\nb.pdf",
            "a\u{0}.pdf",
            long.as_str(),
        ] {
            let err = check_filename(bad).unwrap_err();
            assert_eq!(err.error_type(), "InvalidInput", "{bad:?}");
        }
    }

    #[test]
    fn content_types_and_sizes() {
        assert_eq!(check_content_type("Application/PDF"), Ok("application/pdf"));
        for bad in [
            "image/png",
            "application/octet-stream",
            "text/plain; x=1",
            "",
        ] {
            assert_eq!(check_content_type(bad).unwrap_err().http_status(), 422);
        }
        assert!(check_size(1, 10).is_ok() && check_size(10, 10).is_ok());
        assert_eq!(check_size(0, 10).unwrap_err().http_status(), 400);
        assert_eq!(check_size(11, 10).unwrap_err().http_status(), 413);
    }

    #[test]
    fn signed_headers_are_read_from_the_url() {
        let url = "https://b.s3.amazonaws.com/k?X-Amz-Date=1&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Signature=s";
        assert_eq!(
            signed_headers(url),
            ["content-length", "content-type", "host"]
        );
        assert!(signed_headers("https://b/k").is_empty());
    }

    #[test]
    fn status_urls_encode_each_segment() {
        assert_eq!(
            status_url("incoming/1f/Q3 report (v2).pdf"),
            "/documents/incoming/1f/Q3%20report%20%28v2%29.pdf"
        );
        assert_eq!(
            status_url("workflow/a/ü.md"),
            "/documents/workflow/a/%C3%BC.md"
        );
    }
}
