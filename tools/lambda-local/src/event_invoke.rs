//! Asynchronous (`Event`) invocations: run in the background, retried on failure with
//! growing delays as Lambda does (twice by default), then written to the dead-letter
//! directory as an on-failure destination record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::invocation::{FunctionError, Invocation, Outcome};
use crate::stats::Counters;

use crate::functions::Functions;

/// Runs `invocation` of `name` in the background with Lambda's retry policy.
pub(crate) fn spawn(functions: Arc<Functions>, name: String, invocation: Invocation) {
    tokio::spawn(async move { run(&functions, &name, invocation).await });
}

async fn run(functions: &Functions, name: &str, invocation: Invocation) {
    let Some(pool) = functions.pools.get(name) else {
        return;
    };
    let attempts = functions.async_retries.saturating_add(1);
    let mut shutdown = functions.shutdown.clone();
    let mut last_error = None;
    for attempt in 1..=attempts {
        match pool.invoke(invocation.clone()).await {
            Outcome::Success(_) | Outcome::Unavailable => return,
            Outcome::Failed(error) => {
                tracing::info!(
                    "{name}: async invocation {} failed (attempt {attempt} of {attempts}): {}",
                    invocation.request_id,
                    error.error_type
                );
                last_error = Some(error);
            }
        }
        if attempt < attempts {
            let delay = functions
                .async_retry_delay
                .saturating_mul(1 << (attempt - 1).min(16));
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
    let Some(error) = last_error else {
        return;
    };
    Counters::bump(&pool.counters.dead_letters);
    tracing::warn!(
        "{name}: async invocation {} failed {attempts} times ({}); dropping it",
        invocation.request_id,
        error.error_type
    );
    if let Some(dir) = &functions.dlq_dir {
        let record = failure_record(&pool.spec.arn, &invocation, &error, attempts);
        let path = dir.join(format!("{name}-{}.json", invocation.request_id));
        let written = tokio::task::spawn_blocking(move || write_atomically(&path, &record)).await;
        match written {
            Ok(Ok(path)) => tracing::info!("{name}: wrote {}", path.display()),
            Ok(Err(error)) => tracing::error!("{name}: cannot write dead letter: {error}"),
            Err(error) => tracing::error!("{name}: dead letter task failed: {error}"),
        }
    }
}

/// An on-failure destination record (what Lambda sends to SQS, SNS, EventBridge or S3).
fn failure_record(
    function_arn: &str,
    invocation: &Invocation,
    error: &FunctionError,
    attempts: u32,
) -> Value {
    let request_payload = serde_json::from_slice::<Value>(&invocation.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&invocation.payload).into()));
    let response_payload = serde_json::from_slice::<Value>(&error.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&error.body).into()));
    json!({
        "version": "1.0",
        "timestamp": crate::clock::iso8601(SystemTime::now()),
        "requestContext": {
            "requestId": invocation.request_id,
            "functionArn": format!("{function_arn}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request_payload,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": response_payload,
    })
}

/// Writes through a temporary name so readers never see half a file.
fn write_atomically(path: &Path, record: &Value) -> std::io::Result<PathBuf> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn record_has_lambdas_shape() {
        let invocation = Invocation::new(Bytes::from_static(br#"{"a":1}"#));
        let error = FunctionError::platform("Boom", "bad".to_owned());
        let record = failure_record("arn:f", &invocation, &error, 3);
        assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(record["requestPayload"]["a"], 1);
        assert_eq!(record["responsePayload"]["errorType"], "Boom");
        assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    }
}
