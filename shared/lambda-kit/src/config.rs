//! Reading numeric limits from the environment.

use crate::TaskError;

/// Reads `name` as a positive integer, or `default` when unset.
pub fn env_limit(name: &'static str, default: u64) -> Result<u64, TaskError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                TaskError::InvalidInput(format!("{name} must be a positive integer, got {raw:?}"))
            }),
    }
}
