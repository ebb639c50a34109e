//! The translate Lambda function: text between the eight Llama 3.2 languages, from
//! `POST /translations` or a Step Functions task (text or an S3 document), in chunks
//! that fit the context window, with glossary terms enforced and checked.
//!
//! [`App`] is the function's table of handlers; `lambda_kit::run` serves it.

pub mod config;
pub mod document;
pub mod expansion;
pub mod glossary;
mod handler;
pub mod markdown;
pub mod prompt;
pub mod request;
pub mod response;
pub mod translation;

pub use config::Config;
pub use handler::Endpoint;
pub use response::TranslationResponse;

/// The clients and configuration built once per cold start and shared by invocations.
#[derive(Clone)]
pub struct App {
    /// The Bedrock client.
    pub llm: bedrock::LlamaClient,
    /// The S3 client for document input.
    pub s3: aws_sdk_s3::Client,
    /// Limits and knobs.
    pub config: Config,
}
