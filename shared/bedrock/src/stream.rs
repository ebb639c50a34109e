//! InvokeModelWithResponseStream: text deltas as they arrive, then the usage.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver;
use aws_sdk_bedrockruntime::types::ResponseStream;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use serde::Deserialize;

use crate::BedrockError;
use crate::client::{Answered, Failed, Inner, LlamaClient};
use crate::model::ModelId;
use crate::response::{Completion, InvocationMetrics, StopReason, Usage, check_guardrail};
use crate::retry::{Deadline, Limit};
use crate::sdk_error::{from_sdk, from_stream};

const OPERATION: &str = "InvokeModelWithResponseStream";

type Receiver = EventReceiver<ResponseStream, ResponseStreamError>;

/// The JSON inside each `chunk` event's `bytes`.
#[derive(Debug, Deserialize)]
struct ChunkBody {
    #[serde(default)]
    generation: String,
    prompt_token_count: Option<u32>,
    generation_token_count: Option<u32>,
    stop_reason: Option<String>,
    #[serde(rename = "amazon-bedrock-invocationMetrics")]
    invocation_metrics: Option<InvocationMetrics>,
    #[serde(rename = "amazon-bedrock-guardrailAction")]
    guardrail_action: Option<String>,
}

impl ChunkBody {
    /// `ContentBlocked` when this chunk says the guardrail intervened.
    fn check_guardrail(&self) -> Result<(), BedrockError> {
        let stop = StopReason::from(self.stop_reason.as_deref().unwrap_or(""));
        check_guardrail(self.guardrail_action.as_deref(), &stop)
    }
}

/// What a stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Newly generated text.
    Text(String),
    /// The stream ended normally; the last event.
    End(Usage),
}

/// An opened stream whose first chunk has arrived (so retries can cover it).
pub(crate) struct StreamStart {
    receiver: Receiver,
    first: Option<ChunkBody>,
}

impl StreamStart {
    /// Sends the request and waits for the first chunk, at most the stream idle timeout
    /// (and never past the deadline).
    pub(crate) async fn open(
        client: &LlamaClient,
        model: ModelId,
        body: Blob,
        deadline: Option<Deadline>,
    ) -> Result<Self, BedrockError> {
        let inner = &client.inner;
        let mut request = inner
            .sdk
            .invoke_model_with_response_stream()
            .model_id(model.as_str())
            .content_type("application/json")
            .accept("application/json")
            .body(body);
        if let Some(g) = &inner.settings.guardrail {
            request = request
                .guardrail_identifier(&g.identifier)
                .guardrail_version(&g.version);
        }
        let limit = Limit::new(inner.settings.timeouts.stream_idle, deadline);
        let open = async {
            let mut output = request.send().await.map_err(from_sdk)?;
            let first = next_chunk(&mut output.body).await?;
            if let Some(chunk) = &first {
                chunk.check_guardrail()?;
            }
            Ok::<_, BedrockError>(Self {
                receiver: output.body,
                first,
            })
        };
        limit.run(open).await?
    }
}

async fn next_chunk(receiver: &mut Receiver) -> Result<Option<ChunkBody>, BedrockError> {
    loop {
        match receiver.recv().await.map_err(from_stream)? {
            None => return Ok(None),
            Some(ResponseStream::Chunk(part)) => {
                let bytes = part.bytes.as_ref().map(Blob::as_ref).unwrap_or_default();
                return serde_json::from_slice(bytes).map(Some).map_err(|e| {
                    BedrockError::MalformedResponse {
                        message: format!("stream chunk is not a Llama chunk: {e}"),
                    }
                });
            }
            // Event kinds newer than this SDK carry nothing we use.
            Some(_) => continue,
        }
    }
}

/// A streamed generation. Read it with [`CompletionStream::next_event`] until `None`,
/// or gather it with [`CompletionStream::collect`]. One metrics line is written when it
/// ends or fails.
pub struct CompletionStream {
    inner: Arc<Inner>,
    receiver: Receiver,
    pending: Option<ChunkBody>,
    model_id: String,
    attempts: u32,
    throttles: u32,
    deadline: Option<Deadline>,
    started: Instant,
    span: tracing::Span,
    prompt_tokens: u32,
    generation_tokens: u32,
    end: Option<Usage>,
    finished: bool,
}

