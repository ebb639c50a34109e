//! The boundary's own settings, shared by every function.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use settings::{ConfigError, Settings, in_range};

/// How the boundary treats requests, read once per cold start; each field is a variable
/// (`API_TIME_BUDGET_MS`, `S3_FORCE_PATH_STYLE`; the project README's table says more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoundarySettings {
    /// The most an HTTP request may take, in milliseconds.
    pub api_time_budget_ms: u64,
    /// Path-style S3 addressing (for local S3 servers).
    pub s3_force_path_style: bool,
    /// Serve function-URL requests as streamed Server-Sent Events (`RESPONSE_STREAMING`;
    /// the streaming functions of the template) instead of buffered responses.
    pub response_streaming: bool,
}

impl Default for BoundarySettings {
    fn default() -> Self {
        Self {
            api_time_budget_ms: 28_000,
            s3_force_path_style: false,
            response_streaming: false,
        }
    }
}

impl Settings for BoundarySettings {
    const PREFIX: &'static str = "";

    fn validate(&self) -> Result<(), ConfigError> {
        in_range(
            "API_TIME_BUDGET_MS",
            self.api_time_budget_ms,
            1_000,
            900_000,
        )
    }
}

impl BoundarySettings {
    /// The HTTP time budget.
    pub fn api_time_budget(&self) -> Duration {
        Duration::from_millis(self.api_time_budget_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<const N: usize>(pairs: [(&str, &str); N]) -> Result<BoundarySettings, ConfigError> {
        settings::from_vars(pairs)
    }

    #[test]
    fn defaults_and_bad_values() {
        assert_eq!(read([]).unwrap(), BoundarySettings::default());
        let s = read([
            ("API_TIME_BUDGET_MS", "10000"),
            ("S3_FORCE_PATH_STYLE", "true"),
        ])
        .unwrap();
        assert_eq!(s.api_time_budget(), Duration::from_secs(10));
        assert!(s.s3_force_path_style);
        for (name, value) in [
            ("S3_FORCE_PATH_STYLE", "TRUE"),
            ("API_TIME_BUDGET_MS", "5"),
            ("API_TIME_BUDGET_MS", "soon"),
        ] {
            assert_eq!(read([(name, value)]).unwrap_err().variable, name);
        }
    }
}
