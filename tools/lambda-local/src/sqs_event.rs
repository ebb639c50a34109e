//! The SQS event Lambda hands a function (`{"Records": [...]}`), and how Lambda reads the
//! function's answer when the mapping reports batch item failures.

use std::collections::HashSet;

use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// One received message as it goes into the event, with what deleting it needs.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// `messageId`: what `batchItemFailures[].itemIdentifier` names.
    pub(crate) message_id: String,
    /// For `DeleteMessageBatch`.
    pub(crate) receipt_handle: String,
    /// The record's JSON text, as it goes into `Records`.
    pub(crate) json: String,
}

impl Record {
    /// The record Lambda builds from `message` of the queue `queue_arn` in `region`.
    pub(crate) fn new(message: &Message, queue_arn: &str, region: &str) -> Self {
        let message_id = message.message_id().unwrap_or_default().to_owned();
        let receipt_handle = message.receipt_handle().unwrap_or_default().to_owned();
        let attributes: Map<String, Value> = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.clone())))
            .collect();
        let message_attributes: Map<String, Value> = message
            .message_attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.clone(), message_attribute(value)))
            .collect();
        let mut record = json!({
            "messageId": message_id,
            "receiptHandle": receipt_handle,
            "body": message.body().unwrap_or_default(),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.md5_of_body().unwrap_or_default(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        });
        if let Some(md5) = message.md5_of_message_attributes() {
            record["md5OfMessageAttributes"] = Value::String(md5.to_owned());
        }
        Self {
            message_id,
            receipt_handle,
            json: record.to_string(),
        }
    }
}

/// A message attribute as Lambda writes it: both list fields always present, binaries in
/// base64.
fn message_attribute(value: &MessageAttributeValue) -> Value {
    let mut attribute = json!({
        "stringListValues": value.string_list_values(),
        "binaryListValues": value
            .binary_list_values()
            .iter()
            .map(|blob| STANDARD.encode(blob.as_ref()))
            .collect::<Vec<_>>(),
        "dataType": value.data_type(),
    });
    if let Some(text) = value.string_value() {
        attribute["stringValue"] = Value::String(text.to_owned());
    }
    if let Some(blob) = value.binary_value() {
        attribute["binaryValue"] = Value::String(STANDARD.encode(blob.as_ref()));
    }
    attribute
}

/// Bytes of `{"Records":[` and `]}` around the records.
const ENVELOPE_BYTES: usize = r#"{"Records":[]}"#.len();

/// The size in bytes of the event holding `records`.
pub(crate) fn event_size(records: &[Record]) -> usize {
    let commas = records.len().saturating_sub(1);
    ENVELOPE_BYTES + commas + records.iter().map(|r| r.json.len()).sum::<usize>()
}

/// The event: `{"Records":[...]}`.
pub(crate) fn event(records: &[Record]) -> String {
    let mut event = String::with_capacity(event_size(records));
    event.push_str(r#"{"Records":["#);
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            event.push(',');
        }
        event.push_str(&record.json);
    }
    event.push_str("]}");
    event
}

/// What a successful invocation's response says about the batch, with
/// `ReportBatchItemFailures` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchResponse {
    /// Every message succeeded (no response, `{}`, or an empty or null `batchItemFailures`).
    AllSucceeded,
    /// These message ids failed; the others succeeded.
    ItemsFailed(HashSet<String>),
    /// Lambda treats the whole batch as failed: why.
    Invalid(&'static str),
}

