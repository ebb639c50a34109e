//! The model calls' ledger: the quota window they reserve in, how each one ended, the tokens
//! they used, and the counters served at `GET /_local/stats`. Counts only: no prompt or
//! generated text is kept.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::errors::{BedrockError, ErrorKind};
use crate::gauge::{Gauge, Presence};
use crate::quota::{Exceeded, Limits, Quota, Ticket};

/// Why a call was answered `ThrottlingException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThrottleCause {
    /// No free generation slot and no queue place.
    Concurrency,
    /// The tokens-per-minute window is full.
    TokensPerMinute,
    /// The requests-per-minute window is full.
    RequestsPerMinute,
    /// A fault (drawn or scripted) answered it.
    Injected,
}

/// Throttled calls by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottledBy {
    /// No free generation slot and no queue place (`--max-concurrency`, `--max-queue`).
    pub concurrency: u64,
    /// Over `--tokens-per-minute`.
    pub tokens_per_minute: u64,
    /// Over `--requests-per-minute`.
    pub requests_per_minute: u64,
    /// Injected faults: `--throttle-rate`, scripted `ThrottlingException` errors and
    /// `throttlingException` stream frames.
    pub injected: u64,
}

/// The emulator's counters, as served at `GET /_local/stats`. Every model call received ends
/// as exactly one of `completed`, `throttled`, `failed` or `cancelled` (or is still open).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Model calls received (`/model/...` requests of both operations).
    pub requests: u64,
    /// Model calls being handled now, including those about to be refused.
    pub open_requests: u64,
    /// The most model calls handled at once.
    pub peak_open_requests: u64,
    /// Calls holding a generation slot or a queue place now.
    pub in_flight: u64,
    /// The most calls holding a slot or a queue place at once; at most `max_concurrency` +
    /// `max_queue`.
    pub peak_in_flight: u64,
    /// Calls answered in full: a 200 body, or a stream that reached its last chunk.
    pub completed: u64,
    /// Calls answered `ThrottlingException` (HTTP 429 or a `throttlingException` frame).
    pub throttled: u64,
    /// `throttled`, by cause.
    pub throttled_by: ThrottledBy,
    /// Calls that ended with another error.
    pub failed: u64,
    /// Calls the client gave up on before their answer ended.
    pub cancelled: u64,
    /// Prompt tokens of the calls admitted to the quota window.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub generated_tokens: u64,
    /// Tokens reserved or used in the last 60 seconds.
    pub tokens_in_window: u64,
    /// Calls started in the last 60 seconds.
    pub requests_in_window: u64,
    /// The most tokens (reserved or used) the 60-second window held at any time: what the
    /// tokens-per-minute limit is checked against.
    pub peak_tokens_per_minute: u64,
    /// The most calls the 60-second window held at any time.
    pub peak_requests_per_minute: u64,
    /// `--tokens-per-minute`, if set.
    pub tokens_per_minute_limit: Option<u64>,
    /// `--requests-per-minute`, if set.
    pub requests_per_minute_limit: Option<u64>,
    /// Generation slots.
    pub max_concurrency: u64,
    /// Queue places in front of the slots.
    pub max_queue: u64,
}

/// The counters that are kept under the lock.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    completed: u64,
    throttled_by: ThrottledBy,
    failed: u64,
    cancelled: u64,
    prompt_tokens: u64,
    generated_tokens: u64,
}

struct Ledger {
    quota: Quota,
    tally: Tally,
}

/// The ledger shared by all calls.
pub(crate) struct Meter {
    ledger: Mutex<Ledger>,
    open: Arc<Gauge>,
    max_concurrency: u64,
    max_queue: u64,
}

