//! Plays an SQS event source mapping: pollers long-poll the queue with the real SQS API,
//! gather a batch, invoke the function synchronously through its worker pool (the Invoke
//! API's path: same timeouts, workers and logs) and delete what succeeded. Failed messages
//! are left alone: they come back after the queue's visibility timeout, and SQS's redrive
//! policy moves them to the dead-letter queue after `maxReceiveCount` receives.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::Region;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::functions::{Functions, MAX_SYNC_PAYLOAD};
use crate::invocation::{Invocation, Outcome};
use crate::sqs_event::{BatchResponse, Record, batch_response, event, event_size};
use crate::sqs_source::{QueueUrl, SqsSource};
use crate::stats::SqsCounters;

/// SQS's longest long poll.
const LONG_POLL_SECONDS: i32 = 20;
/// SQS's most messages per receive or delete call.
const SQS_MAX_MESSAGES: usize = 10;
/// First pause after a failed receive; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Pause between short polls that found nothing while a batching window is open.
const SHORT_POLL_PAUSE: Duration = Duration::from_millis(100);

/// What one mapping's pollers share.
struct Mapping {
    source: SqsSource,
    client: Client,
    queue_arn: String,
    region: String,
    functions: Arc<Functions>,
    counters: Arc<SqsCounters>,
}

/// Starts the pollers of `source`: as many as its maximum concurrency allows, and never
/// more than the function's workers, so at most that many invocations are in flight.
pub(crate) async fn start(
    source: SqsSource,
    functions: Arc<Functions>,
    counters: Arc<SqsCounters>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let queue = QueueUrl::parse(&source.queue_url)?;
    let workers = functions
        .pools
        .get(&source.function)
        .map(|pool| pool.spec.config.concurrency)
        .ok_or_else(|| format!("`{}` is not a served function", source.function))?;
    let client = client(&queue, &functions.region).await;
    let region = queue
        .region
        .clone()
        .or_else(|| client.config().region().map(ToString::to_string))
        .unwrap_or_else(|| functions.region.clone());
    let cap = source
        .maximum_concurrency
        .map_or(usize::MAX, |maximum| maximum as usize);
    let pollers = workers.min(cap);
    tracing::info!(
        "{}: polling {} (batch size {}, batching window {} s, {pollers} concurrent \
         invocations at most, ReportBatchItemFailures {})",
        source.function,
        source.queue_url,
        source.batch_size,
        source.batching_window.as_secs(),
        if source.report_batch_item_failures {
            "on"
        } else {
            "off"
        }
    );
    let mapping = Arc::new(Mapping {
        queue_arn: queue.arn(&region),
        region,
        source,
        client,
        functions,
        counters,
    });
    Ok((0..pollers)
        .map(|_| {
            let poller = Poller {
                mapping: Arc::clone(&mapping),
                shutdown: shutdown.clone(),
                pending: VecDeque::new(),
                backoff: FIRST_BACKOFF,
            };
            tokio::spawn(poller.run())
        })
        .collect())
}

/// The SQS client: the standard configuration chain (credentials, region,
/// `AWS_ENDPOINT_URL_SQS`), with the queue URL's host as endpoint when no endpoint is
/// configured and lambda-local's region when none is.
async fn client(queue: &QueueUrl, default_region: &str) -> Client {
    let http = Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let mut config = aws_sdk_sqs::config::Builder::from(&sdk);
    if sdk.region().is_none() {
        config = config.region(Region::new(default_region.to_owned()));
    }
    let configured = ["AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    if !configured {
        config = config.endpoint_url(&queue.origin);
    }
    Client::from_conf(config.build())
}

/// What a receive call gave.
enum Received {
    Records(Vec<Record>),
    Failed,
    Shutdown,
}

/// One poller: gathers a batch, invokes, settles, again.
struct Poller {
    mapping: Arc<Mapping>,
    shutdown: watch::Receiver<bool>,
    /// Received messages that did not fit in the last batch (the 6 MB payload limit).
    pending: VecDeque<Record>,
    backoff: Duration,
}

impl Poller {
    async fn run(mut self) {
        while let Some(batch) = self.gather().await {
            if !self.invoke(batch).await {
                return;
            }
        }
    }

    /// The next batch: long-polls for the first messages, then fills the batch until it
    /// holds `batch_size` messages, reaches the payload limit or the window closes. `None`
    /// on shutdown (the messages held come back after their visibility timeout).
    async fn gather(&mut self) -> Option<Vec<Record>> {
        let batch_size = self.mapping.source.batch_size as usize;
        let mut batch = Vec::new();
        self.fill(&mut batch);
        while batch.is_empty() {
            match self.receive(batch_size, LONG_POLL_SECONDS).await {
                Received::Records(records) => {
                    self.pending.extend(records);
                    self.fill(&mut batch);
                }
                Received::Failed => self.pause().await?,
                Received::Shutdown => return None,
            }
        }
        let window_end = Instant::now() + self.mapping.source.batching_window;
        while batch.len() < batch_size && self.pending.is_empty() {
            let left = window_end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let wait = i32::try_from(left.as_secs())
                .map_or(LONG_POLL_SECONDS, |s| s.min(LONG_POLL_SECONDS));
            match self.receive(batch_size - batch.len(), wait).await {
                Received::Records(records) if records.is_empty() && wait == 0 => {
                    self.sleep(left.min(SHORT_POLL_PAUSE)).await?;
                }
                Received::Records(records) => {
                    self.pending.extend(records);
                    self.fill(&mut batch);
                }
                Received::Failed => break,
                Received::Shutdown => return None,
            }
        }
        Some(batch)
    }

