//! A local AWS Lambda for Rust functions built on `lambda_runtime`: the Invoke API with real
//! Lambda semantics (function errors as `200` + `X-Amz-Function-Error`, timeouts, crashes,
//! async retries), a Runtime API per worker process, an API Gateway HTTP API front, and SQS
//! event source mappings played against a real SQS endpoint.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lambda_local::StartError> {
//! use lambda_local::{Config, FunctionConfig, Server};
//! let server = Server::start(Config {
//!     functions: vec![FunctionConfig::new("echo", "target/debug/echo")],
//!     ..Config::default()
//! })
//! .await?;
//! // Point AWS_ENDPOINT_URL_LAMBDA (or an SDK's endpoint_url) at server.endpoint().
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod api_error;
mod body;
mod clock;
mod config;
mod event_invoke;
mod function_ref;
mod functions;
mod http_front;
mod invocation;
mod invoke_api;
mod logs;
mod payload_v2;
mod pool;
mod process;
mod route;
mod runtime_api;
mod server;
mod sqs_event;
mod sqs_poller;
mod sqs_source;
mod stats;
mod worker;

pub use config::{
    Cli, Config, ConfigError, DEFAULT_HTTP_INTEGRATION_TIMEOUT, DEFAULT_INIT_TIMEOUT,
    DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, FunctionConfig, FunctionUrl, HttpRoute, MAX_ASYNC_RETRIES,
    MAX_TIMEOUT, RESERVED_ENV,
};
pub use functions::{MAX_EVENT_PAYLOAD, MAX_SYNC_PAYLOAD};
pub use http_front::MAX_HTTP_REQUEST;
pub use route::{RouteError, RouteKey};
pub use server::{Server, StartError};
pub use sqs_source::{
    DEFAULT_SQS_BATCH_SIZE, MAX_SQS_BATCHING_WINDOW, SQS_BATCH_SIZES, SQS_MAXIMUM_CONCURRENCY,
    SqsSource,
};
pub use stats::{FunctionStats, SqsSourceStats};
