//! Lambda glue shared by the functions: what invoked us (HTTP API, S3, Step Functions),
//! JSON requests and error responses, the `TaskError` with its stable type names,
//! JSON logging, and size-limited S3 reads.

pub mod config;
pub mod deadline;
mod error;
pub mod http;
pub mod logging;
pub mod storage;
pub mod trigger;

pub use error::TaskError;
pub use trigger::{Trigger, decode_s3_key};
