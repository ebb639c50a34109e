//! JSON logs for Lambda: no ANSI, the request id on every line, level from the environment.

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber once per cold start. The level comes from `RUST_LOG`,
/// else `AWS_LAMBDA_LOG_LEVEL`, else `info`. The runtime's per-invocation span carries
/// `requestId`, which every line includes. Text from documents and the model is logged
/// only at DEBUG and below.
pub fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // A second init (tests, warm reuse) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(std::io::stderr)
        .try_init();
}