impl CompletionStream {
    pub(crate) fn new(
        inner: Arc<Inner>,
        answered: Answered<StreamStart>,
        deadline: Option<Deadline>,
        started: Instant,
        span: tracing::Span,
    ) -> Self {
        Self {
            inner,
            receiver: answered.value.receiver,
            pending: answered.value.first,
            model_id: answered.model_id,
            attempts: answered.attempts,
            throttles: answered.throttles,
            deadline,
            started,
            span,
            prompt_tokens: 0,
            generation_tokens: 0,
            end: None,
            finished: false,
        }
    }

    /// The model (from the configured list) that is answering.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Attempts made to open the stream, retries and fallbacks included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The next event: text as it arrives, then [`StreamEvent::End`], then `None`.
    /// Errors inside the stream come back as the same typed [`BedrockError`]s.
    pub async fn next_event(&mut self) -> Result<Option<StreamEvent>, BedrockError> {
        loop {
            if self.finished {
                return Ok(None);
            }
            if let Some(usage) = self.end.take() {
                self.finished = true;
                self.record_ok(&usage);
                return Ok(Some(StreamEvent::End(usage)));
            }
            let chunk = match self.pending.take() {
                Some(chunk) => Some(chunk),
                None => {
                    let limit = Limit::new(self.inner.settings.timeouts.stream_idle, self.deadline);
                    let next = limit.run(next_chunk(&mut self.receiver)).await;
                    match next.and_then(|r| r) {
                        Ok(chunk) => chunk,
                        Err(error) => return Err(self.fail(error)),
                    }
                }
            };
            let Some(chunk) = chunk else {
                return Err(self.fail(BedrockError::MalformedResponse {
                    message: "the stream ended without a stop reason".into(),
                }));
            };
            if let Err(blocked) = chunk.check_guardrail() {
                return Err(self.fail(blocked));
            }
            if let Some(n) = chunk.prompt_token_count {
                self.prompt_tokens = n;
            }
            if let Some(n) = chunk.generation_token_count {
                self.generation_tokens = n;
            }
            if let Some(reason) = chunk.stop_reason {
                let metrics = chunk.invocation_metrics;
                let prompt_tokens = metrics.map_or(self.prompt_tokens, |m| m.input_token_count);
                let generation_tokens =
                    metrics.map_or(self.generation_tokens, |m| m.output_token_count);
                self.end = Some(Usage {
                    prompt_tokens,
                    generation_tokens,
                    stop_reason: StopReason::from(reason.as_str()),
                    invocation_metrics: metrics,
                    cost: self.inner.settings.pricing.cost(
                        &self.model_id,
                        prompt_tokens,
                        generation_tokens,
                    ),
                });
            }
            if !chunk.generation.is_empty() {
                return Ok(Some(StreamEvent::Text(chunk.generation)));
            }
        }
    }

    /// Reads the whole stream into one [`Completion`].
    pub async fn collect(mut self) -> Result<Completion, BedrockError> {
        let mut generation = String::new();
        while let Some(event) = self.next_event().await? {
            match event {
                StreamEvent::Text(text) => generation.push_str(&text),
                StreamEvent::End(usage) => {
                    return Ok(Completion {
                        generation,
                        usage,
                        model_id: self.model_id.clone(),
                        attempts: self.attempts,
                        latency: self.started.elapsed(),
                    });
                }
            }
        }
        Err(BedrockError::MalformedResponse {
            message: "the stream was already read to its end".into(),
        })
    }

    fn record_ok(&self, usage: &Usage) {
        let _entered = self.span.enter();
        let completion = Completion {
            generation: String::new(),
            usage: usage.clone(),
            model_id: self.model_id.clone(),
            attempts: self.attempts,
            latency: self.started.elapsed(),
        };
        self.inner.finish_ok(OPERATION, &completion, self.throttles);
    }

    fn fail(&mut self, error: BedrockError) -> BedrockError {
        self.finished = true;
        let _entered = self.span.enter();
        let throttles = self.throttles + u32::from(matches!(error, BedrockError::Throttled { .. }));
        self.inner.finish_err(
            OPERATION,
            Failed {
                error,
                model_id: self.model_id.clone(),
                attempts: self.attempts,
                throttles,
            },
            self.started,
            (self.prompt_tokens, self.generation_tokens),
        )
    }
}
