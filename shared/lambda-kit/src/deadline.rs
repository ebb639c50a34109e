//! The Lambda invocation deadline as a model-call deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bedrock::Deadline;

/// Time kept back from the Lambda deadline to write results or failure records.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(2);

/// The model-call deadline for an invocation whose Lambda deadline is `deadline_ms`
/// (milliseconds since the epoch, as in `lambda_runtime::Context::deadline`), less `margin`.
pub fn invocation_deadline(deadline_ms: u64, margin: Duration) -> Deadline {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Deadline::after(left.saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_margin_back() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = invocation_deadline(now_ms + 10_000, Duration::from_secs(2));
        let left = d.remaining();
        assert!(
            left <= Duration::from_secs(8) && left > Duration::from_secs(7),
            "{left:?}"
        );
        assert_eq!(
            invocation_deadline(0, DEFAULT_MARGIN).remaining(),
            Duration::ZERO
        );
    }
}
