//! Per-function counters, for tests and for the shutdown summary.

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