/// Reads `{"batchItemFailures":[{"itemIdentifier": ID}, ...]}` as Lambda does: an empty,
/// null or missing list is a complete success; a response that is not JSON (or is JSON but
/// neither an object nor null), an entry without a string `itemIdentifier`, an empty one or
/// one naming no message of the batch fails the whole batch.
pub(crate) fn batch_response(body: &[u8], batch_ids: &HashSet<&str>) -> BatchResponse {
    if body.iter().all(u8::is_ascii_whitespace) {
        return BatchResponse::AllSucceeded;
    }
    let response = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Null) => return BatchResponse::AllSucceeded,
        Ok(Value::Object(response)) => response,
        Ok(_) => return BatchResponse::Invalid("the response is not a JSON object"),
        Err(_) => return BatchResponse::Invalid("the response is not JSON"),
    };
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return BatchResponse::AllSucceeded,
        Some(Value::Array(failures)) => failures,
        Some(_) => return BatchResponse::Invalid("batchItemFailures is not a list"),
    };
    let mut failed = HashSet::new();
    for failure in failures {
        let Some(id) = failure.get("itemIdentifier").and_then(Value::as_str) else {
            return BatchResponse::Invalid("a batch item failure has no itemIdentifier string");
        };
        if id.is_empty() {
            return BatchResponse::Invalid("a batch item failure has an empty itemIdentifier");
        }
        if !batch_ids.contains(id) {
            return BatchResponse::Invalid("an itemIdentifier names no message of the batch");
        }
        failed.insert(id.to_owned());
    }
    if failed.is_empty() {
        BatchResponse::AllSucceeded
    } else {
        BatchResponse::ItemsFailed(failed)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    use super::*;

    fn message() -> Message {
        Message::builder()
            .message_id("059f36b4-87a3-44ab-83d2-661975830a7d")
            .receipt_handle("AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a")
            .body("Test message.")
            .md5_of_body("e4e68fb7bd0e697a0ae8f1bb342846b3")
            .set_attributes(Some(HashMap::from([
                (
                    MessageSystemAttributeName::ApproximateReceiveCount,
                    "1".to_owned(),
                ),
                (
                    MessageSystemAttributeName::SentTimestamp,
                    "1545082649183".to_owned(),
                ),
                (
                    MessageSystemAttributeName::SenderId,
                    "AIDAIENQZJOLO23YVJ4VO".to_owned(),
                ),
                (
                    MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                    "1545082649185".to_owned(),
                ),
            ])))
            .build()
    }

    #[test]
    fn records_have_lambdas_shape() {
        let arn = "arn:aws:sqs:us-east-2:123456789012:my-queue";
        let record = Record::new(&message(), arn, "us-east-2");
        assert_eq!(record.message_id, "059f36b4-87a3-44ab-83d2-661975830a7d");
        assert_eq!(record.receipt_handle, "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a");
        let event: Value = serde_json::from_str(&event(&[record])).expect("JSON");
        // Lambda's own sample event for SQS, field for field.
        let expected = json!({"Records": [{
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
            "body": "Test message.",
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1545082649183",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1545082649185"
            },
            "messageAttributes": {},
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
            "awsRegion": "us-east-2"
        }]});
        assert_eq!(event, expected);
    }

    #[test]
    fn message_attributes_are_written_as_lambda_does() {
        let text = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("myValue")
            .build()
            .expect("attribute");
        let binary = MessageAttributeValue::builder()
            .data_type("Binary")
            .binary_value(Blob::new("1100"))
            .build()
            .expect("attribute");
        let message = Message::builder()
            .message_id("m")
            .body("b")
            .md5_of_message_attributes("abc")
            .message_attributes("myAttribute", text)
            .message_attributes("bin", binary)
            .build();
        let record: Value =
            serde_json::from_str(&Record::new(&message, "arn", "r").json).expect("JSON");
        assert_eq!(
            record["messageAttributes"]["myAttribute"],
            json!({"stringValue": "myValue", "stringListValues": [], "binaryListValues": [],
                   "dataType": "String"})
        );
        assert_eq!(
            record["messageAttributes"]["bin"]["binaryValue"],
            json!("MTEwMA==")
        );
        assert_eq!(record["md5OfMessageAttributes"], "abc");
    }

    #[test]
    fn event_size_is_the_events_length() {
        let records: Vec<Record> = (0..3)
            .map(|_| Record::new(&message(), "arn", "r"))
            .collect();
        assert_eq!(event_size(&records), event(&records).len());
        assert_eq!(event_size(&[]), event(&[]).len());
    }

    #[test]
    fn reads_batch_item_failures_as_lambda_does() {
        let ids = HashSet::from(["a", "b", "c"]);
        let read = |body: &str| batch_response(body.as_bytes(), &ids);
        for success in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
            r#"{"other":1}"#,
        ] {
            assert_eq!(read(success), BatchResponse::AllSucceeded, "{success}");
        }
        assert_eq!(
            read(r#"{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"c"}]}"#),
            BatchResponse::ItemsFailed(HashSet::from(["b".to_owned(), "c".to_owned()]))
        );
        for invalid in [
            "not json",
            "[]",
            r#""ok""#,
            r#"{"batchItemFailures":{"itemIdentifier":"a"}}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemId":"a"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"zzz"}]}"#,
        ] {
            assert!(
                matches!(read(invalid), BatchResponse::Invalid(_)),
                "{invalid} accepted"
            );
        }
    }
}
