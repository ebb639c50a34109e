//! HTTP API (payload 2.0) bodies in, JSON responses out.

use std::borrow::Cow;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use bedrock::UsageTotals;
use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;

use crate::TaskError;

/// Checks content type and size (after base64 decoding), then parses the JSON body.
pub(crate) fn json_body(
    request: &ApiGatewayV2httpRequest,
    max_bytes: usize,
) -> Result<Value, TaskError> {
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" {
        return Err(TaskError::UnsupportedMediaType(format!(
            "content type must be application/json, got {:?}",
            if content_type.is_empty() {
                "none"
            } else {
                content_type
            }
        )));
    }
    let raw = request.body.as_deref().unwrap_or("");
    let too_large = |bytes: usize| {
        TaskError::InputTooLarge(format!(
            "request body is {bytes} bytes; the limit is {max_bytes}"
        ))
    };
    let bytes: Cow<'_, [u8]> = if request.is_base64_encoded {
        // Refuse an oversize body before decoding it (4 characters carry 3 bytes, less up
        // to 2 of padding).
        let decoded_at_least = (raw.len() / 4 * 3).saturating_sub(2);
        if decoded_at_least > max_bytes {
            return Err(too_large(decoded_at_least));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| TaskError::InvalidInput("body is not valid base64".into()))?;
        Cow::Owned(decoded)
    } else {
        Cow::Borrowed(raw.as_bytes())
    };
    if bytes.len() > max_bytes {
        return Err(too_large(bytes.len()));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(TaskError::InvalidInput(
            "request body is empty; send a JSON object".into(),
        ));
    }
    parse_json(&bytes)
}

fn parse_json(bytes: &[u8]) -> Result<Value, TaskError> {
    serde_json::from_slice(bytes)
        .map_err(|e| TaskError::InvalidInput(format!("invalid request: {e}")))
}

/// A JSON response with `status`.
pub fn json_response(status: u16, body: &Value) -> ApiGatewayV2httpResponse {
    let text = body.to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(text));
    response
}

/// The error response `{"error": {"type", "message"}}` for `err`, with `"usage"` (what the
/// model calls made before the error cost) when any attempt was made; server-side details
/// are logged, not returned.
pub(crate) fn error_response(err: &TaskError, usage: &UsageTotals) -> ApiGatewayV2httpResponse {
    let status = err.http_status();
    err.log();
    let mut body =
        serde_json::json!({"error": {"type": err.error_type(), "message": err.public_message()}});
    if usage.attempts > 0 {
        body["usage"] = serde_json::json!(usage);
    }
    let mut response = json_response(status, &body);
    if status == 429 || status == 503 {
        response
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    if let TaskError::MethodNotAllowed { allow, .. } = err
        && let Ok(value) = HeaderValue::from_str(allow)
    {
        response.headers.insert(header::ALLOW, value);
    }
    response
}

/// The response as the Lambda result API Gateway reads; if it cannot be serialized, the
/// same 500 error response every function gives.
pub(crate) fn into_event(response: &ApiGatewayV2httpResponse) -> Value {
    serde_json::to_value(response).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize the HTTP response");
        internal_error_event()
    })
}

fn internal_error_event() -> Value {
    serde_json::json!({
        "statusCode": 500,
        "headers": {"content-type": "application/json"},
        "body": serde_json::json!({"error": {"type": "InternalError", "message": "internal error"}}).to_string(),
        "isBase64Encoded": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, content_type: Option<&str>, body: &str) -> ApiGatewayV2httpRequest {
        let mut event = serde_json::json!({
            "version": "2.0",
            "routeKey": "POST /x",
            "rawPath": "/x",
            "headers": {},
            "requestContext": {"http": {"method": method, "path": "/x"}},
            "body": body,
            "isBase64Encoded": false
        });
        if let Some(ct) = content_type {
            event["headers"]["content-type"] = ct.into();
        }
        serde_json::from_value(event).unwrap()
    }

    #[test]
    fn parses_a_good_body() {
        let r = request(
            "POST",
            Some("application/json; charset=utf-8"),
            r#"{"name":"a"}"#,
        );
        let input = json_body(&r, 100).unwrap();
        assert_eq!(input["name"], "a");
    }

    #[test]
    fn bad_requests_get_the_right_error() {
        let cases = [
            (request("POST", Some("text/plain"), "{}"), 415),
            (request("POST", None, "{}"), 415),
            (
                request("POST", Some("application/json"), &"x".repeat(101)),
                413,
            ),
            (request("POST", Some("application/json"), ""), 400),
            (request("POST", Some("application/json"), "{"), 400),
        ];
        for (r, status) in cases {
            let err = json_body(&r, 100).unwrap_err();
            assert_eq!(err.http_status(), status, "{err}");
        }
    }

    #[test]
    fn error_response_shape() {
        let resp = error_response(
            &TaskError::InvalidInput("`name` is missing".into()),
            &UsageTotals::default(),
        );
        assert_eq!(resp.status_code, 400);
        let Some(Body::Text(text)) = resp.body else {
            panic!("no body")
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["type"], "InvalidInput");
        assert_eq!(v["error"]["message"], "`name` is missing");
    }

    #[test]
    fn the_fallback_is_the_regular_internal_error_response() {
        let regular = into_event(&error_response(
            &TaskError::Internal("bug".into()),
            &UsageTotals::default(),
        ));
        let fallback = internal_error_event();
        for field in ["statusCode", "isBase64Encoded"] {
            assert_eq!(fallback[field], regular[field], "{field}");
        }
        assert_eq!(
            fallback["headers"]["content-type"],
            regular["headers"]["content-type"]
        );
        let body = |e: &Value| serde_json::from_str::<Value>(e["body"].as_str().unwrap()).unwrap();
        assert_eq!(body(&fallback), body(&regular));
    }
}
