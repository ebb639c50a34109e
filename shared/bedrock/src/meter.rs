//! What the model calls made inside a piece of work cost, failed ones included: the client
//! charges every call it finishes to the meter of the task it runs in ([`metered`]), so a
//! failure record can say what the document cost before it failed.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::UsageTotals;

tokio::task_local! {
    static METER: Arc<Mutex<UsageTotals>>;
}

/// Runs `work` and returns its output with the totals of every model call finished inside
/// it (on this task): answered calls as their usage, failed ones with their attempts and
/// whatever tokens they reported. A meter inside another adds its totals to the outer one.
pub async fn metered<F: Future>(work: F) -> (F::Output, UsageTotals) {
    let meter = Arc::new(Mutex::new(UsageTotals::default()));
    let output = METER.scope(Arc::clone(&meter), work).await;
    let totals = *meter.lock().unwrap_or_else(PoisonError::into_inner);
    charge(totals);
    (output, totals)
}

/// Adds `usage` to the current task's meter, if it has one.
pub(crate) fn charge(usage: UsageTotals) {
    // No meter: the work is not metered.
    let _ = METER.try_with(|meter| {
        *meter.lock().unwrap_or_else(PoisonError::into_inner) += usage;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cost;

    fn usage(prompt_tokens: u64) -> UsageTotals {
        UsageTotals {
            prompt_tokens,
            model_calls: 1,
            attempts: 1,
            cost: Cost::from_usd(0.001),
            ..UsageTotals::default()
        }
    }

    #[tokio::test]
    async fn meters_nest_and_unmetered_work_is_not_charged() {
        charge(usage(1));
        let (((), inner), outer) = metered(async {
            charge(usage(10));
            metered(async { charge(usage(100)) }).await
        })
        .await;
        assert_eq!(inner.prompt_tokens, 100);
        assert_eq!(outer.prompt_tokens, 110);
        assert_eq!(outer.model_calls, 2);
        assert_eq!(outer.cost, Cost::from_usd(0.002));
    }
}
