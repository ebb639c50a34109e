//! The shared client: InvokeModel with retries, per-attempt time limits, deadline and
//! fallback models.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use tracing::{Instrument, field::Empty};

mod lazy;

use lazy::LazyClient;

use crate::metrics::CallRecord;
use crate::model::ModelId;
use crate::params::{GenerationParams, LlamaRequestBody};
use crate::prompt::ChatPrompt;
use crate::response::{Completion, LlamaResponseBody, Usage};
use crate::retry::{Deadline, Limit, RetryState};
use crate::sdk_error::from_sdk;
use crate::settings::ClientSettings;
use crate::stream::{CompletionStream, StreamStart};
use crate::{BedrockError, UsageTotals};

/// One model call to make: the rendered prompt, parameters and an optional deadline.
#[derive(Debug, Clone)]
pub struct Invocation {
    prompt: String,
    params: GenerationParams,
    deadline: Option<Deadline>,
}

impl Invocation {
    /// A call for a chat prompt.
    pub fn chat(prompt: &ChatPrompt) -> Self {
        Self::raw(prompt.render())
    }

    /// A call for an already formatted prompt string, sent as is.
    pub fn raw(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            params: GenerationParams::default(),
            deadline: None,
        }
    }

    /// Sets the generation parameters.
    pub fn params(mut self, params: GenerationParams) -> Self {
        self.params = params;
        self
    }

    /// Sets the time by which the call must be done.
    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The prompt string.
    pub fn prompt(&self) -> &str {
        &self.prompt
    }
}

/// The SDK's connect timeout (its default), unless the attempt timeout is shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

pub(crate) struct Inner {
    pub(crate) sdk: LazyClient,
    pub(crate) settings: ClientSettings,
}

/// The Bedrock client for Llama 3.2. Build it once per cold start; clones are cheap and
/// share one connection pool.
#[derive(Clone)]
pub struct LlamaClient {
    pub(crate) inner: Arc<Inner>,
}

/// The outcome of the retry/fallback loop: the value, the model that produced it, and
/// the attempt counts.
pub(crate) struct Answered<T> {
    pub(crate) value: T,
    pub(crate) model_id: String,
    pub(crate) attempts: u32,
    pub(crate) throttles: u32,
}

/// A failure of the retry/fallback loop with the counts for its metrics line.
pub(crate) struct Failed {
    pub(crate) error: BedrockError,
    pub(crate) model_id: String,
    pub(crate) attempts: u32,
    pub(crate) throttles: u32,
}

impl LlamaClient {
    /// Builds the client from the AWS configuration in the environment
    /// ([`crate::sdk::load_config`]) and [`ClientSettings::from_env`]. `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` redirects it,
    /// for example to the local emulator.
    pub async fn from_env() -> Result<Self, ::settings::ConfigError> {
        let settings = ClientSettings::from_env()?;
        let sdk_config = crate::sdk::load_config().await?;
        Ok(Self::new(&sdk_config, settings))
    }

