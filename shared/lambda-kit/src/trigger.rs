//! Telling apart the events one function receives: API Gateway, S3, SQS, or a plain task.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::s3::S3Event;
use serde_json::Value;

use crate::TaskError;
use crate::sqs::{SqsEvent, is_sqs};

/// What invoked the function; an event of a known shape that does not parse carries the
/// error, so that an HTTP caller still gets an HTTP answer.
#[derive(Debug)]
pub(crate) enum Trigger {
    /// An HTTP API (payload format 2.0) request.
    Http(Result<Box<ApiGatewayV2httpRequest>, TaskError>),
    /// An S3 notification with one or more records.
    S3(Result<S3Event, TaskError>),
    /// An SQS batch (of S3 notifications) from an event source mapping.
    Sqs(Result<SqsEvent, TaskError>),
    /// Anything else: a Step Functions task input or a direct invocation, as JSON.
    Task(Value),
}

impl Trigger {
    /// Classifies a raw event by its shape.
    pub(crate) fn classify(event: Value) -> Self {
        if is_http(&event) {
            return Self::Http(
                serde_json::from_value(event)
                    .map(Box::new)
                    .map_err(|e| TaskError::InvalidInput(format!("malformed HTTP API event: {e}"))),
            );
        }
        if is_s3(&event) {
            return Self::S3(
                serde_json::from_value(event)
                    .map_err(|e| TaskError::InvalidInput(format!("malformed S3 event: {e}"))),
            );
        }
        if is_sqs(&event) {
            return Self::Sqs(SqsEvent::parse(event));
        }
        Self::Task(event)
    }
}

/// An API Gateway event, whatever else is wrong with it: an HTTP API request context, a
/// payload 2.0 route key, or a REST API (payload 1.0) method. Such an event always gets an
/// HTTP answer (400 when it does not parse), never a function error API Gateway shows as 500.
fn is_http(event: &Value) -> bool {
    let context = event.get("requestContext");
    context.and_then(|c| c.get("http")).is_some()
        || (event.get("version").and_then(Value::as_str) == Some("2.0")
            && event.get("routeKey").is_some())
        || (context.is_some() && event.get("httpMethod").is_some())
}

fn is_s3(event: &Value) -> bool {
    records_come_from(event, "aws:s3")
}

/// Whether `event` has `Records` whose first record's `eventSource` is `source`.
pub(crate) fn records_come_from(event: &Value, source: &str) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some(source)
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
        let t = Trigger::classify(json!({"text": "hello"}));
        assert!(matches!(t, Trigger::Task(_)));
        let t = Trigger::classify(json!({"Records": []}));
        assert!(
            matches!(t, Trigger::Task(_)),
            "no records is not an S3 event"
        );
    }

    #[test]
    fn malformed_s3_event_is_invalid_input() {
        let t = Trigger::classify(json!({"Records": [{"eventSource": "aws:s3", "s3": 5}]}));
        assert!(matches!(t, Trigger::S3(Err(TaskError::InvalidInput(_)))));
        for malformed in [
            json!({"version": "1.0", "requestContext": {"http": 5}}),
            json!({"version": "2.0", "routeKey": "POST /x", "rawPath": "/x"}),
            json!({"resource": "/x", "httpMethod": "POST", "requestContext": {}}),
        ] {
            let t = Trigger::classify(malformed);
            assert!(matches!(t, Trigger::Http(Err(TaskError::InvalidInput(_)))));
        }
    }
}
