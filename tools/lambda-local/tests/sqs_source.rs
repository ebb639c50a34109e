//! SQS event source mappings against a real SQS endpoint (moto in server mode, from the
//! repository's `.venv`): batches within the batch size, at most the maximum concurrency
//! in flight, successful messages deleted, reported item failures received again and moved
//! to the dead-letter queue by the redrive policy, batch item failures ignored when the
//! mapping does not report them, a function error failing the whole batch.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use common::echo_bin;
use serde_json::{Value, json};

const VISIBILITY_TIMEOUT_SECONDS: u32 = 2;
const MAX_RECEIVE_COUNT: usize = 2;
const BATCH_SIZE: usize = 3;
const MAX_CONCURRENCY: i64 = 2;

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_server() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    path.is_file().then_some(path)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

async fn start_moto(binary: &Path) -> (Process, String) {
    let port = free_port();
    let child = Command::new(binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let process = Process(child);
    let up = common::eventually(Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(up, "moto_server listens on {port}");
    (process, format!("http://127.0.0.1:{port}"))
}

fn sqs(endpoint: &str) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

/// Creates `name` with a dead-letter queue `name-dlq` after `MAX_RECEIVE_COUNT` receives;
/// returns both URLs.
async fn queue_with_dlq(client: &Client, name: &str) -> (String, String) {
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("create DLQ");
    let dlq_url = dlq.queue_url().expect("DLQ URL").to_owned();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("DLQ attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("DLQ ARN");
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT});
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT_SECONDS.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("create queue");
    (queue.queue_url().expect("queue URL").to_owned(), dlq_url)
}

/// Messages visible plus in flight.
async fn depth(client: &Client, url: &str) -> usize {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    output
        .attributes()
        .into_iter()
        .flatten()
        .filter_map(|(_, value)| value.parse::<usize>().ok())
        .sum()
}

/// Sends each body; returns the message ids in order.
async fn send(client: &Client, url: &str, bodies: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for body in bodies {
        let output = client
            .send_message()
            .queue_url(url)
            .message_body(body.to_string())
            .send()
            .await
            .expect("send");
        ids.push(output.message_id().expect("message id").to_owned());
    }
    ids
}

/// The bodies' `n` of every message in `url` (a DLQ: nothing else reads it).
async fn numbers_in(client: &Client, url: &str) -> HashSet<u64> {
    let mut numbers = HashSet::new();
    loop {
        let output = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .expect("receive");
        if output.messages().is_empty() {
            return numbers;
        }
        for message in output.messages() {
            let body: Value =
                serde_json::from_str(message.body().unwrap_or_default()).expect("JSON body");
            numbers.insert(body["n"].as_u64().expect("n"));
        }
    }
}

/// A `start PID IDS` / `end PID` line of the echo fixture's track file.
enum Track {
    Start(Vec<String>),
    End,
}

fn track(path: &Path) -> Vec<Track> {
    common::marker_lines(path)
        .iter()
        .map(|line| {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("start"), Some(_pid), Some(ids)) => {
                    Track::Start(ids.split(',').map(str::to_owned).collect())
                }
                (Some("end"), Some(_pid), None) => Track::End,
                _ => panic!("unexpected track line {line:?}"),
            }
        })
        .collect()
}

/// How many times each message id was delivered.
fn deliveries(lines: &[Track]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in lines {
        if let Track::Start(ids) = line {
            for id in ids {
                *counts.entry(id.clone()).or_default() += 1;
            }
        }
    }
    counts
}

