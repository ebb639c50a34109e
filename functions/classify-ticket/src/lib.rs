//! Lambda function `classify-ticket`: classifies a support ticket (category, priority,
//! sentiment, language, routing queue) with Llama 3.2 on Bedrock, for `POST /tickets/classify`
//! and Step Functions tasks; a model answer that stays invalid becomes `needs_review`, never a 5xx.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use classify_ticket::{App, Config};
//! let app = App::new(bedrock::LlamaClient::from_env().await?, Config::builtin()?); // once
//! let deadline = bedrock::Deadline::after(std::time::Duration::from_secs(10));
//! let event = serde_json::json!({"subject": "Charged twice", "body": "Please refund one."});
//! let result = lambda_kit::handle(&app, event, deadline).await?; // Step Functions task input
//! assert!(result["queue"].is_string());
//! # Ok(()) }
//! ```

pub mod answer;
pub mod classify;
pub mod config;
pub mod handler;
pub mod prompt;
pub mod taxonomy;
pub mod ticket;

pub use classify::{Classifier, TicketClassification};
pub use config::{ClassifySettings, Config, Limits};
pub use handler::{App, Endpoint};
pub use taxonomy::{Taxonomy, TaxonomyError};
pub use ticket::{Channel, CustomerTier, Ticket};
