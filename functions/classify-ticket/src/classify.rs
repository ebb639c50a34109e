//! The classification itself: ask the model, check its answer, ask once for a repair, and
//! fall back to `unclassified` with `needs_review` rather than fail on a bad answer.

use bedrock::{
    BedrockError, ChatPrompt, Completion, Deadline, GenerationParams, Invocation, LlamaClient,
    StopReason, UsageTotals, estimate_tokens,
};
use lambda_kit::sync_budget::{ModelCall, Workload};
use serde::Serialize;
use serde_json::{Map, Value};
use text::Language;

use crate::answer::{Answer, Sentiment, full_answer, parse_answer};
use crate::prompt::{self, PREFILL};
use crate::taxonomy::{Taxonomy, UNCLASSIFIED};
use crate::ticket::Ticket;

/// Sampling temperature: low, for stable labels.
pub const TEMPERATURE: f32 = 0.1;

/// The result returned to the caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketClassification {
    /// A taxonomy category, or `unclassified`.
    pub category: String,
    /// A taxonomy priority (the review priority when unclassified).
    pub priority: String,
    /// The ticket's sentiment; `null` when unclassified.
    pub sentiment: Option<Sentiment>,
    /// The detected language of subject and body (`null` when undetermined or not one of
    /// the eight Llama 3.2 languages).
    pub language: Option<Language>,
    /// The queue the category routes to (the review queue when unclassified).
    pub queue: String,
    /// The model's confidence in the category, 0-1 (0 when unclassified).
    pub confidence: f64,
    /// One line on why.
    pub rationale: String,
    /// Whether a person must look at the ticket: the model gave no valid answer, or its
    /// confidence is below `CLASSIFY_REVIEW_BELOW_CONFIDENCE`.
    pub needs_review: bool,
    /// Why it needs review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The model (id, profile or ARN) that gave the last answer.
    pub model: String,
    /// Token usage.
    pub usage: UsageTotals,
    /// The caller's `metadata`, unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// Classifies tickets against one taxonomy. Build it once per cold start.
#[derive(Debug, Clone)]
pub struct Classifier {
    taxonomy: Taxonomy,
    system: String,
    params: GenerationParams,
    review_below: f64,
}

impl Classifier {
    /// A classifier for `taxonomy` whose model calls generate at most `max_gen_len` tokens.
    pub fn new(taxonomy: Taxonomy, max_gen_len: u32) -> Self {
        Self {
            system: prompt::system_prompt(&taxonomy),
            taxonomy,
            params: GenerationParams::default()
                .temperature(TEMPERATURE)
                .max_gen_len(max_gen_len),
            review_below: crate::config::DEFAULT_REVIEW_BELOW_CONFIDENCE,
        }
    }

