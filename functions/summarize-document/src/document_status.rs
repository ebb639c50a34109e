//! `GET /documents/{key}`: where a document under `incoming/` or `workflow/` stands, read
//! from the document itself and its records (see [`crate::records`]): `pending` (the
//! document is there, no record of this version yet), `ready` (its summary, or the
//! workflow's result), `failed` (its failure record), or `404 DocumentNotFound`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_kit::TaskError;
use lambda_kit::storage::{StoredJson, get_json_if_exists};
use serde::Serialize;
use serde_json::Value;

use crate::App;

/// The largest record read back.
const MAX_RECORD_BYTES: u64 = 4 * 1024 * 1024;
/// S3's longest key.
const MAX_KEY_BYTES: usize = 1024;

/// Where a document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The document is stored and its summary or result is not written yet.
    Pending,
    /// The summary (`incoming/`) or the workflow's result (`workflow/`) is written.
    Ready,
    /// The document failed for good; the failure record says why.
    Failed,
}

/// The answer of `GET /documents/{key}`.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentStatus {
    /// The document's key.
    pub key: String,
    /// Where it stands.
    pub status: Status,
    /// The record's key (`ready` and `failed`), or where it will be written (`pending`).
    pub record_key: String,
    /// The summary, result or failure record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
}

/// The document key of a `GET /documents/{key+}` request: the `key` path parameter (API
/// Gateway decodes it), or without one the rest of the path, percent-decoded.
pub fn key_of(request: &ApiGatewayV2httpRequest) -> Result<String, TaskError> {
    if let Some(key) = request.path_parameters.get("key") {
        return Ok(key.clone());
    }
    let path = request
        .raw_path
        .as_deref()
        .or(request.request_context.http.path.as_deref())
        .unwrap_or_default();
    let rest = path.split_once("/documents/").map_or("", |(_, rest)| rest);
    percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| TaskError::InvalidInput("the key is not valid UTF-8 once decoded".into()))
}

/// Reports on document `key`.
pub async fn status(app: &App, key: &str) -> Result<DocumentStatus, TaskError> {
    let config = &app.config;
    let success_prefix = if key.starts_with(&config.workflow_prefix) {
        &config.result_prefix
    } else {
        &config.summary_prefix
    };
    check_key(key, &[&config.input_prefix, &config.workflow_prefix])?;
    let Some(bucket) = config.documents_bucket() else {
        return Err(TaskError::Internal(
            "GET /documents needs DOCUMENTS_BUCKET (or OUTPUT_BUCKET) to be set".into(),
        ));
    };
    let records_bucket = config.output_bucket.as_deref().unwrap_or(bucket);
    let success_key = format!("{success_prefix}{key}.json");
    let failure_key = format!("{}{key}.json", config.failure_prefix);
    let read = |k: String| async move {
        let found = get_json_if_exists(&app.s3, records_bucket, &k, MAX_RECORD_BYTES).await?;
        Ok::<_, TaskError>(found.map(|StoredJson { value, .. }| (k, value)))
    };
    let success = read(success_key.clone()).await?;
    let failure = read(failure_key).await?;
    let source = head_etag(&app.s3, bucket, key).await?;
    let answer = |status, (record_key, record): (String, Value)| DocumentStatus {
        key: key.to_owned(),
        status,
        record_key,
        record: Some(record),
    };
    let is_current = |record: &(String, Value)| match (&source, etag_of(&record.1)) {
        (Some(current), Some(recorded)) => current == recorded,
        _ => true,
    };
    // A success record and a failure record of the same version cannot both stand (the
    // writer removes the other kind), but while one replaces the other the success wins.
    if let Some(s) = success.filter(is_current) {
        return Ok(answer(Status::Ready, s));
    }
    if let Some((record_key, record)) = failure.filter(is_current) {
        return Ok(answer(
            Status::Failed,
            (record_key, public_failure(&record)),
        ));
    }
    if source.is_some() {
        return Ok(DocumentStatus {
            key: key.to_owned(),
            status: Status::Pending,
            record_key: success_key,
            record: None,
        });
    }
    Err(TaskError::DocumentNotFound(format!(
        "no document and no record at {key:?}"
    )))
}

