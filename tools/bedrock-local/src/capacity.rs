//! Bounded concurrency: a fixed number of generation slots and a bounded wait queue; beyond
//! both, requests are throttled. Requests holding a slot or a queue place are in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::{BedrockError, ErrorKind};
use crate::gauge::{Gauge, Presence};

/// Generation slots and the queue in front of them.
pub(crate) struct Capacity {
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    max_queue: usize,
    in_flight: Arc<Gauge>,
}

/// A held generation slot, released on drop (and then no longer in flight).
pub(crate) struct Admission {
    _permit: OwnedSemaphorePermit,
    _in_flight: Presence,
}

/// Leaves the queue on drop, also when the waiting request is cancelled.
struct QueueSpot<'a>(&'a AtomicUsize);

impl Drop for QueueSpot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Capacity {
    pub(crate) fn new(max_concurrency: usize, max_queue: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrency)),
            queued: AtomicUsize::new(0),
            max_queue,
            in_flight: Arc::default(),
        }
    }

    /// Requests holding a slot or a queue place.
    pub(crate) fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// Takes a slot, waiting in the queue if there is room; otherwise `ThrottlingException`.
    pub(crate) async fn admit(&self) -> Result<Admission, BedrockError> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(Admission {
                _permit: permit,
                _in_flight: self.in_flight.enter(),
            });
        }
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |queued| {
                (queued < self.max_queue).then_some(queued + 1)
            })
            .map_err(|_| BedrockError::of(ErrorKind::ThrottlingException))?;
        let _spot = QueueSpot(&self.queued);
        let in_flight = self.in_flight.enter();
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| BedrockError::of(ErrorKind::ServiceUnavailableException))?;
        Ok(Admission {
            _permit: permit,
            _in_flight: in_flight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queue_then_throttle() {
        let capacity = Arc::new(Capacity::new(1, 1));
        let first = capacity.admit().await.unwrap();
        let waiting = tokio::spawn({
            let capacity = Arc::clone(&capacity);
            async move { capacity.admit().await.is_ok() }
        });
        while capacity.queued.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let third = capacity.admit().await;
        assert_eq!(
            third.err().map(|e| e.kind),
            Some(ErrorKind::ThrottlingException)
        );
        assert_eq!(capacity.in_flight().now(), 2);
        drop(first);
        assert!(waiting.await.unwrap());
        assert_eq!(capacity.queued.load(Ordering::SeqCst), 0);
        assert_eq!(
            (capacity.in_flight().now(), capacity.in_flight().peak()),
            (0, 2)
        );
    }
}