    /// Classifications with a confidence below `threshold` (0-1) get `needs_review`.
    pub fn review_below(mut self, threshold: f64) -> Self {
        self.review_below = threshold;
        self
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    /// The first prompt for `ticket`, as rendered for the model.
    pub fn prompt(&self, ticket: &Ticket) -> ChatPrompt {
        prompt::classification_prompt(&self.system, ticket)
    }

    /// The model work of classifying `ticket`: one call (a repair call, needed only for
    /// an invalid answer, is not foreseen).
    pub fn workload(&self, ticket: &Ticket) -> Workload {
        Workload::new().then(ModelCall {
            prompt_tokens: estimate_tokens(&self.prompt(ticket).render()),
            max_gen_len: self.params.max_gen_len,
        })
    }

    /// Classifies `ticket`. Model service errors (throttling, timeouts, context overflow of
    /// the first call, ...) are errors; an answer that is still invalid after one repair
    /// call is an `unclassified` result with `needs_review`.
    pub async fn classify(
        &self,
        client: &LlamaClient,
        ticket: Ticket,
        deadline: Deadline,
    ) -> Result<TicketClassification, BedrockError> {
        let language = text::detect_confident(&ticket.text()).map(|d| d.language);
        let mut usage = UsageTotals::default();
        let first = self
            .call(client, &self.prompt(&ticket), deadline, &mut usage)
            .await?;
        let first_answer = full_answer(PREFILL, &first.generation);
        let mut problems = match parse_answer(&first_answer, &self.taxonomy) {
            Ok(answer) => {
                return Ok(self.classified(answer, language, first.model_id, usage, ticket));
            }
            Err(invalid) => invalid.problems,
        };
        if first.usage.stop_reason == StopReason::Length {
            problems.push(
                "the answer was cut off at the length limit: send only the JSON object, \
                 with a short rationale"
                    .into(),
            );
        }
        tracing::warn!(
            problems = problems.len(),
            "model answer invalid; asking for a repair"
        );
        tracing::debug!(answer = %first_answer, problems = ?problems, "invalid answer");

        let repair = prompt::repair_prompt(
            &self.system,
            &ticket,
            &first_answer,
            &problems,
            &self.taxonomy,
        );
        let second = match self.call(client, &repair, deadline, &mut usage).await {
            Ok(completion) => completion,
            Err(BedrockError::ContextOverflow(_)) => {
                let reason = format!(
                    "the model's answer was invalid ({}) and the repair prompt does not fit \
                     the context window",
                    problems.join("; ")
                );
                return Ok(self.unclassified(reason, language, first.model_id, usage, ticket));
            }
            Err(other) => return Err(other),
        };
        let second_answer = full_answer(PREFILL, &second.generation);
        match parse_answer(&second_answer, &self.taxonomy) {
            Ok(answer) => Ok(self.classified(answer, language, second.model_id, usage, ticket)),
            Err(invalid) => {
                tracing::debug!(answer = %second_answer, "repaired answer still invalid");
                let reason = format!(
                    "the model's answer was invalid, and again after one repair attempt: {invalid}"
                );
                Ok(self.unclassified(reason, language, second.model_id, usage, ticket))
            }
        }
    }

    async fn call(
        &self,
        client: &LlamaClient,
        prompt: &ChatPrompt,
        deadline: Deadline,
        usage: &mut UsageTotals,
    ) -> Result<Completion, BedrockError> {
        let call = Invocation::chat(prompt)
            .params(self.params)
            .deadline(deadline);
        let completion = client.invoke(&call).await?;
        usage.add(&completion);
        Ok(completion)
    }

    fn classified(
        &self,
        answer: Answer,
        language: Option<Language>,
        model: String,
        usage: UsageTotals,
        ticket: Ticket,
    ) -> TicketClassification {
        let queue = self
            .taxonomy
            .queue_for(&answer.category)
            .unwrap_or(self.taxonomy.review_queue())
            .to_owned();
        let unsure = answer.confidence < self.review_below;
        let reason = unsure.then(|| {
            format!(
                "the model's confidence {} is below {} (CLASSIFY_REVIEW_BELOW_CONFIDENCE)",
                answer.confidence, self.review_below
            )
        });
        TicketClassification {
            category: answer.category,
            priority: answer.priority,
            sentiment: Some(answer.sentiment),
            language,
            queue,
            confidence: answer.confidence,
            rationale: answer.rationale,
            needs_review: unsure,
            reason,
            model,
            usage,
            metadata: ticket.metadata,
        }
    }

    fn unclassified(
        &self,
        reason: String,
        language: Option<Language>,
        model: String,
        usage: UsageTotals,
        ticket: Ticket,
    ) -> TicketClassification {
        TicketClassification {
            category: UNCLASSIFIED.to_owned(),
            priority: self.taxonomy.review_priority().to_owned(),
            sentiment: None,
            language,
            queue: self.taxonomy.review_queue().to_owned(),
            confidence: 0.0,
            rationale: "The model did not give a valid classification.".to_owned(),
            needs_review: true,
            reason: Some(reason),
            model,
            usage,
            metadata: ticket.metadata,
        }
    }
}
