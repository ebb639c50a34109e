//! Real-shaped Lambda events for tests: HTTP API (payload 2.0) requests, S3 notifications,
//! the samples in `events/` (Step Functions inputs among them), and readers for HTTP responses.

use serde_json::{Value, json};

/// An API Gateway HTTP API (payload 2.0) event for `method path`, as API Gateway sends it
/// for a route of that key, with `body` and an optional `content-type`.
pub fn http(method: &str, path: &str, content_type: Option<&str>, body: &str) -> Value {
    let route_key = format!("{method} {path}");
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "test"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "test"},
            "requestId": "req-1",
            "routeKey": route_key,
            "stage": "$default",
            "time": "12/Mar/2025:19:03:58 +0000",
            "timeEpoch": 1_741_806_238_000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    if let Some(content_type) = content_type {
        event["headers"]["content-type"] = content_type.into();
    }
    event
}

/// A `POST path` JSON request with `body`.
pub fn post_json(path: &str, body: &Value) -> Value {
    http("POST", path, Some("application/json"), &body.to_string())
}

/// An S3 `ObjectCreated:Put` notification for `(key, etag)` records in `bucket` (keys as S3
/// sends them: URL-encoded).
pub fn s3_created(bucket: &str, records: &[(&str, &str)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(key, etag)| {
            json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-26T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "uploads",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"},
                               "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": {"key": key, "size": 10, "eTag": etag, "sequencer": "0A1B2C3D4E5F678901"}
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A sample event from the project's `events/` folder (one per trigger and workflow input).
pub fn sample(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Status code and parsed JSON body of an HTTP API response.
pub fn http_parts(response: &Value) -> (u16, Value) {
    let status = response["statusCode"].as_u64().expect("statusCode");
    let body = response["body"].as_str().expect("text body");
    (
        u16::try_from(status).expect("status"),
        serde_json::from_str(body).expect("JSON body"),
    )
}

/// A header of an HTTP API response.
pub fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    response["headers"][name].as_str()
}
