//! The Lambda boundary every function shares: a function declares its settings, routes and
//! handlers ([`Function`]) and [`run`] does the rest: trigger detection (HTTP API, S3, SQS
//! batches of S3 notifications, Step Functions task), HTTP route matching by route key, body checks (content type, size,
//! base64), per-trigger deadlines, error responses and `Diagnostic`s with stable names,
//! JSON logs, and the SDK clients built once per cold start.
//!
//! Every function's `main.rs` is the same few lines:
//!
//! ```ignore
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     lambda_kit::run::<classify_ticket::App>().await
//! }
//! ```

// The runtime's service stack (in `bootstrap::serve`) nests deeper than rustc's default
// layout query limit.
#![recursion_limit = "256"]

mod bootstrap;
pub mod boundary;
pub mod deadline;
mod delivery;
mod dispatch;
mod error;
mod function;
mod http;
pub mod jobs;
pub mod logging;
mod router;
pub mod sqs;
pub mod sqs_retry;
pub mod storage;
pub mod streaming;
pub mod sync_budget;
mod trigger;

pub use bootstrap::{Clients, run};
pub use delivery::Delivery;
pub use dispatch::{Invocation, handle};
pub use error::TaskError;
pub use function::{Function, Route, from_json, to_json};
pub use http::json_response;
pub use trigger::decode_s3_key;
