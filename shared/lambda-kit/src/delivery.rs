//! How an S3 notification reached the function: directly (an asynchronous invocation) or
//! through a queue, and how often it was delivered.

/// One delivery of an S3 notification, for the function's idempotency and retry
/// decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Stays the same across the redeliveries of one notification: Lambda's request id
    /// of an asynchronous invocation, or the SQS message id of a queued one. A holder of
    /// work that died may take its own work over again under it.
    pub id: Option<String>,
    /// How many times the queue has handed out this message, this time included (SQS
    /// `ApproximateReceiveCount`); `None` when the notification did not come from a queue.
    pub receive_count: Option<u32>,
}

impl Delivery {
    /// Whether this is the last receive a queue that allows `max_receives` receives
    /// makes: if it fails, the queue moves the message to its dead-letter queue.
    pub fn is_last(&self, max_receives: u32) -> bool {
        self.receive_count.is_some_and(|n| n >= max_receives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_queued_delivery_at_its_limit_is_the_last() {
        let queued = |n| Delivery {
            id: Some("m".into()),
            receive_count: Some(n),
        };
        assert!(!queued(1).is_last(5));
        assert!(!queued(4).is_last(5));
        assert!(queued(5).is_last(5));
        assert!(
            queued(7).is_last(5),
            "received past the limit (a changed policy)"
        );
        assert!(
            !Delivery::default().is_last(1),
            "a direct invocation is never the last"
        );
    }
}
