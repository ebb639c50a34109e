//! A count of things in progress and the highest it has reached.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many are in progress now, and the peak since start (or the last reset).
#[derive(Debug, Default)]
pub(crate) struct Gauge {
    now: AtomicU64,
    peak: AtomicU64,
}

/// One thing in progress; leaves the gauge on drop.
#[derive(Debug)]
pub(crate) struct Presence(Arc<Gauge>);

impl Drop for Presence {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gauge {
    /// Counts one more in progress until the returned presence is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Presence {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Presence(Arc::clone(self))
    }

    /// In progress now.
    pub(crate) fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// The most in progress at once.
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }

    /// Starts the peak again from the count now.
    pub(crate) fn reset_peak(&self) {
        self.peak.store(self.now(), Ordering::SeqCst);
        // Something that entered between the two loads is counted too.
        self.peak.fetch_max(self.now(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_presences_and_keeps_the_peak() {
        let gauge = Arc::new(Gauge::default());
        let a = gauge.enter();
        let b = gauge.enter();
        drop(a);
        let c = gauge.enter();
        assert_eq!((gauge.now(), gauge.peak()), (2, 2));
        drop((b, c));
        assert_eq!((gauge.now(), gauge.peak()), (0, 2));
        gauge.reset_peak();
        assert_eq!(gauge.peak(), 0);
    }
}
