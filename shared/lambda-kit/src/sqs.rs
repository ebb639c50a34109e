//! SQS batches whose messages carry S3 notifications (an event source mapping with
//! `FunctionResponseTypes: [ReportBatchItemFailures]`).
//!
//! Messages are handled one after another, each by the function's S3 handler with its
//! [`Delivery`] (the message id and its receive count). The answer lists the messages
//! that must come back (`{"batchItemFailures": [{"itemIdentifier": messageId}]}`); every
//! other message is deleted from the queue. Per message:
//! - an S3 notification: the handler's `Err` is a failure (the handler decides what is
//!   retried: a failure that is final for the document ends as its failure record and `Ok`);
//! - S3's `s3:TestEvent` (sent when a notification is configured): acknowledged;
//! - any other body: a failure, so it reaches the dead-letter queue after the queue's
//!   receives; logged with its id and what is wrong, its content only at DEBUG;
//! - a message not started because less than [`MESSAGE_START_RESERVE`] of the invocation
//!   is left: a failure, untouched.
//!
//! Failures come back after the queue's visibility timeout, or, when the function has a
//! [`Requeue`](crate::sqs_retry::Requeue), sooner: failed messages after a bounded
//! exponential backoff, unstarted ones at once (see [`crate::sqs_retry`]).
//!
//! Messages received most often go first, so that a message near its last receive is not
//! the one left unstarted behind long documents.

use std::cmp::Reverse;
use std::time::Duration;

use aws_lambda_events::s3::S3Event;
use bedrock::Deadline;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sqs_retry::{Return, Unfinished};
use crate::{Delivery, Function, TaskError};

/// A message is started only while at least this much of the invocation is left: about
/// what one document of ordinary size needs (reading it, a few model calls, writing its
/// record). Starting one with less would mostly spend model quota on a call that runs out
/// of time; the message waits for its visibility timeout instead.
pub const MESSAGE_START_RESERVE: Duration = Duration::from_secs(60);

/// An SQS event: the messages of one batch.
#[derive(Debug, Deserialize)]
pub(crate) struct SqsEvent {
    #[serde(rename = "Records")]
    records: Vec<Message>,
}

/// One message, as far as the kit reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    message_id: String,
    #[serde(default)]
    receipt_handle: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Debug, Default, Deserialize)]
struct Attributes {
    #[serde(rename = "ApproximateReceiveCount", default)]
    approximate_receive_count: Option<String>,
}

impl Message {
    fn receive_count(&self) -> Option<u32> {
        self.attributes
            .approximate_receive_count
            .as_deref()
            .and_then(|n| n.parse().ok())
    }
}

/// What a message's body holds.
enum Body {
    /// An S3 event notification.
    Notification(S3Event),
    /// S3's test message, sent when a notification configuration is set.
    TestEvent,
}

/// Whether `event` is an SQS event (its first record comes from `aws:sqs`).
pub(crate) fn is_sqs(event: &Value) -> bool {
    crate::trigger::records_come_from(event, "aws:sqs")
}

