//! HTTP handlers: InvokeModel, InvokeModelWithResponseStream, health, the emulator's
//! counters (`/_local/stats`), and Bedrock-shaped answers for everything else.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use percent_encoding::percent_decode_str;
use tokio::sync::{mpsc, watch};

use crate::backend::{Action, Engine, GenEvent};
use crate::capacity::Capacity;
use crate::errors::{BedrockError, ErrorKind};
use crate::eventstream;
use crate::faults::FaultInjector;
use crate::meter::{Call, Meter};
use crate::server::Stats;
use crate::wire::{self, ChunkBody, InvocationMetrics, InvokeResponse, MALFORMED_BODY, StopReason};

/// Shared by all handlers.
pub(crate) struct AppState {
    pub engine: Engine,
    pub model_ids: Vec<String>,
    pub capacity: Capacity,
    pub faults: FaultInjector,
    pub stats: Mutex<Stats>,
    /// Quotas and counters of the model calls.
    pub meter: Arc<Meter>,
    /// Becomes `true` when the server shuts down; stalled requests end then.
    pub stopping: watch::Receiver<bool>,
}

/// The request header that applies a guardrail to InvokeModel and its streaming form.
const GUARDRAIL_HEADER: &str = "x-amzn-bedrock-guardrailidentifier";

/// The message a guardrail answers with when it blocks (Bedrock's default blocked-input
/// message).
pub(crate) const GUARDRAIL_BLOCKED_MESSAGE: &str = "Sorry, the model cannot answer this question.";

