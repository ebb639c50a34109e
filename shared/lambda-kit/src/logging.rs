//! JSON logs for Lambda: no ANSI, the request id on every line, level from the environment.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Installs the JSON log subscriber once per cold start. The filter comes from `RUST_LOG`
/// (comma-separated `level` and `target=level` directives, e.g. `warn,bedrock=info`), else
/// the level in `AWS_LAMBDA_LOG_LEVEL` (`FATAL` is `error`), else `info`. The runtime's
/// per-invocation span carries `requestId`, which every line includes. Text from documents
/// and the model is logged only at DEBUG and below.
pub fn init_logging() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(lambda_log_level()));
    let format = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(std::io::stderr);
    // A second init (tests, warm reuse) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .try_init();
}

/// `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls) as a level; `info` when unset
/// or unknown.
fn lambda_log_level() -> LevelFilter {
    match std::env::var("AWS_LAMBDA_LOG_LEVEL") {
        Ok(level) if level.eq_ignore_ascii_case("fatal") => LevelFilter::ERROR,
        Ok(level) => level.parse().unwrap_or(LevelFilter::INFO),
        Err(_) => LevelFilter::INFO,
    }
}
