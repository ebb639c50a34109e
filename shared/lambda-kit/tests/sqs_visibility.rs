//! Batch item failures come back sooner than the queue's visibility timeout, against a real
//! SQS endpoint (moto in server mode, from the repository's `.venv`): messages are sent,
//! received as Lambda's poller does (visibility 900 s), answered through `lambda_kit::handle`
//! by a function with a `Requeue`, and the succeeded one deleted as the poller would. The
//! failed message and the one left unstarted are then received again (receive count 2);
//! without the visibility change neither could be for 900 s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_lambda_events::s3::S3Event;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use bedrock::Deadline;
use lambda_kit::sqs_retry::{Requeue, RetryBackoff};
use lambda_kit::{Clients, Delivery, Function, Route, TaskError};
use serde_json::{Value, json};

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_server() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    path.is_file().then_some(path)
}

async fn start_moto(binary: &Path) -> (Process, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let process = Process(child);
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (process, format!("http://127.0.0.1:{port}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server does not listen on {port}");
}

/// Summarizes nothing: a notification whose key contains `retry` fails.
struct Consumer {
    requeue: Requeue,
}

impl Function for Consumer {
    type Settings = lambda_kit::boundary::BoundarySettings;
    type Endpoint = ();
    const NAME: &'static str = "consumer";
    const ROUTES: &'static [Route<()>] = &[];

    fn build(_: &Clients, _: Self::Settings) -> Result<Self, settings::ConfigError> {
        unreachable!("built by the test")
    }

    fn max_request_bytes(&self) -> usize {
        1024
    }

    fn requeue(&self) -> Option<&Requeue> {
        Some(&self.requeue)
    }

    async fn http(&self, (): (), _: Value, _: Deadline) -> Result<Value, TaskError> {
        Ok(Value::Null)
    }

    async fn task(&self, _: Value, _: Deadline) -> Result<Value, TaskError> {
        Ok(Value::Null)
    }

    async fn s3(&self, event: S3Event, _: Deadline, _: &Delivery) -> Result<Value, TaskError> {
        let key = event.records[0].s3.object.key.clone().unwrap_or_default();
        if key.contains("retry") {
            return Err(TaskError::Storage("try again".into()));
        }
        Ok(Value::Null)
    }
}

fn notification(key: &str) -> String {
    let mut event: Value =
        serde_json::from_str(include_str!("../../../events/summarize-document-s3.json")).unwrap();
    event["Records"][0]["s3"]["object"]["key"] = key.into();
    event.to_string()
}

/// Lambda's SQS event for `messages`, as its poller builds it.
fn sqs_event(messages: &[&Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .cloned()
                .unwrap_or_default();
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                   "body": m.body(), "attributes": {"ApproximateReceiveCount": count},
                   "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads"})
        })
        .collect();
    json!({ "Records": records })
}

/// Receives whatever is visible, waiting up to `wait_seconds`: key -> the message.
async fn receive(client: &Client, url: &str, wait_seconds: i32) -> HashMap<String, Message> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive");
    out.messages()
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap();
            let key = body["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (key, m.clone())
        })
        .collect()
}

fn receive_count(message: &Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn failed_and_unstarted_messages_come_back_before_the_visibility_timeout() {
    let Some(moto) = moto_server() else {
        eprintln!("SKIPPED: no .venv/bin/moto_server (create the repository's venv, as CI does)");
        return;
    };
    let (_moto, endpoint) = start_moto(&moto).await;
    let sdk = testkit::sdk_config(&endpoint);
    let client = Client::new(&sdk);
    let url = client
        .create_queue()
        .queue_name("uploads")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "900",
        )
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let keys = ["incoming/ok.txt", "incoming/retry.txt", "incoming/late.txt"];
    for key in keys {
        client
            .send_message()
            .queue_url(&url)
            .message_body(notification(key))
            .send()
            .await
            .expect("send");
    }
    let mut first = HashMap::new();
    for _ in 0..10 {
        first.extend(receive(&client, &url, 1).await);
        if first.len() == keys.len() {
            break;
        }
    }
    assert_eq!(first.len(), keys.len(), "all three received once");

    let consumer = Consumer {
        requeue: Requeue::new(&sdk, url.clone(), RetryBackoff::new(1, 1)),
    };
    // One batch with time: `ok` succeeds, `retry` fails and backs off 1 s.
    let answer = lambda_kit::handle(
        &consumer,
        sqs_event(&[&first["incoming/ok.txt"], &first["incoming/retry.txt"]]),
        Deadline::after(Duration::from_secs(600)),
    )
    .await
    .unwrap();
    let retry_id = first["incoming/retry.txt"].message_id().unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": retry_id}]})
    );
    // The poller deletes the message the answer does not list.
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(first["incoming/ok.txt"].receipt_handle().unwrap())
        .send()
        .await
        .expect("delete");
    // One batch with too little time left (under the 60 s start reserve): not started.
    let late = &first["incoming/late.txt"];
    let answer = lambda_kit::handle(
        &consumer,
        sqs_event(&[late]),
        Deadline::after(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": late.message_id().unwrap()}]})
    );

    let mut again = HashMap::new();
    for _ in 0..10 {
        again.extend(receive(&client, &url, 5).await);
        if again.len() == 2 {
            break;
        }
    }
    let mut back: Vec<(&str, u32)> = again
        .iter()
        .map(|(key, m)| (key.as_str(), receive_count(m)))
        .collect();
    back.sort_unstable();
    assert_eq!(
        back,
        [("incoming/late.txt", 2), ("incoming/retry.txt", 2)],
        "the failed and the unstarted message come back, the done one does not"
    );
}