    /// Builds the client from an SDK configuration and settings. The SDK's own retries
    /// are turned off: this crate retries, knowing the deadline and the fallbacks. The
    /// SDK's operation and attempt timeouts are the InvokeModel attempt timeout (one
    /// attempt per operation; for a stream they end with the response headers, and the
    /// idle timeout, which is checked here, covers the chunks). The SDK client itself is
    /// built on the first model call (a function that makes none never pays for it).
    pub fn new(sdk_config: &SdkConfig, settings: ClientSettings) -> Self {
        let attempt = settings.timeouts.invoke;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(attempt))
            .operation_attempt_timeout(attempt)
            .operation_timeout(attempt)
            .build();
        let config = aws_sdk_bedrockruntime::config::Builder::from(sdk_config)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        Self {
            inner: Arc::new(Inner {
                sdk: LazyClient::new(config),
                settings,
            }),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &ClientSettings {
        &self.inner.settings
    }

    /// Calls InvokeModel and returns the whole generation.
    pub async fn invoke(&self, call: &Invocation) -> Result<Completion, BedrockError> {
        let started = Instant::now();
        let span = call_span("InvokeModel", self.inner.settings.models.primary());
        async {
            let body = self.prepare(call)?;
            let outcome = self
                .with_retries(call.deadline, |model| {
                    self.invoke_once(model, body.clone(), call.deadline)
                })
                .await;
            match outcome {
                Ok(answered) => {
                    let response = answered.value;
                    let cost = self.inner.settings.pricing.cost(
                        &answered.model_id,
                        response.prompt_token_count,
                        response.generation_token_count,
                    );
                    let completion = Completion {
                        generation: response.generation,
                        usage: Usage {
                            prompt_tokens: response.prompt_token_count,
                            generation_tokens: response.generation_token_count,
                            stop_reason: response.stop_reason,
                            invocation_metrics: None,
                            cost,
                        },
                        model_id: answered.model_id,
                        attempts: answered.attempts,
                        latency: started.elapsed(),
                    };
                    self.inner
                        .finish_ok("InvokeModel", &completion, answered.throttles);
                    Ok(completion)
                }
                Err(failed) => Err(self
                    .inner
                    .finish_err("InvokeModel", failed, started, (0, 0))),
            }
        }
        .instrument(span)
        .await
    }

    /// Calls InvokeModelWithResponseStream. Retries and fallbacks cover everything up to
    /// the first generated text; errors after that arrive through the stream.
    pub async fn invoke_stream(&self, call: &Invocation) -> Result<CompletionStream, BedrockError> {
        let started = Instant::now();
        let span = call_span(
            "InvokeModelWithResponseStream",
            self.inner.settings.models.primary(),
        );
        let outcome = async {
            let body = self.prepare(call)?;
            Ok::<_, BedrockError>(
                self.with_retries(call.deadline, |model| {
                    StreamStart::open(self, model, body.clone(), call.deadline)
                })
                .await,
            )
        }
        .instrument(span.clone())
        .await?;
        match outcome {
            Ok(answered) => Ok(CompletionStream::new(
                self.inner.clone(),
                answered,
                call.deadline,
                started,
                span,
            )),
            Err(failed) => {
                let _entered = span.enter();
                Err(self
                    .inner
                    .finish_err("InvokeModelWithResponseStream", failed, started, (0, 0)))
            }
        }
    }

    /// Validates parameters and the context budget, and renders the request body.
    fn prepare(&self, call: &Invocation) -> Result<Blob, BedrockError> {
        let body = LlamaRequestBody::new(&call.prompt, &call.params)?;
        let estimate = self
            .inner
            .settings
            .budget
            .check(&call.prompt, call.params.max_gen_len)?;
        tracing::Span::current().record("estimated_prompt_tokens", estimate);
        tracing::debug!(prompt = %call.prompt, "prompt");
        Ok(Blob::new(body.to_json()))
    }

    async fn invoke_once(
        &self,
        model: ModelId,
        body: Blob,
        deadline: Option<Deadline>,
    ) -> Result<LlamaResponseBody, BedrockError> {
        let mut request = self
            .inner
            .sdk
            .invoke_model()
            .model_id(model.as_str())
            .content_type("application/json")
            .accept("application/json")
            .body(body);
        if let Some(g) = &self.inner.settings.guardrail {
            request = request
                .guardrail_identifier(&g.identifier)
                .guardrail_version(&g.version);
        }
        let limit = Limit::new(self.inner.settings.timeouts.invoke, deadline);
        let output = limit.run(request.send()).await?.map_err(from_sdk)?;
        LlamaResponseBody::parse(output.body().as_ref())
    }

    /// Runs `attempt` with retries per model and falls back through the model list.
    ///
    /// Retryable errors are retried on the same model (with backoff, within the deadline
    /// and `max_attempts`), then the next model is tried; a `ModelError` is retried once
    /// per call. When every model fails, or the deadline stops the retries, the call ends
    /// with the most retryable error seen (see [`BedrockError`]).
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        deadline: Option<Deadline>,
        mut attempt: F,
    ) -> Result<Answered<T>, Failed>
    where
        F: FnMut(ModelId) -> Fut,
        Fut: Future<Output = Result<T, BedrockError>>,
    {
        let settings = &self.inner.settings;
        let mut state = RetryState::new(&settings.retry, deadline);
        let mut throttles = 0;
        let mut seen = Seen::default();
        let mut model_error_retried = false;
        for model in settings.models.models() {
            state.next_model();
            loop {
                let fail = |error, throttles, state: &RetryState<'_>| Failed {
                    error,
                    model_id: model.to_string(),
                    attempts: state.total_attempts,
                    throttles,
                };
                if let Err(e) = state.begin_attempt(&seen.why()) {
                    return Err(seen.into_failed(e, throttles, &state, model));
                }
                let error = match attempt(model.clone()).await {
                    Ok(value) => {
                        return Ok(Answered {
                            value,
                            model_id: model.to_string(),
                            attempts: state.total_attempts,
                            throttles,
                        });
                    }
                    Err(BedrockError::DeadlineExceeded { message, .. }) => {
                        let remaining = deadline.map_or(Duration::ZERO, |d| d.remaining());
                        let e = state.deadline_error(remaining, &message);
                        return Err(seen.into_failed(e, throttles, &state, model));
                    }
                    Err(error) => error,
                };
                if matches!(error, BedrockError::Throttled { .. }) {
                    throttles += 1;
                }
                tracing::warn!(
                    model = %model,
                    attempt = state.model_attempts,
                    error_type = error.error_type(),
                    error = %error,
                    "model attempt failed"
                );
                let once_more = matches!(error, BedrockError::ModelFailed { .. })
                    && !std::mem::replace(&mut model_error_retried, true);
                if error.is_retryable() || once_more {
                    match state.pause_before_retry(&error) {
                        Ok(Some(pause)) => {
                            seen.record(error, model);
                            tokio::time::sleep(pause).await;
                            continue;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            seen.record(error, model);
                            return Err(seen.into_failed(e, throttles, &state, model));
                        }
                    }
                }
                if !error.warrants_fallback() {
                    // A fallback's own failure does not hide an earlier model's retryable
                    // one (throttling): that is what callers retry on. An error about the
                    // request itself would be the same on any model, so it stands.
                    return Err(match seen.worst {
                        Some((worst, worst_model))
                            if worst.is_retryable() && !error.is_about_the_request() =>
                        {
                            Failed {
                                error: worst,
                                model_id: worst_model,
                                attempts: state.total_attempts,
                                throttles,
                            }
                        }
                        _ => fail(error, throttles, &state),
                    });
                }
                seen.record(error, model);
                break;
            }
        }
        let (error, model_id) = seen.worst.unwrap_or_else(|| {
            (
                BedrockError::Other {
                    message: "no model configured".into(),
                },
                String::new(),
            )
        });
        Err(Failed {
            error,
            model_id,
            attempts: state.total_attempts,
            throttles,
        })
    }
}

