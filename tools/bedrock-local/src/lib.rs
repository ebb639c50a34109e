//! A local Amazon Bedrock Runtime: the real InvokeModel / InvokeModelWithResponseStream wire
//! protocol, so unmodified AWS SDKs work against it, backed by a real model on the CPU
//! (llama.cpp) or by a scripted test double, with capacity limits and fault injection.

mod backend;
mod capacity;
pub mod chat;
mod config;
mod errors;
mod eventstream;
mod faults;
mod gauge;
mod meter;
mod quota;
mod routes;
mod server;
mod wire;

pub use backend::scripted::DEFAULT_SCRIPTED_CONTEXT_WINDOW;
pub use backend::{Backend, Outcome, Rule, Script, ScriptError};
#[cfg(feature = "llama")]
pub use backend::{LlamaLoadError, LlamaOptions};
pub use config::{Cli, Config, ConfigError, DEFAULT_MODEL_IDS, DEFAULT_MODEL_PATH};
pub use errors::{BedrockError, ErrorKind};
pub use faults::{Faults, FaultsError};
pub use meter::{Counters, ThrottledBy};
pub use server::{Server, StartError, Stats};
pub use wire::{LlamaRequest, MAX_GEN_LEN_LIMIT, StopReason, parse_request};
