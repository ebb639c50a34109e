//! The one crate through which every model call in the project goes.
//! Meta Llama 3.2 on Amazon Bedrock: request/response types, the Llama 3 chat prompt,
//! InvokeModel and streaming, typed errors, retries, fallbacks, context budgeting, metrics.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use bedrock::{ChatPrompt, GenerationParams, Invocation, LlamaClient};
//! let client = LlamaClient::from_env().await?; // once per cold start
//! let prompt = ChatPrompt::new().system("Answer briefly.").user("What is S3?");
//! let call = Invocation::chat(&prompt).params(GenerationParams::default().max_gen_len(128));
//! let answer = client.invoke(&call).await?;
//! println!("{} ({} tokens, by {})", answer.generation, answer.usage.generation_tokens, answer.model_id);
//! # Ok(()) }
//! ```
//!
//! Errors carry a stable [`BedrockError::error_type`] for Lambda `Diagnostic`s and Step
//! Functions `Retry`/`Catch`; the table is on [`BedrockError`]. Settings come from the
//! environment ([`settings::BedrockEnv`]).

/// Token estimation and the context budget, from the `tokens` crate (kept here under its
/// old path; [`budget::BudgetError`] converts into [`BedrockError`]).
pub use tokens as budget;
mod client;
mod error;
mod meter;
pub mod metrics;
pub mod model;
pub mod params;
pub mod pricing;
pub mod prompt;
pub mod response;
pub mod retry;
pub mod sdk;
mod sdk_error;
pub mod settings;
mod stream;
mod usage;

pub use budget::{ContextBudget, estimate_tokens, running_estimate};
pub use client::{Invocation, LlamaClient};
pub use error::BedrockError;
pub use meter::metered;
pub use model::{ModelId, ModelSelection};
pub use params::GenerationParams;
pub use pricing::{Cost, Pricing};
pub use prompt::{ChatPrompt, Role, neutralize};
pub use response::{Completion, InvocationMetrics, StopReason, Usage};
pub use retry::{AttemptTimeouts, Deadline, RetryPolicy};
pub use settings::{ClientSettings, Guardrail};
pub use stream::{CompletionStream, StreamEvent};
pub use usage::UsageTotals;