/// The clock the quota window runs on (tokio's, so paused-time tests control it).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Meter {
    pub(crate) fn new(limits: Limits, max_concurrency: usize, max_queue: usize) -> Self {
        Self {
            ledger: Mutex::new(Ledger {
                quota: Quota::new(limits),
                tally: Tally::default(),
            }),
            open: Arc::default(),
            max_concurrency: u64::try_from(max_concurrency).unwrap_or(u64::MAX),
            max_queue: u64::try_from(max_queue).unwrap_or(u64::MAX),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a model call received; it is recorded when the returned call is dropped.
    pub(crate) fn call(self: &Arc<Self>) -> Call {
        self.ledger().tally.requests += 1;
        Call(Some(Live {
            meter: Arc::clone(self),
            _open: self.open.enter(),
            reservation: None,
            generated: 0,
            throttled_by: None,
            ending: None,
        }))
    }

    /// The counters now; `in_flight` is the capacity gauge.
    pub(crate) fn counters(&self, in_flight: &Gauge) -> Counters {
        let mut ledger = self.ledger();
        let (tokens_in_window, requests_in_window) = ledger.quota.in_window(now());
        let (peak_tokens, peak_requests) = ledger.quota.peaks();
        let limits = ledger.quota.limits();
        let t = &ledger.tally;
        let by = t.throttled_by;
        Counters {
            requests: t.requests,
            open_requests: self.open.now(),
            peak_open_requests: self.open.peak(),
            in_flight: in_flight.now(),
            peak_in_flight: in_flight.peak(),
            completed: t.completed,
            throttled: by.concurrency + by.tokens_per_minute + by.requests_per_minute + by.injected,
            throttled_by: by,
            failed: t.failed,
            cancelled: t.cancelled,
            prompt_tokens: t.prompt_tokens,
            generated_tokens: t.generated_tokens,
            tokens_in_window,
            requests_in_window,
            peak_tokens_per_minute: peak_tokens,
            peak_requests_per_minute: peak_requests,
            tokens_per_minute_limit: limits.tokens_per_minute,
            requests_per_minute_limit: limits.requests_per_minute,
            max_concurrency: self.max_concurrency,
            max_queue: self.max_queue,
        }
    }

    /// Zeroes the counters and starts the peaks again from now. The quota window is kept:
    /// a reset does not give back quota.
    pub(crate) fn reset(&self, in_flight: &Gauge) {
        let mut ledger = self.ledger();
        ledger.tally = Tally::default();
        ledger.quota.reset_peaks(now());
        self.open.reset_peak();
        in_flight.reset_peak();
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Completed,
    Throttled(ThrottleCause),
    Failed,
}

/// A call's reservation in the quota window.
struct Reservation {
    ticket: Ticket,
    prompt_tokens: u32,
}

struct Live {
    meter: Arc<Meter>,
    _open: Presence,
    reservation: Option<Reservation>,
    generated: u32,
    throttled_by: Option<ThrottleCause>,
    ending: Option<Ending>,
}

/// One model call in progress. Dropping it records how it ended (not ended: cancelled) and
/// settles its reservation to the prompt tokens plus the tokens generated.
pub(crate) struct Call(Option<Live>);

impl Call {
    /// Moves the call into a new value (a response stream that outlives the handler); this
    /// one then records nothing.
    pub(crate) fn hand_over(&mut self) -> Self {
        Self(self.0.take())
    }

    /// Reserves `prompt_tokens + max_gen_len` in the quota window, or answers
    /// `ThrottlingException` the way Bedrock words it.
    pub(crate) fn reserve(
        &mut self,
        prompt_tokens: u32,
        max_gen_len: u32,
    ) -> Result<(), BedrockError> {
        let Some(live) = self.0.as_mut() else {
            return Ok(());
        };
        let tokens = u64::from(prompt_tokens) + u64::from(max_gen_len);
        let reserved = live.meter.ledger().quota.reserve(tokens, now());
        match reserved {
            Ok(ticket) => {
                live.reservation = Some(Reservation {
                    ticket,
                    prompt_tokens,
                });
                Ok(())
            }
            Err(Exceeded::Tokens) => {
                live.throttled_by = Some(ThrottleCause::TokensPerMinute);
                Err(BedrockError::new(
                    ErrorKind::ThrottlingException,
                    "Too many tokens, please wait before trying again.",
                ))
            }
            Err(Exceeded::Requests) => {
                live.throttled_by = Some(ThrottleCause::RequestsPerMinute);
                Err(BedrockError::new(
                    ErrorKind::ThrottlingException,
                    "Too many requests, please wait before trying again.",
                ))
            }
        }
    }

    /// The call was refused for lack of capacity: its reservation is withdrawn.
    pub(crate) fn refused_by_capacity(&mut self, error: &BedrockError) {
        let Some(live) = self.0.as_mut() else {
            return;
        };
        if let Some(reservation) = live.reservation.take() {
            live.meter.ledger().quota.withdraw(reservation.ticket);
        }
        if error.kind == ErrorKind::ThrottlingException {
            live.throttled_by = Some(ThrottleCause::Concurrency);
        }
    }

    /// Tokens generated so far.
    pub(crate) fn generated(&mut self, tokens: u32) {
        if let Some(live) = self.0.as_mut() {
            live.generated = tokens;
        }
    }

    /// Ends the call with its answer (the first ending counts).
    pub(crate) fn end(&mut self, result: Result<(), &BedrockError>) {
        let Some(live) = self.0.as_mut() else {
            return;
        };
        let ending = match result {
            Ok(()) => Ending::Completed,
            Err(error) if error.kind == ErrorKind::ThrottlingException => {
                Ending::Throttled(live.throttled_by.unwrap_or(ThrottleCause::Injected))
            }
            Err(_) => Ending::Failed,
        };
        live.ending.get_or_insert(ending);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let Some(live) = self.0.take() else {
            return;
        };
        let mut ledger = live.meter.ledger();
        let tally = &mut ledger.tally;
        match live.ending {
            None => tally.cancelled += 1,
            Some(Ending::Completed) => tally.completed += 1,
            Some(Ending::Failed) => tally.failed += 1,
            Some(Ending::Throttled(cause)) => {
                let by = &mut tally.throttled_by;
                *match cause {
                    ThrottleCause::Concurrency => &mut by.concurrency,
                    ThrottleCause::TokensPerMinute => &mut by.tokens_per_minute,
                    ThrottleCause::RequestsPerMinute => &mut by.requests_per_minute,
                    ThrottleCause::Injected => &mut by.injected,
                } += 1;
            }
        }
        tally.generated_tokens += u64::from(live.generated);
        if let Some(reservation) = live.reservation {
            tally.prompt_tokens += u64::from(reservation.prompt_tokens);
            let used = u64::from(reservation.prompt_tokens) + u64::from(live.generated);
            ledger.quota.settle(reservation.ticket, used, now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(tokens_per_minute: Option<u64>) -> Arc<Meter> {
        Arc::new(Meter::new(
            Limits {
                tokens_per_minute,
                requests_per_minute: None,
            },
            2,
            0,
        ))
    }

    #[test]
    fn calls_are_recorded_by_ending() {
        let meter = meter(Some(100));
        let gauge = Gauge::default();
        let mut done = meter.call();
        done.reserve(10, 50).unwrap();
        done.generated(7);
        done.end(Ok(()));
        let mut over = meter.call();
        let error = over.reserve(1, 50).unwrap_err();
        assert_eq!(
            error.message,
            "Too many tokens, please wait before trying again."
        );
        over.end(Err(&error));
        let mut busy = meter.call();
        busy.reserve(1, 1).unwrap();
        let refusal = BedrockError::of(ErrorKind::ThrottlingException);
        busy.refused_by_capacity(&refusal);
        busy.end(Err(&refusal));
        let mut injected = meter.call();
        injected.end(Err(&refusal));
        let gone = meter.call();
        assert_eq!(meter.counters(&gauge).open_requests, 5);
        drop((done, over, busy, injected, gone));
        let counters = meter.counters(&gauge);
        assert_eq!(
            counters.throttled_by,
            ThrottledBy {
                concurrency: 1,
                tokens_per_minute: 1,
                requests_per_minute: 0,
                injected: 1,
            }
        );
        assert_eq!(
            (
                counters.requests,
                counters.completed,
                counters.throttled,
                counters.cancelled
            ),
            (5, 1, 3, 1)
        );
        assert_eq!((counters.prompt_tokens, counters.generated_tokens), (10, 7));
        // Settled to what the completed call used; the withdrawn one left nothing.
        assert_eq!(
            (counters.tokens_in_window, counters.requests_in_window),
            (17, 1)
        );
        assert_eq!(counters.peak_tokens_per_minute, 62);
        assert_eq!(counters.open_requests, 0);
        assert_eq!(counters.peak_open_requests, 5);
    }

    #[test]
    fn a_handed_over_call_is_recorded_once_by_its_new_owner() {
        let meter = meter(None);
        let mut call = meter.call();
        let mut stream = call.hand_over();
        call.end(Ok(()));
        drop(call);
        assert_eq!(meter.counters(&Gauge::default()).completed, 0);
        stream.end(Err(&BedrockError::of(ErrorKind::ModelStreamErrorException)));
        drop(stream);
        let counters = meter.counters(&Gauge::default());
        assert_eq!((counters.completed, counters.failed), (0, 1));
    }

    #[test]
    fn reset_zeroes_counters_but_keeps_the_window() {
        let meter = meter(Some(100));
        let gauge = Gauge::default();
        let mut call = meter.call();
        call.reserve(50, 50).unwrap();
        call.end(Ok(()));
        drop(call);
        meter.reset(&gauge);
        let counters = meter.counters(&gauge);
        assert_eq!((counters.requests, counters.completed), (0, 0));
        assert_eq!(counters.tokens_in_window, 50);
        assert_eq!(counters.peak_tokens_per_minute, 50);
        assert!(meter.call().reserve(1, 50).is_err());
    }
}
