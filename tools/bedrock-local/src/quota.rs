//! Bedrock's on-demand quotas: tokens per minute and requests per minute over a rolling
//! 60-second window.
//!
//! A call reserves its prompt tokens plus `max_gen_len` when it starts; when it ends, the
//! reservation is settled to the tokens it really used (prompt + generated). A call that would
//! take the window over a limit is refused before anything is reserved. Time is passed in by
//! the caller (never read here), and must not go backwards between calls.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The length of the rolling window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The configured limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub tokens_per_minute: Option<u64>,
    pub requests_per_minute: Option<u64>,
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    Tokens,
    Requests,
}

/// A call's place in the window, to settle or withdraw it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

/// One call in the window: when it started and the tokens it holds.
#[derive(Debug)]
struct Entry {
    ticket: u64,
    at: Instant,
    tokens: u64,
}

/// The calls of the last 60 seconds, with the window's highest totals seen.
#[derive(Debug)]
pub(crate) struct Quota {
    limits: Limits,
    /// In start order (so also in ticket order).
    entries: VecDeque<Entry>,
    tokens: u64,
    next_ticket: u64,
    peak_tokens: u64,
    peak_requests: u64,
}

impl Quota {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: VecDeque::new(),
            tokens: 0,
            next_ticket: 0,
            peak_tokens: 0,
            peak_requests: 0,
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Drops the calls that started 60 seconds or more before `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(entry) = self
            .entries
            .front()
            .filter(|e| now.saturating_duration_since(e.at) >= WINDOW)
        {
            self.tokens -= entry.tokens;
            self.entries.pop_front();
        }
    }

    fn requests(&self) -> u64 {
        u64::try_from(self.entries.len()).unwrap_or(u64::MAX)
    }

    /// Reserves `tokens` for a call starting at `now`, or says which limit it would exceed.
    pub(crate) fn reserve(&mut self, tokens: u64, now: Instant) -> Result<Ticket, Exceeded> {
        self.expire(now);
        if self
            .limits
            .requests_per_minute
            .is_some_and(|limit| self.requests() + 1 > limit)
        {
            return Err(Exceeded::Requests);
        }
        if self
            .limits
            .tokens_per_minute
            .is_some_and(|limit| self.tokens.saturating_add(tokens) > limit)
        {
            return Err(Exceeded::Tokens);
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.entries.push_back(Entry {
            ticket,
            at: now,
            tokens,
        });
        self.tokens += tokens;
        self.peak_tokens = self.peak_tokens.max(self.tokens);
        self.peak_requests = self.peak_requests.max(self.requests());
        Ok(Ticket(ticket))
    }

    fn entry(&mut self, ticket: Ticket) -> Option<usize> {
        self.entries
            .binary_search_by_key(&ticket.0, |e| e.ticket)
            .ok()
    }

    /// Replaces a call's reservation by the tokens it used. A call that started 60 seconds
    /// or more ago has left the window and changes nothing.
    pub(crate) fn settle(&mut self, ticket: Ticket, tokens: u64, now: Instant) {
        self.expire(now);
        if let Some(index) = self.entry(ticket) {
            let entry = &mut self.entries[index];
            self.tokens = self.tokens - entry.tokens + tokens;
            entry.tokens = tokens;
            self.peak_tokens = self.peak_tokens.max(self.tokens);
        }
    }

    /// Takes a call out of the window entirely (it was refused after reserving).
    pub(crate) fn withdraw(&mut self, ticket: Ticket) {
        if let Some(index) = self.entry(ticket)
            && let Some(entry) = self.entries.remove(index)
        {
            self.tokens -= entry.tokens;
        }
    }

    /// Tokens and requests in the window at `now`.
    pub(crate) fn in_window(&mut self, now: Instant) -> (u64, u64) {
        self.expire(now);
        (self.tokens, self.requests())
    }

    /// The most tokens (reserved or used) and requests the window held at any time.
    pub(crate) fn peaks(&self) -> (u64, u64) {
        (self.peak_tokens, self.peak_requests)
    }

    /// Starts the peaks again from what the window holds at `now` (the window itself, and so
    /// what the limits allow, is unchanged).
    pub(crate) fn reset_peaks(&mut self, now: Instant) {
        let (tokens, requests) = self.in_window(now);
        self.peak_tokens = tokens;
        self.peak_requests = requests;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(start: Instant, s: u64) -> Instant {
        start + Duration::from_secs(s)
    }

    fn tokens(limit: u64) -> Quota {
        Quota::new(Limits {
            tokens_per_minute: Some(limit),
            requests_per_minute: None,
        })
    }

    #[test]
    fn reservations_up_to_the_limit_are_taken_then_refused() {
        let t0 = Instant::now();
        let mut quota = tokens(1000);
        quota.reserve(600, t0).unwrap();
        assert_eq!(quota.reserve(401, secs(t0, 1)), Err(Exceeded::Tokens));
        quota.reserve(400, secs(t0, 1)).unwrap();
        assert_eq!(quota.reserve(1, secs(t0, 2)), Err(Exceeded::Tokens));
        assert_eq!(quota.in_window(secs(t0, 2)), (1000, 2));
        assert_eq!(quota.peaks(), (1000, 2));
    }

    #[test]
    fn settling_frees_what_was_not_generated() {
        let t0 = Instant::now();
        let mut quota = tokens(1000);
        let first = quota.reserve(900, t0).unwrap();
        assert_eq!(quota.reserve(500, secs(t0, 1)), Err(Exceeded::Tokens));
        // 100 prompt tokens + 200 generated of the 800 reserved.
        quota.settle(first, 300, secs(t0, 2));
        assert_eq!(quota.in_window(secs(t0, 2)), (300, 1));
        quota.reserve(500, secs(t0, 3)).unwrap();
        assert_eq!(quota.in_window(secs(t0, 3)), (800, 2));
        assert_eq!(quota.peaks(), (900, 2));
    }

    #[test]
    fn the_window_rolls_over_after_sixty_seconds() {
        let t0 = Instant::now();
        let mut quota = tokens(1000);
        quota.reserve(1000, t0).unwrap();
        let later = quota.reserve(0, secs(t0, 30)).unwrap();
        assert_eq!(quota.reserve(1, secs(t0, 59)), Err(Exceeded::Tokens));
        // At exactly 60 s the first call has left the window.
        quota.reserve(1000, secs(t0, 60)).unwrap();
        assert_eq!(quota.in_window(secs(t0, 60)), (1000, 2));
        quota.settle(later, 0, secs(t0, 89));
        assert_eq!(quota.in_window(secs(t0, 90)), (1000, 1));
        assert_eq!(quota.in_window(secs(t0, 120)), (0, 0));
    }

    #[test]
    fn a_call_settled_after_leaving_the_window_changes_nothing() {
        let t0 = Instant::now();
        let mut quota = tokens(1000);
        let long = quota.reserve(500, t0).unwrap();
        quota.reserve(500, secs(t0, 50)).unwrap();
        quota.settle(long, 900, secs(t0, 70));
        assert_eq!(quota.in_window(secs(t0, 70)), (500, 1));
    }

    #[test]
    fn requests_per_minute_counts_calls() {
        let t0 = Instant::now();
        let mut quota = Quota::new(Limits {
            tokens_per_minute: None,
            requests_per_minute: Some(2),
        });
        quota.reserve(10_000, t0).unwrap();
        quota.reserve(10_000, secs(t0, 10)).unwrap();
        assert_eq!(quota.reserve(1, secs(t0, 20)), Err(Exceeded::Requests));
        quota.reserve(1, secs(t0, 60)).unwrap();
        assert_eq!(quota.in_window(secs(t0, 60)), (10_001, 2));
    }

    #[test]
    fn requests_are_checked_before_tokens() {
        let t0 = Instant::now();
        let mut quota = Quota::new(Limits {
            tokens_per_minute: Some(10),
            requests_per_minute: Some(1),
        });
        quota.reserve(10, t0).unwrap();
        assert_eq!(quota.reserve(10, t0), Err(Exceeded::Requests));
    }

    #[test]
    fn a_withdrawn_call_leaves_no_trace() {
        let t0 = Instant::now();
        let mut quota = Quota::new(Limits {
            tokens_per_minute: Some(100),
            requests_per_minute: Some(2),
        });
        let a = quota.reserve(60, t0).unwrap();
        let b = quota.reserve(40, t0).unwrap();
        quota.withdraw(a);
        quota.withdraw(a);
        assert_eq!(quota.in_window(t0), (40, 1));
        quota.reserve(60, t0).unwrap();
        quota.settle(b, 10, t0);
        assert_eq!(quota.in_window(t0), (70, 2));
    }

    #[test]
    fn a_call_bigger_than_the_limit_is_always_refused() {
        let t0 = Instant::now();
        let mut quota = tokens(100);
        assert_eq!(quota.reserve(101, t0), Err(Exceeded::Tokens));
        assert_eq!(quota.in_window(t0), (0, 0));
    }

    #[test]
    fn unlimited_still_tracks_peaks_and_reset_starts_from_now() {
        let t0 = Instant::now();
        let mut quota = Quota::new(Limits::default());
        for s in 0..5 {
            quota.reserve(1000, secs(t0, s)).unwrap();
        }
        assert_eq!(quota.peaks(), (5000, 5));
        quota.reset_peaks(secs(t0, 62));
        assert_eq!(quota.peaks(), (2000, 2));
        quota.reset_peaks(secs(t0, 200));
        assert_eq!(quota.peaks(), (0, 0));
    }
}