    /// Moves pending messages into `batch` while they fit (the first always does).
    fn fill(&mut self, batch: &mut Vec<Record>) {
        let batch_size = self.mapping.source.batch_size as usize;
        let mut size = event_size(batch);
        while batch.len() < batch_size
            && let Some(record) = self.pending.front()
        {
            let grown = size + record.json.len() + usize::from(!batch.is_empty());
            if !batch.is_empty() && grown > MAX_SYNC_PAYLOAD {
                break;
            }
            size = grown;
            batch.extend(self.pending.pop_front());
        }
    }

    /// One `ReceiveMessage` call for up to `wanted` messages (10 at most), with every
    /// system and message attribute.
    async fn receive(&mut self, wanted: usize, wait_seconds: i32) -> Received {
        if *self.shutdown.borrow() {
            return Received::Shutdown;
        }
        let mapping = Arc::clone(&self.mapping);
        let max = i32::try_from(wanted.clamp(1, SQS_MAX_MESSAGES)).unwrap_or(1);
        let call = mapping
            .client
            .receive_message()
            .queue_url(&mapping.source.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send();
        let result = tokio::select! {
            biased;
            _ = self.shutdown.changed() => return Received::Shutdown,
            result = call => result,
        };
        match result {
            Ok(output) => {
                self.backoff = FIRST_BACKOFF;
                Received::Records(
                    output
                        .messages()
                        .iter()
                        .map(|message| Record::new(message, &mapping.queue_arn, &mapping.region))
                        .collect(),
                )
            }
            Err(error) => {
                SqsCounters::add(&mapping.counters.sqs_errors, 1);
                tracing::warn!(
                    "{}: cannot receive from {}: {}",
                    mapping.source.function,
                    mapping.source.queue_url,
                    DisplayErrorContext(&error)
                );
                Received::Failed
            }
        }
    }

    /// Waits out the backoff after a failed receive and doubles it; `None` on shutdown.
    async fn pause(&mut self) -> Option<()> {
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.sleep(delay).await
    }

    /// Sleeps; `None` when the server shuts down first.
    async fn sleep(&mut self, delay: Duration) -> Option<()> {
        if *self.shutdown.borrow() {
            return None;
        }
        tokio::select! {
            biased;
            _ = self.shutdown.changed() => None,
            () = tokio::time::sleep(delay) => Some(()),
        }
    }

    /// Invokes the function with `batch` and deletes what succeeded; `false` when the
    /// server is shutting down.
    async fn invoke(&mut self, batch: Vec<Record>) -> bool {
        let mapping = Arc::clone(&self.mapping);
        let name = &mapping.source.function;
        let Some(pool) = mapping.functions.pools.get(name) else {
            return false;
        };
        let counters = &mapping.counters;
        SqsCounters::add(&counters.batches, 1);
        SqsCounters::add(&counters.messages, batch.len());
        let invocation = Invocation::new(Bytes::from(event(&batch)));
        let request_id = invocation.request_id.clone();
        let delete: Vec<&Record> = match pool.invoke(invocation).await {
            Outcome::Unavailable => return false,
            Outcome::Failed(error) => {
                tracing::info!(
                    "{name}: SQS batch of {} failed ({}, request {request_id}); its messages \
                     return after the visibility timeout",
                    batch.len(),
                    error.error_type
                );
                SqsCounters::add(&counters.failed_batches, 1);
                SqsCounters::add(&counters.failed_items, batch.len());
                Vec::new()
            }
            Outcome::Success(_) if !mapping.source.report_batch_item_failures => {
                batch.iter().collect()
            }
            Outcome::Success(body) => {
                let ids: HashSet<&str> = batch.iter().map(|r| r.message_id.as_str()).collect();
                match batch_response(&body, &ids) {
                    BatchResponse::AllSucceeded => batch.iter().collect(),
                    BatchResponse::ItemsFailed(failed) => {
                        tracing::info!(
                            "{name}: {} of {} messages failed (request {request_id}); they \
                             return after the visibility timeout",
                            failed.len(),
                            batch.len()
                        );
                        SqsCounters::add(&counters.failed_items, failed.len());
                        batch
                            .iter()
                            .filter(|record| !failed.contains(&record.message_id))
                            .collect()
                    }
                    BatchResponse::Invalid(reason) => {
                        tracing::warn!(
                            "{name}: the whole SQS batch of {} failed: {reason} \
                             (request {request_id})",
                            batch.len()
                        );
                        SqsCounters::add(&counters.failed_batches, 1);
                        SqsCounters::add(&counters.failed_items, batch.len());
                        Vec::new()
                    }
                }
            }
        };
        mapping.delete(&delete).await;
        true
    }
}

impl Mapping {
    /// `DeleteMessageBatch` in chunks of 10; refused deletes are logged and counted.
    async fn delete(&self, records: &[&Record]) {
        let name = &self.source.function;
        for chunk in records.chunks(SQS_MAX_MESSAGES) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(index, record)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(&record.receipt_handle)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>();
            let entries = match entries {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::error!("{name}: cannot build a delete request: {error}");
                    SqsCounters::add(&self.counters.sqs_errors, chunk.len());
                    continue;
                }
            };
            let result = self
                .client
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(output) => {
                    SqsCounters::add(&self.counters.deleted, output.successful().len());
                    SqsCounters::add(&self.counters.sqs_errors, output.failed().len());
                    for failed in output.failed() {
                        tracing::warn!(
                            "{name}: SQS refused a delete: {} {}",
                            failed.code(),
                            failed.message().unwrap_or_default()
                        );
                    }
                }
                Err(error) => {
                    SqsCounters::add(&self.counters.sqs_errors, chunk.len());
                    tracing::warn!(
                        "{name}: cannot delete {} messages from {}: {}",
                        chunk.len(),
                        self.source.queue_url,
                        DisplayErrorContext(&error)
                    );
                }
            }
        }
    }
}