/// The two model operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Invoke,
    Stream,
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ping", get(health))
        .route("/model/{*rest}", post(model_operation))
        .route("/_local/stats", get(local_stats))
        .route("/_local/stats/reset", post(reset_local_stats))
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /_local/stats`: the counters, as JSON (counts only, never text).
async fn local_stats(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    axum::Json(state.meter.counters(state.capacity.in_flight()))
}

/// `POST /_local/stats/reset`: zeroes the counters and peaks; answers the counters after.
async fn reset_local_stats(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    state.meter.reset(state.capacity.in_flight());
    tracing::info!("counters reset");
    axum::Json(state.meter.counters(state.capacity.in_flight()))
}

async fn unknown_operation() -> Response {
    with_request_id(BedrockError::of(ErrorKind::UnknownOperationException).into_response())
}

/// A request id in Bedrock's UUID form.
fn new_request_id() -> String {
    let bits: u128 = rand::random();
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn with_request_id(mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&new_request_id()) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

fn header_value(n: impl std::fmt::Display) -> HeaderValue {
    HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"))
}

/// Splits `/model/{id}/invoke[-with-response-stream]` (raw, still percent-encoded).
fn split_path(path: &str) -> Option<(&str, Operation)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, operation) = if let Some(id) = rest.strip_suffix("/invoke-with-response-stream") {
        (id, Operation::Stream)
    } else {
        (rest.strip_suffix("/invoke")?, Operation::Invoke)
    };
    (!id.is_empty()).then_some((id, operation))
}

/// The model id inside a Bedrock ARN: `arn:aws:bedrock:<region>:<account>:inference-profile/<id>`
/// or `arn:aws:bedrock:<region>::foundation-model/<id>`.
fn arn_model_id(id: &str) -> Option<&str> {
    let mut parts = id.splitn(6, ':');
    let (arn, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (_region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    if arn != "arn" || !partition.starts_with("aws") || service != "bedrock" {
        return None;
    }
    resource
        .strip_prefix("inference-profile/")
        .or_else(|| resource.strip_prefix("foundation-model/"))
        .filter(|id| !id.is_empty())
}

/// The configured id a requested id (plain or ARN) resolves to.
fn resolve<'a>(served: &'a [String], requested: &str) -> Option<&'a str> {
    let base = arn_model_id(requested).unwrap_or(requested);
    served
        .iter()
        .find(|id| *id == base || *id == requested)
        .map(String::as_str)
}

fn count(stats: &Mutex<Stats>, operation: Operation, model_id: &str) {
    let mut stats = stats.lock().unwrap_or_else(PoisonError::into_inner);
    let map: &mut BTreeMap<String, u64> = match operation {
        Operation::Invoke => &mut stats.invoke,
        Operation::Stream => &mut stats.stream,
    };
    *map.entry(model_id.to_owned()).or_default() += 1;
    // One line per request received, so that tests over the local stack can count them.
    tracing::info!(?operation, model = model_id, "request received");
}

fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn model_operation(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let guarded = headers.contains_key(GUARDRAIL_HEADER);
    let mut call = state.meter.call();
    let response = match handle(&state, &mut call, uri.path(), guarded, body, started).await {
        Ok(response) => {
            call.end(Ok(()));
            response
        }
        Err(error) => {
            tracing::info!(kind = %error.kind, "request refused: {}", error.message);
            call.end(Err(&error));
            error.into_response()
        }
    };
    with_request_id(response)
}

/// Accepts a request and never answers it, until the server shuts down.
async fn stall(state: &AppState) -> BedrockError {
    state
        .stats
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .stalled += 1;
    tracing::info!("stalling a request (fault)");
    let mut stopping = state.stopping.clone();
    let _ = stopping.wait_for(|stopping| *stopping).await;
    BedrockError::of(ErrorKind::ServiceUnavailableException)
}

async fn handle(
    state: &AppState,
    call: &mut Call,
    path: &str,
    guarded: bool,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
) -> Result<Response, BedrockError> {
    let (raw_id, operation) =
        split_path(path).ok_or_else(|| BedrockError::of(ErrorKind::UnknownOperationException))?;
    let model_id = percent_decode_str(raw_id)
        .decode_utf8()
        .map_err(|_| BedrockError::validation("The provided model identifier is invalid."))?;
    count(&state.stats, operation, &model_id);
    let served = resolve(&state.model_ids, &model_id).ok_or_else(|| {
        BedrockError::new(
            ErrorKind::ResourceNotFoundException,
            format!(
                "The model {model_id} is not served here. Check the model identifier and try again."
            ),
        )
    })?;
    let body = body.map_err(|e| {
        BedrockError::validation(format!("Malformed input request: {}", e.body_text()))
    })?;
    let request = wire::parse_request(&body)?;
    let max_gen_len = request.max_gen_len;
    let plan = state.engine.plan(served, &model_id, request).await?;
    let draw = state.faults.draw();
    if !state.faults.added_latency().is_zero() {
        tokio::time::sleep(state.faults.added_latency()).await;
    }
    if let Some(error) = draw.error {
        return Err(error);
    }
    if draw.stall || matches!(plan.action, Action::Stall) {
        return Err(stall(state).await);
    }
    if guarded && draw.guardrail {
        tracing::info!(?operation, "the guardrail intervenes (fault)");
        return blocked(operation, plan.prompt_tokens, started);
    }
    let guardrail_action = guarded.then_some("NONE");
    call.reserve(plan.prompt_tokens, max_gen_len)?;
    let admission = state.capacity.admit().await.inspect_err(|error| {
        call.refused_by_capacity(error);
    })?;
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    let action = if draw.malformed {
        Action::Malformed
    } else {
        plan.action
    };
    tracing::debug!(model = served, ?operation, max_gen_len, "generating");
    match (action, operation) {
        (Action::Fail(error), _) => Err(error),
        (Action::Stall, _) => Err(stall(state).await),
        (Action::Malformed, Operation::Invoke) => Ok(json_response(MALFORMED_BODY.to_vec())),
        (Action::Malformed, Operation::Stream) => {
            let frame = eventstream::chunk_frame(MALFORMED_BODY).map_err(internal)?;
            Ok(stream_response(Body::from(frame)))
        }
        (Action::Generate(generation), Operation::Invoke) => {
            let prompt_tokens = generation.prompt_tokens;
            let events = generation.start(admission);
            invoke(call, events, prompt_tokens, guardrail_action, started).await
        }
        (Action::Generate(generation), Operation::Stream) => {
            let fail_after = [
                state.faults.stream_fail_after(),
                draw.stream_fail.then_some(1),
            ]
            .into_iter()
            .flatten()
            .min();
            let stream = StreamState {
                call: call.hand_over(),
                prompt_tokens: generation.prompt_tokens,
                events: generation.start(admission),
                chunks_sent: 0,
                started,
                first_byte_latency: None,
                fail_after,
                guardrail_action,
                finished: false,
            };
            Ok(stream_frames(stream))
        }
    }
}

/// The answer when the guardrail blocks a request, as Bedrock gives it: 200 with the
/// guardrail's message as the generation and `amazon-bedrock-guardrailAction: INTERVENED`
/// (InvokeModel: in the body; streaming: in the one chunk, with the invocation metrics).
fn blocked(
    operation: Operation,
    prompt_tokens: u32,
    started: Instant,
) -> Result<Response, BedrockError> {
    match operation {
        Operation::Invoke => {
            let body = InvokeResponse {
                generation: GUARDRAIL_BLOCKED_MESSAGE,
                prompt_token_count: prompt_tokens,
                generation_token_count: 0,
                stop_reason: StopReason::Stop,
                guardrail_action: Some("INTERVENED"),
            };
            Ok(json_response(serde_json::to_vec(&body).map_err(internal)?))
        }
        Operation::Stream => {
            let latency = millis_since(started);
            let chunk = ChunkBody {
                generation: GUARDRAIL_BLOCKED_MESSAGE,
                prompt_token_count: Some(prompt_tokens),
                generation_token_count: 0,
                stop_reason: Some(StopReason::Stop),
                metrics: Some(InvocationMetrics {
                    input_token_count: prompt_tokens,
                    output_token_count: 0,
                    invocation_latency: latency,
                    first_byte_latency: latency,
                }),
                guardrail_action: Some("INTERVENED"),
            };
            let json = serde_json::to_vec(&chunk).map_err(internal)?;
            let frame = eventstream::chunk_frame(&json).map_err(internal)?;
            Ok(stream_response(Body::from(frame)))
        }
    }
}

fn internal(error: impl std::fmt::Display) -> BedrockError {
    tracing::error!("{error}");
    BedrockError::of(ErrorKind::InternalServerException)
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn stream_response(body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(eventstream::CONTENT_TYPE),
    );
    headers.insert(
        "x-amzn-bedrock-content-type",
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Collects a whole generation into the InvokeModel response.
async fn invoke(
    call: &mut Call,
    mut events: mpsc::Receiver<GenEvent>,
    prompt_tokens: u32,
    guardrail_action: Option<&'static str>,
    started: Instant,
) -> Result<Response, BedrockError> {
    let mut generation = String::new();
    while let Some(event) = events.recv().await {
        match event {
            GenEvent::Piece {
                text,
                generated_tokens,
            } => {
                call.generated(generated_tokens);
                generation.push_str(&text);
            }
            GenEvent::Failed(error) => return Err(error),
            GenEvent::Done {
                stop_reason,
                generated_tokens,
            } => {
                call.generated(generated_tokens);
                let body = InvokeResponse {
                    generation: &generation,
                    prompt_token_count: prompt_tokens,
                    generation_token_count: generated_tokens,
                    stop_reason,
                    guardrail_action,
                };
                let body = serde_json::to_vec(&body).map_err(internal)?;
                let latency = millis_since(started);
                tracing::info!(
                    prompt_tokens,
                    generated_tokens,
                    ?stop_reason,
                    latency_ms = latency,
                    "invoke done"
                );
                let mut response = json_response(body);
                let headers = response.headers_mut();
                headers.insert(
                    "x-amzn-bedrock-input-token-count",
                    header_value(prompt_tokens),
                );
                headers.insert(
                    "x-amzn-bedrock-output-token-count",
                    header_value(generated_tokens),
                );
                headers.insert("x-amzn-bedrock-invocation-latency", header_value(latency));
                return Ok(response);
            }
        }
    }
    Err(internal("generation ended without a result"))
}

/// The state of one response stream.
struct StreamState {
    /// Recorded when the stream ends (or the client leaves).
    call: Call,
    events: mpsc::Receiver<GenEvent>,
    prompt_tokens: u32,
    chunks_sent: usize,
    started: Instant,
    first_byte_latency: Option<u64>,
    /// Injected fault: fail with `modelStreamErrorException` after this many chunks.
    fail_after: Option<usize>,
    /// `NONE` on the last chunk when the request carried a guardrail.
    guardrail_action: Option<&'static str>,
    finished: bool,
}

impl StreamState {
    fn chunk(&mut self, body: &ChunkBody<'_>) -> Option<Bytes> {
        let json = serde_json::to_vec(body).ok()?;
        let frame = eventstream::chunk_frame(&json).ok()?;
        self.chunks_sent += 1;
        self.first_byte_latency
            .get_or_insert_with(|| millis_since(self.started));
        Some(frame)
    }

    fn fail(&mut self, error: &BedrockError) -> Option<Bytes> {
        self.finished = true;
        self.call.end(Err(error));
        tracing::info!(kind = %error.kind, chunks = self.chunks_sent, "stream failed: {}", error.message);
        eventstream::exception_frame(error).ok()
    }

    /// The first-chunk-only prompt token count.
    fn prompt_count(&self) -> Option<u32> {
        (self.chunks_sent == 0).then_some(self.prompt_tokens)
    }

    /// The next frame, or `None` when the stream is over.
    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        if self
            .fail_after
            .is_some_and(|after| self.chunks_sent >= after)
        {
            return self.fail(&BedrockError::of(ErrorKind::ModelStreamErrorException));
        }
        match self.events.recv().await {
            Some(GenEvent::Piece {
                text,
                generated_tokens,
            }) => {
                self.call.generated(generated_tokens);
                self.chunk(&ChunkBody {
                    generation: &text,
                    prompt_token_count: self.prompt_count(),
                    generation_token_count: generated_tokens,
                    stop_reason: None,
                    metrics: None,
                    guardrail_action: None,
                })
            }
            Some(GenEvent::Done {
                stop_reason,
                generated_tokens,
            }) => {
                if self.fail_after.is_some() {
                    return self.fail(&BedrockError::of(ErrorKind::ModelStreamErrorException));
                }
                self.finished = true;
                self.call.generated(generated_tokens);
                self.call.end(Ok(()));
                let invocation_latency = millis_since(self.started);
                tracing::info!(
                    prompt_tokens = self.prompt_tokens,
                    generated_tokens,
                    ?stop_reason,
                    latency_ms = invocation_latency,
                    "stream done"
                );
                self.chunk(&ChunkBody {
                    generation: "",
                    prompt_token_count: self.prompt_count(),
                    generation_token_count: generated_tokens,
                    stop_reason: Some(stop_reason),
                    metrics: Some(InvocationMetrics {
                        input_token_count: self.prompt_tokens,
                        output_token_count: generated_tokens,
                        invocation_latency,
                        first_byte_latency: self.first_byte_latency.unwrap_or(invocation_latency),
                    }),
                    guardrail_action: self.guardrail_action,
                })
            }
            Some(GenEvent::Failed(error)) => self.fail(&error),
            None => self.fail(&BedrockError::of(ErrorKind::InternalServerException)),
        }
    }
}

/// Streams a generation as event-stream frames, each sent as soon as it is generated.
fn stream_frames(state: StreamState) -> Response {
    let frames = futures::stream::unfold(state, |mut state| async move {
        let frame = state.next_frame().await?;
        Some((Ok::<_, Infallible>(frame), state))
    });
    stream_response(Body::from_stream(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split() {
        assert_eq!(
            split_path("/model/meta.llama3-2-3b-instruct-v1%3A0/invoke"),
            Some(("meta.llama3-2-3b-instruct-v1%3A0", Operation::Invoke))
        );
        assert_eq!(
            split_path("/model/a%2Fb/invoke-with-response-stream"),
            Some(("a%2Fb", Operation::Stream))
        );
        assert_eq!(split_path("/model//invoke"), None);
        assert_eq!(split_path("/model/x/converse"), None);
        assert_eq!(split_path("/other/x/invoke"), None);
    }

    #[test]
    fn arns_resolve() {
        let served = vec!["us.meta.llama3-2-3b-instruct-v1:0".to_owned()];
        for id in [
            "us.meta.llama3-2-3b-instruct-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-3b-instruct-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/us.meta.llama3-2-3b-instruct-v1:0",
        ] {
            assert_eq!(resolve(&served, id), Some(served[0].as_str()), "{id}");
        }
        for id in [
            "meta.llama3-2-3b-instruct-v1:0",
            "arn:aws:s3:us-east-1::foundation-model/us.meta.llama3-2-3b-instruct-v1:0",
            "arn:aws:bedrock:us-east-1::custom-model/us.meta.llama3-2-3b-instruct-v1:0",
            "arn:aws:bedrock",
            "",
        ] {
            assert_eq!(resolve(&served, id), None, "{id}");
        }
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