/// The errors of a call's failed attempts, as far as they decide how it ends.
#[derive(Default)]
struct Seen {
    /// The most retryable error so far (the later one among equals) and its model.
    worst: Option<(BedrockError, String)>,
    /// The last error, for log messages.
    last: Option<String>,
}

impl Seen {
    fn record(&mut self, error: BedrockError, model: &ModelId) {
        self.last = Some(error.to_string());
        let rank = error.retry_rank();
        if self
            .worst
            .as_ref()
            .is_none_or(|(worst, _)| rank >= worst.retry_rank())
        {
            self.worst = Some((error, model.to_string()));
        }
    }

    fn why(&self) -> String {
        self.last.clone().unwrap_or_else(|| "first attempt".into())
    }

    /// The deadline stopped the call: it ends with the retryable error that caused the
    /// retries, if there was one, else with `deadline` (`DeadlineExceeded`).
    fn into_failed(
        self,
        deadline: BedrockError,
        throttles: u32,
        state: &RetryState<'_>,
        model: &ModelId,
    ) -> Failed {
        let (error, model_id) = match self.worst {
            Some((worst, worst_model)) if worst.is_retryable() => (worst, worst_model),
            _ => (deadline, model.to_string()),
        };
        Failed {
            error,
            model_id,
            attempts: state.total_attempts,
            throttles,
        }
    }
}