impl SqsEvent {
    /// Parses an event [`is_sqs`] recognised. A batch whose messages cannot all be named
    /// (no `messageId`) cannot be answered message by message: it fails as a whole.
    pub(crate) fn parse(event: Value) -> Result<Self, TaskError> {
        serde_json::from_value(event).map_err(|e| {
            TaskError::InvalidInput(format!(
                "malformed SQS event ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }
}

/// Handles a batch; answers with the messages that must come back, after asking the
/// queue to bring them back sooner when the function has a
/// [`Requeue`](crate::sqs_retry::Requeue).
pub(crate) async fn handle<F: Function>(
    function: &F,
    event: SqsEvent,
    deadline: Deadline,
) -> Value {
    let unfinished = handle_within(function, event, deadline, MESSAGE_START_RESERVE).await;
    if let Some(requeue) = function.requeue() {
        requeue.apply(&unfinished, deadline).await;
    }
    answer(&unfinished)
}

/// The batch answer: the unfinished messages by id.
fn answer(unfinished: &[Unfinished]) -> Value {
    let failures: Vec<Value> = unfinished
        .iter()
        .map(|m| json!({"itemIdentifier": m.id}))
        .collect();
    json!({ "batchItemFailures": failures })
}

/// Handles the messages; returns those that must come back.
async fn handle_within<F: Function>(
    function: &F,
    event: SqsEvent,
    deadline: Deadline,
    reserve: Duration,
) -> Vec<Unfinished> {
    let mut messages = event.records;
    messages.sort_by_key(|m| Reverse(m.receive_count()));
    let mut failures = Vec::new();
    for message in messages {
        let receive_count = message.receive_count();
        let id = message.message_id.as_str();
        let unfinished = |why| Unfinished {
            id: message.message_id.clone(),
            receipt_handle: message.receipt_handle.clone(),
            receive_count,
            why,
        };
        if deadline.remaining() < reserve {
            tracing::warn!(
                message_id = id,
                receive_count,
                "message not started: too little time left"
            );
            failures.push(unfinished(Return::NotStarted));
            continue;
        }
        let event = match body(&message) {
            Ok(Body::Notification(event)) => event,
            Ok(Body::TestEvent) => {
                tracing::info!(message_id = id, "S3 test event acknowledged");
                continue;
            }
            Err(reason) => {
                tracing::warn!(
                    message_id = id,
                    receive_count,
                    reason,
                    "message is not an S3 notification"
                );
                tracing::debug!(
                    message_id = id,
                    body = message.body.as_deref(),
                    "rejected message body"
                );
                failures.push(unfinished(Return::Failed));
                continue;
            }
        };
        let delivery = Delivery {
            id: Some(message.message_id.clone()),
            receive_count,
        };
        // Boxed: the SDK futures inside nest deeper than rustc's layout query limit.
        match Box::pin(function.s3(event, deadline, &delivery)).await {
            Ok(_) => {}
            Err(e) => {
                e.log();
                failures.push(unfinished(Return::Failed));
            }
        }
    }
    failures
}

/// Reads a message's body; the error says what is wrong without quoting it.
fn body(message: &Message) -> Result<Body, String> {
    let raw = message.body.as_deref().ok_or("no body")?;
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        format!(
            "not JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Body::TestEvent);
    }
    let from_s3 = value
        .get("Records")
        .and_then(Value::as_array)
        .filter(|records| !records.is_empty())
        .is_some_and(|records| {
            records
                .iter()
                .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:s3"))
        });
    if !from_s3 {
        return Err("no records from aws:s3".into());
    }
    serde_json::from_value(value)
        .map(Body::Notification)
        .map_err(|e| format!("malformed S3 notification ({:?} error)", e.classify()))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::sqs_retry::{Requeue, RetryBackoff};
    use crate::{Clients, Route};

    /// Test double: records each delivery; a key containing `retry` fails, and handling
    /// a message takes `work` of (paused) time.
    struct Recorder {
        seen: RefCell<Vec<(String, Delivery)>>,
        work: Duration,
        requeue: Option<Requeue>,
    }

    impl Function for Recorder {
        type Settings = crate::boundary::BoundarySettings;
        type Endpoint = ();
        const NAME: &'static str = "recorder";
        const ROUTES: &'static [Route<()>] = &[];

        fn build(_: &Clients, _: Self::Settings) -> Result<Self, settings::ConfigError> {
            Ok(recorder(Duration::ZERO))
        }

        fn max_request_bytes(&self) -> usize {
            1024
        }

        fn requeue(&self) -> Option<&Requeue> {
            self.requeue.as_ref()
        }

        async fn http(&self, (): (), _: Value, _: Deadline) -> Result<Value, TaskError> {
            Ok(Value::Null)
        }

        async fn task(&self, _: Value, _: Deadline) -> Result<Value, TaskError> {
            Ok(Value::Null)
        }

        async fn s3(
            &self,
            event: S3Event,
            _: Deadline,
            delivery: &Delivery,
        ) -> Result<Value, TaskError> {
            tokio::time::sleep(self.work).await;
            let key = event.records[0].s3.object.key.clone().unwrap_or_default();
            self.seen.borrow_mut().push((key.clone(), delivery.clone()));
            if key.contains("retry") {
                return Err(TaskError::Storage("try again".into()));
            }
            Ok(Value::Null)
        }
    }

    fn recorder(work: Duration) -> Recorder {
        Recorder {
            seen: RefCell::new(Vec::new()),
            work,
            requeue: None,
        }
    }

    /// The sample S3 notification, for object `key`.
    fn notification(key: &str) -> String {
        let mut event: Value =
            serde_json::from_str(include_str!("../../../events/summarize-document-s3.json"))
                .unwrap();
        event["Records"][0]["s3"]["object"]["key"] = key.into();
        event.to_string()
    }

    fn message(id: &str, body: &str, receives: u32) -> Value {
        json!({"messageId": id, "receiptHandle": format!("h-{id}"), "body": body,
               "attributes": {"ApproximateReceiveCount": receives.to_string()},
               "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q"})
    }

    fn batch(messages: Vec<Value>) -> SqsEvent {
        let event = json!({ "Records": messages });
        assert!(is_sqs(&event));
        SqsEvent::parse(event).unwrap()
    }

    fn failed(answer: &Value) -> Vec<&str> {
        answer["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap())
            .collect()
    }

    fn long_deadline() -> Deadline {
        Deadline::after(Duration::from_secs(600))
    }

    #[tokio::test]
    async fn only_failed_and_invalid_messages_come_back() {
        let f = recorder(Duration::ZERO);
        let answer = handle(
            &f,
            batch(vec![
                message("m1", &notification("incoming/a.txt"), 1),
                message("m2", &notification("incoming/retry.txt"), 2),
                message(
                    "m3",
                    r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"docs"}"#,
                    1,
                ),
                message("m4", "secret text, not JSON", 1),
                message("m5", r#"{"Records": [{"eventSource": "aws:sqs"}]}"#, 1),
                message(
                    "m6",
                    r#"{"Records": [{"eventSource": "aws:s3", "s3": 5}]}"#,
                    1,
                ),
            ]),
            long_deadline(),
        )
        .await;
        let mut failures = failed(&answer);
        failures.sort_unstable();
        assert_eq!(failures, ["m2", "m4", "m5", "m6"], "{answer}");
        let seen = f.seen.borrow();
        assert_eq!(seen.len(), 2, "only the notifications reach the handler");
        // The message received most often went first, with its id and count.
        assert_eq!(seen[0].0, "incoming/retry.txt");
        assert_eq!(
            seen[0].1,
            Delivery {
                id: Some("m2".into()),
                receive_count: Some(2)
            }
        );
        assert_eq!(seen[1].1.id.as_deref(), Some("m1"));
    }

    #[tokio::test]
    async fn an_all_good_batch_answers_an_empty_list() {
        let f = recorder(Duration::ZERO);
        let answer = handle(
            &f,
            batch(vec![message("m1", &notification("incoming/a.txt"), 1)]),
            long_deadline(),
        )
        .await;
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }

    #[tokio::test(start_paused = true)]
    async fn messages_left_without_time_are_not_started_and_come_back_at_once() {
        // Each message takes 40 s; 100 s left and a 30 s reserve: two start, one does not.
        let f = recorder(Duration::from_secs(40));
        let unfinished = handle_within(
            &f,
            batch(vec![
                message("m1", &notification("incoming/retry-m1"), 3),
                message("m2", &notification("incoming/m2"), 1),
                message("m3", &notification("incoming/m3"), 1),
            ]),
            Deadline::after(Duration::from_secs(100)),
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(failed(&answer(&unfinished)), ["m1", "m3"]);
        assert_eq!(f.seen.borrow().len(), 2);
        // With a requeue: the failed message (third receive) backs off, the unstarted one
        // is visible again at once.
        let requeue = Requeue::new(
            &testkit::sdk_config("http://127.0.0.1:9"),
            "http://127.0.0.1:9/1/uploads",
            RetryBackoff::new(10, 900),
        );
        let changes = requeue.changes(&unfinished, || 0.999_999);
        let changes: Vec<(&str, &str, u32)> = changes
            .iter()
            .map(|c| (c.id.as_str(), c.receipt_handle.as_str(), c.seconds))
            .collect();
        assert_eq!(changes, [("m1", "h-m1", 40), ("m3", "h-m3", 0)]);
    }

    #[tokio::test]
    async fn a_failed_visibility_change_leaves_the_answer_as_it_is() {
        // Nothing listens on the queue's endpoint: the change fails, the batch does not.
        let mut f = recorder(Duration::ZERO);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        f.requeue = Some(Requeue::new(
            &testkit::sdk_config(&endpoint),
            format!("{endpoint}/1/uploads"),
            RetryBackoff::new(30, 900),
        ));
        let answer = handle(
            &f,
            batch(vec![
                message("m1", &notification("incoming/retry.txt"), 1),
                message("m2", &notification("incoming/a.txt"), 1),
            ]),
            long_deadline(),
        )
        .await;
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
        );
    }

    #[tokio::test]
    async fn the_kit_routes_an_sqs_event_here_and_answers_its_shape() {
        let f = recorder(Duration::ZERO);
        let event = json!({"Records": [
            message("m1", &notification("incoming/retry.txt"), 1),
            message("m2", &notification("incoming/a.txt"), 1),
        ]});
        let answer = crate::handle(&f, event, long_deadline()).await.unwrap();
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
        );
        let err = crate::handle(
            &f,
            json!({"Records": [{"eventSource": "aws:sqs"}]}),
            long_deadline(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput");
    }

    #[test]
    fn a_batch_without_message_ids_fails_as_a_whole() {
        let event = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        assert!(is_sqs(&event));
        let err = SqsEvent::parse(event).unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput");
        let s3 = json!({"Records": [{"eventSource": "aws:s3"}]});
        assert!(!is_sqs(&s3));
    }

    #[test]
    fn a_missing_or_odd_receive_count_is_unknown() {
        let event = batch(vec![
            json!({"messageId": "a", "body": "{}", "eventSource": "aws:sqs"}),
            json!({"messageId": "b", "body": "{}", "eventSource": "aws:sqs",
                   "attributes": {"ApproximateReceiveCount": "x"}}),
        ]);
        assert!(event.records.iter().all(|m| m.receive_count().is_none()));
    }
}