/// What a caller may see of a failure record: the error type, the message only for
/// failures of the document itself (what to fix), and the version. Internal details
/// (workflow execution ARNs, causes, bucket names) stay in the record.
fn public_failure(record: &Value) -> Value {
    let error_type = record["error"]["type"].as_str().unwrap_or("InternalError");
    let message = if crate::records::is_final(error_type) {
        record["error"]["message"].clone()
    } else {
        Value::from("the document could not be processed; it is retried or needs an operator")
    };
    let source = &record["source"];
    serde_json::json!({
        "error": {"type": error_type, "message": message},
        "source": {"key": source["key"], "etag": source["etag"], "version_id": source["version_id"]},
    })
}

/// A key under one of `prefixes`, with a name after it, that S3 could hold.
fn check_key(key: &str, prefixes: &[&String]) -> Result<(), TaskError> {
    let under = prefixes
        .iter()
        .any(|p| key.len() > p.len() && key.starts_with(p.as_str()));
    if !under {
        let listed: Vec<&str> = prefixes.iter().map(|p| p.as_str()).collect();
        return Err(TaskError::InvalidInput(format!(
            "only documents under {} can be looked up",
            listed.join(" or ")
        )));
    }
    if key.len() > MAX_KEY_BYTES || key.chars().any(char::is_control) {
        return Err(TaskError::InvalidInput(format!(
            "a key is at most {MAX_KEY_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

/// The ETag a record's `source` names, quotes removed.
fn etag_of(record: &Value) -> Option<&str> {
    record["source"]["etag"]
        .as_str()
        .map(|e| e.trim_matches('"'))
}

/// The current ETag of `bucket/key` (quotes removed), `None` when it does not exist.
async fn head_etag(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<String>, TaskError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Some(
            out.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
        )),
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_not_found())
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
        {
            Ok(None)
        }
        Err(e) => Err(TaskError::Storage(format!(
            "s3://{bucket}/{key}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, parameter: Option<&str>) -> ApiGatewayV2httpRequest {
        let mut event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /documents/{key+}", "rawPath": path,
            "requestContext": {"http": {"method": "GET", "path": path}, "stage": "$default"},
            "isBase64Encoded": false
        });
        if let Some(key) = parameter {
            event["pathParameters"] = serde_json::json!({ "key": key });
        }
        serde_json::from_value(event).unwrap()
    }

    #[test]
    fn keys_come_from_the_path_parameter_or_the_path() {
        let key = key_of(&get(
            "/documents/incoming/a/b%20c.pdf",
            Some("incoming/a/b c.pdf"),
        ));
        assert_eq!(key.unwrap(), "incoming/a/b c.pdf");
        for path in [
            "/documents/incoming/a/b%20c.pdf",
            "/documents/incoming%2Fa%2Fb%20c.pdf",
            "/prod/documents/incoming/a/b%20c.pdf",
        ] {
            assert_eq!(key_of(&get(path, None)).unwrap(), "incoming/a/b c.pdf");
        }
        assert!(key_of(&get("/documents/incoming/%FF", None)).is_err());
    }

    #[test]
    fn only_input_keys_are_looked_up() {
        let (incoming, workflow) = ("incoming/".to_owned(), "workflow/".to_owned());
        let prefixes = [&incoming, &workflow];
        assert!(check_key("incoming/a/b.pdf", &prefixes).is_ok());
        assert!(check_key("workflow/b.pdf", &prefixes).is_ok());
        let long = format!("incoming/{}", "k".repeat(MAX_KEY_BYTES));
        for bad in [
            "",
            "incoming/",
            "summaries/incoming/a.pdf.json",
            "claims/x.json",
            "/incoming/a.pdf",
            "incoming/a\u{7}.pdf",
            long.as_str(),
        ] {
            let err = check_key(bad, &prefixes).unwrap_err();
            assert_eq!(err.http_status(), 400, "{bad:?}");
        }
    }
}