#[tokio::test]
async fn plays_an_sqs_event_source_mapping() {
    let Some(moto) = moto_server() else {
        eprintln!("SKIPPED: no .venv/bin/moto_server (create the repository's venv, as CI does)");
        return;
    };
    let (_moto, endpoint) = start_moto(&moto).await;
    let client = sqs(&endpoint);
    let (work_url, work_dlq) = queue_with_dlq(&client, "work").await;
    let (plain_url, plain_dlq) = queue_with_dlq(&client, "plain").await;
    let (broken_url, broken_dlq) = queue_with_dlq(&client, "broken").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let work_track = dir.path().join("work.track");
    let plain_track = dir.path().join("plain.track");
    let broken_track = dir.path().join("broken.track");
    let log = dir.path().join("lambda-local.log");

    let echo = echo_bin();
    let mut lambda_local = Command::new(env!("CARGO_BIN_EXE_lambda-local"));
    lambda_local
        .args(["--listen", "127.0.0.1:0"])
        .args(["--function", &format!("work={}", echo.display())])
        .args(["--function", &format!("plain={}", echo.display())])
        .args(["--concurrency", "work=4", "--timeout", "10"])
        .args(["--sqs-source", &format!("work={work_url}")])
        .args(["--sqs-batch-size", &format!("work={BATCH_SIZE}")])
        .args(["--sqs-max-concurrency", &format!("work={MAX_CONCURRENCY}")])
        .args(["--sqs-report-batch-item-failures", "work"])
        .args(["--sqs-source", &format!("plain={plain_url}")])
        .args(["--function", &format!("broken={}", echo.display())])
        .args(["--sqs-source", &format!("broken={broken_url}")])
        .args(["--sqs-report-batch-item-failures", "broken"])
        // The endpoint comes from the queue URL's host.
        .env_remove("AWS_ENDPOINT_URL_SQS")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"));
    let mut child = lambda_local.spawn().expect("lambda-local starts");
    let stdout = child.stdout.take().expect("stdout");
    let lambda_local = Process(child);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first)
        .expect("endpoint line");
    assert!(first.starts_with("http://127.0.0.1:"), "{first}");

    // Every third message reports itself as a batch item failure.
    let failing = |n: u64| n.is_multiple_of(3);
    let bodies: Vec<Value> = (0..12u64)
        .map(|n| json!({"n": n, "track": work_track, "sleep_ms": 200, "fail_item": failing(n)}))
        .collect();
    let work_ids = send(&client, &work_url, &bodies).await;
    let plain_bodies: Vec<Value> = (0..3u64)
        .map(|n| json!({"n": n, "track": plain_track, "fail_item": n == 1}))
        .collect();
    let plain_ids = send(&client, &plain_url, &plain_bodies).await;
    // A function error fails the whole batch: nothing is deleted.
    let broken_bodies: Vec<Value> = (0..2u64)
        .map(|n| json!({"n": n, "track": broken_track, "fail": "Boom"}))
        .collect();
    let broken_ids = send(&client, &broken_url, &broken_bodies).await;

    // Wait for the outcome (SQS's clock decides when failed messages come back).
    let mut settled = false;
    for _ in 0..600 {
        let work_done = depth(&client, &work_url).await == 0
            && depth(&client, &work_dlq).await == 4
            && depth(&client, &plain_url).await == 0
            && depth(&client, &broken_url).await == 0
            && depth(&client, &broken_dlq).await == 2;
        if work_done {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(settled, "queues did not settle");

    // The failed items, and only they, ended in the dead-letter queue.
    let expected: HashSet<u64> = (0..12).filter(|n| failing(*n)).collect();
    assert_eq!(numbers_in(&client, &work_dlq).await, expected);
    assert!(numbers_in(&client, &plain_dlq).await.is_empty());
    assert_eq!(
        numbers_in(&client, &broken_dlq).await,
        HashSet::from([0, 1])
    );
    let broken_counts = deliveries(&track(&broken_track));
    for id in &broken_ids {
        let delivered = broken_counts.get(id).copied().unwrap_or(0);
        assert!(
            delivered >= MAX_RECEIVE_COUNT,
            "broken message {id}: {delivered}"
        );
    }

    let lines = track(&work_track);
    let mut running = 0i64;
    let mut most = 0i64;
    for line in &lines {
        match line {
            Track::Start(ids) => {
                assert!(ids.len() <= BATCH_SIZE, "batch of {}", ids.len());
                running += 1;
                most = most.max(running);
            }
            Track::End => running -= 1,
        }
    }
    assert!(
        most <= MAX_CONCURRENCY,
        "{most} invocations ran at once, the mapping allows {MAX_CONCURRENCY}"
    );
    let counts = deliveries(&lines);
    for (n, id) in work_ids.iter().enumerate() {
        let delivered = counts.get(id).copied().unwrap_or(0);
        if failing(n as u64) {
            // Received, failed, back after the visibility timeout, failed again: redriven.
            assert!(delivered >= MAX_RECEIVE_COUNT, "message {n}: {delivered}");
        } else {
            assert!(delivered >= 1, "message {n} never delivered");
        }
    }
    // Without ReportBatchItemFailures the answer is not read: the whole batch is deleted.
    let plain_counts = deliveries(&track(&plain_track));
    for id in &plain_ids {
        assert!(
            plain_counts.contains_key(id),
            "plain message {id} never delivered"
        );
    }

    // The per-mapping counts, from the shutdown summary.
    drop(lambda_local);
    let log = std::fs::read_to_string(&log).expect("log");
    let stats = |function: &str| -> HashMap<String, u64> {
        let prefix = format!("{function}: SQS source: ");
        let line = log
            .lines()
            .find_map(|line| line.split_once(&prefix).map(|(_, rest)| rest.to_owned()))
            .unwrap_or_else(|| panic!("no summary for {function} in\n{log}"));
        line.split(", ")
            .filter_map(|part| part.split_once(' '))
            .map(|(n, what)| (what.to_owned(), n.parse().expect("count")))
            .collect()
    };
    let work = stats("work");
    // At least: a message whose visibility timeout ran out in flight is received again.
    assert!(work["deleted"] >= 8, "{work:?}");
    assert!(work["failed items"] >= 8, "{work:?}");
    assert_eq!(work["failed batches"], 0, "{work:?}");
    let plain = stats("plain");
    assert!(plain["deleted"] >= 3, "{plain:?}");
    let broken = stats("broken");
    assert_eq!(broken["deleted"], 0, "{broken:?}");
    assert!(broken["failed batches"] >= 2, "{broken:?}");
}