impl Inner {
    /// Records a successful call in the span, the log and the metrics.
    pub(crate) fn finish_ok(
        &self,
        operation: &'static str,
        completion: &Completion,
        throttles: u32,
    ) {
        let span = tracing::Span::current();
        let usage = &completion.usage;
        span.record("model", completion.model_id.as_str());
        span.record("prompt_tokens", usage.prompt_tokens);
        span.record("generation_tokens", usage.generation_tokens);
        span.record("stop_reason", usage.stop_reason.as_str());
        span.record("attempts", completion.attempts);
        span.record("latency_ms", completion.latency.as_millis() as u64);
        tracing::info!(
            model = %completion.model_id,
            prompt_tokens = usage.prompt_tokens,
            generation_tokens = usage.generation_tokens,
            stop_reason = usage.stop_reason.as_str(),
            attempts = completion.attempts,
            latency_ms = completion.latency.as_millis() as u64,
            "model call finished"
        );
        tracing::debug!(generation = %completion.generation, "generation");
        crate::meter::charge(UsageTotals::of(completion));
        self.settings.metrics.record(&CallRecord {
            operation,
            model_id: &completion.model_id,
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.generation_tokens,
            cost: usage.cost,
            latency: completion.latency,
            throttles,
            attempts: completion.attempts,
            error_type: None,
        });
    }

    /// Records a failed call and hands back its error. `seen` is the prompt and generated
    /// tokens the call reported before it failed (a stream that broke off), priced too.
    pub(crate) fn finish_err(
        &self,
        operation: &'static str,
        failed: Failed,
        started: Instant,
        seen: (u32, u32),
    ) -> BedrockError {
        let latency = started.elapsed();
        tracing::Span::current().record("attempts", failed.attempts);
        tracing::error!(
            model = %failed.model_id,
            error_type = failed.error.error_type(),
            error = %failed.error,
            attempts = failed.attempts,
            latency_ms = latency.as_millis() as u64,
            "model call failed"
        );
        let cost = self.settings.pricing.cost(&failed.model_id, seen.0, seen.1);
        crate::meter::charge(UsageTotals {
            prompt_tokens: u64::from(seen.0),
            generation_tokens: u64::from(seen.1),
            model_calls: 0,
            attempts: failed.attempts,
            cost,
        });
        self.settings.metrics.record(&CallRecord {
            operation,
            model_id: &failed.model_id,
            input_tokens: seen.0,
            output_tokens: seen.1,
            cost,
            latency,
            throttles: failed.throttles,
            attempts: failed.attempts,
            error_type: Some(failed.error.error_type()),
        });
        failed.error
    }
}

fn call_span(operation: &'static str, primary: &ModelId) -> tracing::Span {
    tracing::info_span!(
        "bedrock_call",
        operation,
        primary_model = %primary,
        model = Empty,
        estimated_prompt_tokens = Empty,
        prompt_tokens = Empty,
        generation_tokens = Empty,
        stop_reason = Empty,
        attempts = Empty,
        latency_ms = Empty,
    )
}

#[cfg(test)]
mod tests {
    use aws_config::{BehaviorVersion, Region};

    use super::*;
    use crate::AttemptTimeouts;

    fn client_with(timeouts: AttemptTimeouts) -> LlamaClient {
        let sdk_config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let settings = ClientSettings {
            timeouts,
            ..ClientSettings::default()
        };
        LlamaClient::new(&sdk_config, settings)
    }

    #[test]
    fn the_sdk_ends_an_operation_and_its_one_attempt_at_the_attempt_timeout() {
        // Connect: the SDK's default, or the attempt timeout when that is shorter. The
        // stream idle timeout is this crate's own check, not the SDK's.
        for (invoke, connect) in [
            (Duration::from_secs(45), CONNECT_TIMEOUT),
            (Duration::from_secs(2), Duration::from_secs(2)),
        ] {
            let client = client_with(AttemptTimeouts {
                invoke,
                stream_idle: Duration::from_secs(7),
            });
            let config = client.inner.sdk.config();
            let timeouts = config.timeout_config().expect("a timeout config");
            assert_eq!(timeouts.operation_attempt_timeout(), Some(invoke));
            assert_eq!(timeouts.operation_timeout(), Some(invoke));
            assert_eq!(timeouts.connect_timeout(), Some(connect));
            let retry = config.retry_config().expect("a retry config");
            assert_eq!(retry.max_attempts(), 1, "the SDK's own retries are off");
        }
    }
}
