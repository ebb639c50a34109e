//! The function's table of handlers: `POST /tickets/classify` and Step Functions task input,
//! both one classification.

use bedrock::{Deadline, LlamaClient};
use lambda_kit::sync_budget::Workload;
use lambda_kit::{Clients, Function, Route, TaskError, to_json};
use serde_json::Value;
use settings::ConfigError;

use crate::classify::{Classifier, TicketClassification};
use crate::config::{ClassifySettings, Config, Limits};
use crate::ticket::Ticket;

/// What the function serves over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /tickets/classify`.
    Classify,
}

/// What the handler needs, built once per cold start and borrowed by every invocation.
pub struct App {
    client: LlamaClient,
    limits: Limits,
    classifier: Classifier,
}

impl App {
    /// The app for `client` and `config`.
    pub fn new(client: LlamaClient, config: Config) -> Self {
        Self {
            client,
            limits: config.limits,
            classifier: Classifier::new(config.taxonomy, config.max_gen_len)
                .review_below(config.review_below_confidence),
        }
    }

    /// The classifier (taxonomy and prompts).
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Checks a JSON ticket and classifies it.
    pub async fn classify(
        &self,
        input: Value,
        deadline: Deadline,
    ) -> Result<TicketClassification, TaskError> {
        let ticket = Ticket::from_json(input, &self.limits)?;
        let result = self
            .classifier
            .classify(&self.client, ticket, deadline)
            .await?;
        tracing::info!(
            category = %result.category,
            priority = %result.priority,
            queue = %result.queue,
            needs_review = result.needs_review,
            model_calls = result.usage.model_calls,
            language = result.language.map(|l| l.code()),
            "ticket classified"
        );
        Ok(result)
    }
}

impl Function for App {
    type Settings = ClassifySettings;
    type Endpoint = Endpoint;

    const NAME: &'static str = "classify-ticket";
    const ROUTES: &'static [Route<Endpoint>] =
        &[Route::post("/tickets/classify", Endpoint::Classify)];

    fn build(clients: &Clients, settings: ClassifySettings) -> Result<Self, ConfigError> {
        Ok(Self::new(clients.llama.clone(), settings.try_into()?))
    }

    fn max_request_bytes(&self) -> usize {
        self.limits.max_request_bytes
    }

    fn estimate(&self, Endpoint::Classify: Endpoint, input: &Value) -> Option<Workload> {
        let ticket = Ticket::from_json(input.clone(), &self.limits).ok()?;
        Some(self.classifier.workload(&ticket))
    }

    async fn http(
        &self,
        Endpoint::Classify: Endpoint,
        input: Value,
        deadline: Deadline,
    ) -> Result<Value, TaskError> {
        self.task(input, deadline).await
    }

    async fn task(&self, input: Value, deadline: Deadline) -> Result<Value, TaskError> {
        to_json(&self.classify(input, deadline).await?)
    }
}
