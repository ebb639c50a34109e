//! Telling apart the events one function receives: API Gateway, S3, or a plain task.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::s3::S3Event;
use serde_json::Value;

use crate::TaskError;

/// What invoked the function.
#[derive(Debug)]
pub enum Trigger {
    /// An HTTP API (payload format 2.0) request.
    Http(Box<ApiGatewayV2httpRequest>),
    /// An S3 notification with one or more records.
    S3(S3Event),
    /// Anything else: a Step Functions task input or a direct invocation, as JSON.
    Task(Value),
}

impl Trigger {
    /// Classifies a raw event by its shape.
    pub fn classify(event: Value) -> Result<Self, TaskError> {
        if is_http(&event) {
            return serde_json::from_value(event)
                .map(|r| Self::Http(Box::new(r)))
                .map_err(|e| TaskError::InvalidInput(format!("malformed HTTP API event: {e}")));
        }
        if is_s3(&event) {
            return serde_json::from_value(event)
                .map(Self::S3)
                .map_err(|e| TaskError::InvalidInput(format!("malformed S3 event: {e}")));
        }
        Ok(Self::Task(event))
    }
}

fn is_http(event: &Value) -> bool {
    event.get("version").and_then(Value::as_str) == Some("2.0")
        && event
            .get("requestContext")
            .and_then(|c| c.get("http"))
            .is_some()
}

fn is_s3(event: &Value) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:s3")
}

/// Decodes an S3 event key: `+` is a space and `%XX` are UTF-8 bytes.
pub fn decode_s3_key(raw: &str) -> Result<String, TaskError> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| {
            TaskError::InvalidInput(format!("S3 key {raw:?} is not valid UTF-8 once decoded"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_decode_plus_and_utf8() {
        assert_eq!(
            decode_s3_key("incoming/my+report%281%29.pdf").unwrap(),
            "incoming/my report(1).pdf"
        );
        assert_eq!(
            decode_s3_key("in/%C3%BCber+uns.txt").unwrap(),
            "in/über uns.txt"
        );
        assert_eq!(decode_s3_key("in/a%2Bb.txt").unwrap(), "in/a+b.txt");
        assert!(decode_s3_key("in/%FF.txt").is_err());
    }

    #[test]
    fn classifies_task_input() {
        let t = Trigger::classify(json!({"text": "hello"})).unwrap();
        assert!(matches!(t, Trigger::Task(_)));
        let t = Trigger::classify(json!({"Records": []})).unwrap();
        assert!(
            matches!(t, Trigger::Task(_)),
            "no records is not an S3 event"
        );
    }

    #[test]
    fn malformed_s3_event_is_invalid_input() {
        let err = Trigger::classify(json!({"Records": [{"eventSource": "aws:s3", "s3": 5}]}))
            .unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput");
    }
}
