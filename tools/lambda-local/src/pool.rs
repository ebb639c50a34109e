//! A function's workers and the queue in front of them: each invocation goes to a warm
//! worker when one is free, else to a cold one, else waits its turn.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::FunctionConfig;
use crate::invocation::{Invocation, Outcome};
use crate::stats::Counters;
use crate::worker::Worker;

/// A function as the server runs it.
#[derive(Debug)]
pub(crate) struct FunctionSpec {
    /// As configured.
    pub(crate) config: FunctionConfig,
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub(crate) arn: String,
    /// `AWS_REGION` for the process.
    pub(crate) region: String,
    /// Longest wait for a process to take its event.
    pub(crate) init_timeout: Duration,
    /// Largest response accepted from the process.
    pub(crate) max_response_bytes: usize,
    /// `[NAME] `, the prefix of the function's log lines.
    pub(crate) log_prefix: String,
}

struct Job {
    invocation: Invocation,
    reply: oneshot::Sender<Outcome>,
}

/// The queue and workers of one function.
#[derive(Debug)]
pub(crate) struct Pool {
    /// The function.
    pub(crate) spec: Arc<FunctionSpec>,
    /// Its counters.
    pub(crate) counters: Arc<Counters>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("request_id", &self.invocation.request_id)
            .finish()
    }
}

impl Pool {
    /// Binds a Runtime API listener per worker and starts the dispatcher; processes start on
    /// the first invocations. The task ends, with every process killed, after `shutdown`.
    pub(crate) async fn start(
        spec: FunctionSpec,
        shutdown: watch::Receiver<bool>,
    ) -> io::Result<(Self, JoinHandle<()>)> {
        let spec = Arc::new(spec);
        let counters = Arc::new(Counters::default());
        let mut workers = Vec::with_capacity(spec.config.concurrency);
        for _ in 0..spec.config.concurrency {
            workers.push(Worker::new(Arc::clone(&spec), Arc::clone(&counters)).await?);
        }
        let (jobs, queue) = mpsc::unbounded_channel();
        let task = tokio::spawn(dispatch(queue, workers, shutdown));
        Ok((
            Self {
                spec,
                counters,
                jobs,
            },
            task,
        ))
    }

    /// Queues the invocation and waits for it to end.
    pub(crate) async fn invoke(&self, invocation: Invocation) -> Outcome {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { invocation, reply }).is_err() {
            return Outcome::Unavailable;
        }
        answer.await.unwrap_or(Outcome::Unavailable)
    }
}

/// Gives each queued job a worker, warm ones first.
async fn dispatch(
    mut queue: mpsc::UnboundedReceiver<Job>,
    mut idle: Vec<Worker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (back, mut returned) = mpsc::unbounded_channel::<Worker>();
    let mut busy = 0usize;
    'serve: loop {
        let job = tokio::select! {
            biased;
            _ = shutdown.changed() => break 'serve,
            job = queue.recv() => match job {
                Some(job) => job,
                None => break 'serve,
            },
        };
        let mut worker = loop {
            while let Ok(worker) = returned.try_recv() {
                busy -= 1;
                idle.push(worker);
            }
            let warm = idle.iter_mut().position(Worker::is_warm);
            if let Some(index) = warm.or_else(|| (!idle.is_empty()).then_some(0)) {
                break idle.swap_remove(index);
            }
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    drop(job);
                    break 'serve;
                }
                Some(worker) = returned.recv() => {
                    busy -= 1;
                    idle.push(worker);
                }
            }
        };
        busy += 1;
        let back = back.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let outcome = worker.invoke(job.invocation, &mut shutdown).await;
            // The caller may have gone (an HTTP timeout); Lambda finishes the run anyway.
            let _ = job.reply.send(outcome);
            let _ = back.send(worker);
        });
    }
    // Refuse what is queued, then stop every process.
    queue.close();
    while queue.try_recv().is_ok() {}
    for worker in &mut idle {
        worker.stop().await;
    }
    // Busy workers see the shutdown too and come back at once; the bound only guards
    // against a worker task that died.
    while busy > 0 {
        match tokio::time::timeout(Duration::from_secs(10), returned.recv()).await {
            Ok(Some(mut worker)) => {
                busy -= 1;
                worker.stop().await;
            }
            Ok(None) | Err(_) => break,
        }
    }
}
