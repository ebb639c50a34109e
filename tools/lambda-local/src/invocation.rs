//! One invocation on its way to a function process, and how it ended.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

/// An invocation as the Runtime API hands it to a function process.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id` (and the invoke response's `x-amzn-RequestId`).
    pub(crate) request_id: String,
    /// The event, JSON.
    pub(crate) payload: Bytes,
    /// `Lambda-Runtime-Trace-Id`.
    pub(crate) trace_id: String,
    /// Where a streamed response goes as it arrives (a function URL in `RESPONSE_STREAM`
    /// mode); without it a streamed response is buffered like any other.
    pub(crate) stream: Option<mpsc::Sender<Bytes>>,
}

impl Invocation {
    /// A new invocation with a fresh request id and trace id.
    pub(crate) fn new(payload: Bytes) -> Self {
        Self {
            request_id: uuid::Uuid::new_v4().to_string(),
            payload,
            trace_id: trace_id(),
            stream: None,
        }
    }
}

/// An X-Ray style trace header: `Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
pub(crate) fn trace_id() -> String {
    let epoch = crate::clock::epoch_secs(std::time::SystemTime::now());
    let random = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    let root = random.get(..24).unwrap_or(&random);
    let parent = parent.get(..16).unwrap_or(&parent);
    format!("Root=1-{epoch:08x}-{root};Parent={parent};Sampled=0")
}

/// A failed invocation as Lambda reports it: the error type and the JSON body callers get.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FunctionError {
    /// `errorType`, e.g. `Sandbox.Timedout` or the function's own.
    pub(crate) error_type: String,
    /// `{"errorType", "errorMessage", ...}`.
    pub(crate) body: Bytes,
}

impl FunctionError {
    /// An error raised by Lambda itself (timeout, crash, oversized response).
    pub(crate) fn platform(error_type: &str, message: String) -> Self {
        let body = json!({ "errorType": error_type, "errorMessage": message });
        Self {
            error_type: error_type.to_owned(),
            body: Bytes::from(body.to_string()),
        }
    }

    /// An error posted by the runtime to `/error` or `/init/error`: the body is passed on
    /// when it is a JSON object (as Lambda does); anything else is wrapped.
    pub(crate) fn from_runtime(body: Bytes, header_type: Option<&str>) -> Self {
        let fallback_type = header_type
            .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("unhandled"))
            .unwrap_or("Runtime.Unknown");
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(object)) => {
                let error_type = object
                    .get("errorType")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or(fallback_type)
                    .to_owned();
                Self { error_type, body }
            }
            _ => Self::platform(fallback_type, String::from_utf8_lossy(&body).into_owned()),
        }
    }

    /// `Sandbox.Timedout`, worded as Lambda words it.
    pub(crate) fn timed_out(request_id: &str, after: Duration, what: &str) -> Self {
        Self::platform(
            "Sandbox.Timedout",
            format!(
                "RequestId: {request_id} Error: {what} timed out after {:.2} seconds",
                after.as_secs_f64()
            ),
        )
    }

    /// `Runtime.ExitError`: the process ended before answering.
    pub(crate) fn exited(request_id: &str, reason: &str) -> Self {
        Self::platform(
            "Runtime.ExitError",
            format!("RequestId: {request_id} Error: {reason}"),
        )
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The function's response body.
    Success(Bytes),
    /// A function or platform error (`X-Amz-Function-Error: Unhandled`).
    Failed(FunctionError),
    /// The server is shutting down and did not run it.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_errors_keep_their_body_or_get_wrapped() {
        let body = Bytes::from_static(br#"{"errorType":"Boom","errorMessage":"no"}"#);
        let error = FunctionError::from_runtime(body.clone(), Some("unhandled"));
        assert_eq!(error.error_type, "Boom");
        assert_eq!(error.body, body);
        let error = FunctionError::from_runtime(Bytes::from_static(b"oops"), Some("X.Y"));
        assert_eq!(error.error_type, "X.Y");
        let value: serde_json::Value = serde_json::from_slice(&error.body).expect("json");
        assert_eq!(value["errorMessage"], "oops");
        let error = FunctionError::from_runtime(Bytes::new(), None);
        assert_eq!(error.error_type, "Runtime.Unknown");
    }

    #[test]
    fn trace_ids_are_shaped_like_xray() {
        let id = trace_id();
        assert!(id.starts_with("Root=1-"), "{id}");
        assert!(id.ends_with(";Sampled=0"), "{id}");
        assert_eq!(
            id.len(),
            "Root=1-".len() + 8 + 1 + 24 + ";Parent=".len() + 16 + 10
        );
    }
}
