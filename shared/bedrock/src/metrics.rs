//! One CloudWatch Embedded Metric Format (EMF) line per model call.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::pricing::Cost;

/// Default CloudWatch namespace for the call metrics.
pub const DEFAULT_NAMESPACE: &str = "TextProcessing/Bedrock";

/// Where EMF lines go.
#[derive(Debug, Clone, Default)]
pub enum MetricsSink {
    /// Standard output, where Lambda forwards them to CloudWatch Logs (the default).
    #[default]
    Stdout,
    /// Kept in memory, for callers that inspect or batch them (and for tests).
    Memory(Arc<Mutex<Vec<String>>>),
    /// Not written.
    Disabled,
}

/// What one model call did, as reported in its metrics line.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord<'a> {
    /// `InvokeModel` or `InvokeModelWithResponseStream`.
    pub operation: &'static str,
    /// The model that answered, or the last one tried.
    pub model_id: &'a str,
    /// Prompt tokens (when a call failed: those it reported before, usually 0).
    pub input_tokens: u32,
    /// Generated tokens (when a call failed: those it reported before, usually 0).
    pub output_tokens: u32,
    /// What those tokens cost at the model's price.
    pub cost: Cost,
    /// Wall time of the whole call, retries included.
    pub latency: Duration,
    /// Attempts that were throttled.
    pub throttles: u32,
    /// Attempts made.
    pub attempts: u32,
    /// The error type when the call failed.
    pub error_type: Option<&'static str>,
}

/// Writes call records in EMF to a sink under a namespace.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    sink: MetricsSink,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(DEFAULT_NAMESPACE, MetricsSink::Stdout)
    }
}

impl Metrics {
    /// Metrics under `namespace` written to `sink`.
    pub fn new(namespace: impl Into<String>, sink: MetricsSink) -> Self {
        Self {
            namespace: namespace.into(),
            sink,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Renders `record` as one EMF JSON line (no trailing newline).
    pub fn emf_line(&self, record: &CallRecord<'_>, timestamp: SystemTime) -> String {
        let millis = timestamp
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let latency_ms = u64::try_from(record.latency.as_millis()).unwrap_or(u64::MAX);
        let mut line = json!({
            "_aws": {
                "Timestamp": millis,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["ModelId", "Operation"]],
                    "Metrics": [
                        {"Name": "InputTokens", "Unit": "Count"},
                        {"Name": "OutputTokens", "Unit": "Count"},
                        {"Name": "CostUSD", "Unit": "None"},
                        {"Name": "Latency", "Unit": "Milliseconds"},
                        {"Name": "Throttles", "Unit": "Count"},
                        {"Name": "Attempts", "Unit": "Count"},
                        {"Name": "Errors", "Unit": "Count"}
                    ]
                }]
            },
            "ModelId": record.model_id,
            "Operation": record.operation,
            "InputTokens": record.input_tokens,
            "OutputTokens": record.output_tokens,
            "CostUSD": record.cost.usd(),
            "Latency": latency_ms,
            "Throttles": record.throttles,
            "Attempts": record.attempts,
            "Errors": u32::from(record.error_type.is_some()),
        });
        if let (Some(error_type), Some(obj)) = (record.error_type, line.as_object_mut()) {
            obj.insert("ErrorType".into(), error_type.into());
        }
        line.to_string()
    }

    /// Writes one line for `record` to the sink.
    pub fn record(&self, record: &CallRecord<'_>) {
        match &self.sink {
            MetricsSink::Disabled => {}
            MetricsSink::Stdout => {
                let line = self.emf_line(record, SystemTime::now());
                let mut out = std::io::stdout().lock();
                // A lost metrics line must never fail the call it describes.
                let _ = writeln!(out, "{line}");
            }
            MetricsSink::Memory(lines) => {
                let line = self.emf_line(record, SystemTime::now());
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_has_the_cloudwatch_shape() {
        let metrics = Metrics::new("Ns/Test", MetricsSink::Disabled);
        let record = CallRecord {
            operation: "InvokeModel",
            model_id: "us.meta.llama3-2-3b-instruct-v1:0",
            input_tokens: 120,
            output_tokens: 30,
            cost: Cost::from_pico_usd(22_500_000),
            latency: Duration::from_millis(850),
            throttles: 2,
            attempts: 3,
            error_type: None,
        };
        let line = metrics.emf_line(&record, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns/Test");
        // Every declared metric and dimension has a value at the top level.
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m}");
        }
        for d in directive["Dimensions"][0].as_array().unwrap() {
            assert!(v[d.as_str().unwrap()].is_string());
        }
        assert_eq!(v["InputTokens"], 120);
        assert_eq!(v["Latency"], 850);
        assert_eq!(v["CostUSD"], 0.0000225);
        assert_eq!(v["Throttles"], 2);
        assert_eq!(v["Errors"], 0);
        assert!(v.get("ErrorType").is_none());
        assert!(!line.contains('\n'));
    }

    #[test]
    fn failed_calls_carry_their_error_type() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics::new(DEFAULT_NAMESPACE, MetricsSink::Memory(lines.clone()));
        metrics.record(&CallRecord {
            operation: "InvokeModelWithResponseStream",
            model_id: "m.x",
            input_tokens: 0,
            output_tokens: 0,
            cost: Cost::ZERO,
            latency: Duration::ZERO,
            throttles: 4,
            attempts: 4,
            error_type: Some("ModelThrottled"),
        });
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["Errors"], 1);
        assert_eq!(v["ErrorType"], "ModelThrottled");
        assert_eq!(v["CostUSD"], 0.0);
    }
}
