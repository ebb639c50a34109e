//! Per-function and per-SQS-mapping counters, for tests and for the shutdown summary.

use std::sync::atomic::{AtomicU64, Ordering};

/// What happened to one function so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Invocations that reached a worker (each async retry counts).
    pub invocations: u64,
    /// Processes started (the first invoke and every recycle).
    pub cold_starts: u64,
    /// Invocations that failed, for any reason.
    pub errors: u64,
    /// Invocations that hit the timeout (`Sandbox.Timedout`).
    pub timeouts: u64,
    /// Invocations whose process exited (`Runtime.ExitError`).
    pub crashes: u64,
    /// Asynchronous invocations that failed every attempt.
    pub dead_letters: u64,
}

/// The live counters behind [`FunctionStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) invocations: AtomicU64,
    pub(crate) cold_starts: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) crashes: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
}

impl Counters {
    /// Adds one.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> FunctionStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        FunctionStats {
            invocations: get(&self.invocations),
            cold_starts: get(&self.cold_starts),
            errors: get(&self.errors),
            timeouts: get(&self.timeouts),
            crashes: get(&self.crashes),
            dead_letters: get(&self.dead_letters),
        }
    }
}

/// What one SQS event source mapping did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqsSourceStats {
    /// Invocations with a batch.
    pub batches: u64,
    /// Messages delivered in those batches (a message received again counts again).
    pub messages: u64,
    /// Messages deleted after their batch succeeded.
    pub deleted: u64,
    /// Messages left on the queue by a failure (reported item failures and every message
    /// of a failed batch); they come back after the visibility timeout.
    pub failed_items: u64,
    /// Batches that failed whole: a function error, a timeout or an invalid
    /// `batchItemFailures` response.
    pub failed_batches: u64,
    /// SQS calls (receive or delete) that failed, and messages a delete refused.
    pub sqs_errors: u64,
}

/// The live counters behind [`SqsSourceStats`].
#[derive(Debug, Default)]
pub(crate) struct SqsCounters {
    pub(crate) batches: AtomicU64,
    pub(crate) messages: AtomicU64,
    pub(crate) deleted: AtomicU64,
    pub(crate) failed_items: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) sqs_errors: AtomicU64,
}

impl SqsCounters {
    /// Adds `n`.
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> SqsSourceStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SqsSourceStats {
            batches: get(&self.batches),
            messages: get(&self.messages),
            deleted: get(&self.deleted),
            failed_items: get(&self.failed_items),
            failed_batches: get(&self.failed_batches),
            sqs_errors: get(&self.sqs_errors),
        }
    }
}
