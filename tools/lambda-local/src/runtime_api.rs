//! The Lambda Runtime API (`/2018-06-01/runtime/...`) that a function process polls: one
//! listener per worker, so the server always knows which process holds which invocation.
//!
//! Each process started on a worker gets a fresh [`Slot`]; when the worker recycles the
//! process, the slot closes and a stale long-poll from the old process gets `410 Gone`.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::body::{BodyError, read_limited};
use crate::invocation::{FunctionError, Invocation};

/// Largest error body accepted from a runtime.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// Largest streamed response relayed (Lambda's default limit for response streaming);
/// the rest is dropped.
pub(crate) const MAX_STREAMED_RESPONSE: usize = 20 * 1024 * 1024;

/// An invocation waiting for the process's next `GET /invocation/next`.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// What to hand over.
    pub(crate) invocation: Invocation,
    /// The function timeout, from which the deadline header is computed at hand-over.
    pub(crate) timeout: Duration,
}

/// What a process told the Runtime API, in order.
#[derive(Debug)]
pub(crate) enum SlotEvent {
    /// The invocation was handed to the process (its clock starts).
    Delivered { request_id: String },
    /// `POST /invocation/{id}/response`.
    Response { request_id: String, body: Bytes },
    /// `POST /invocation/{id}/error`.
    Error {
        request_id: String,
        error: FunctionError,
    },
    /// A response over the payload limit.
    ResponseTooLarge { request_id: String },
    /// `POST /init/error`.
    InitError(FunctionError),
}

/// The Runtime API state of one process.
#[derive(Debug)]
struct Slot {
    next: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
    /// The request id handed over and not yet answered.
    current: Mutex<Option<String>>,
    /// Where the current invocation's streamed response goes, if its caller streams.
    stream: Mutex<Option<mpsc::Sender<Bytes>>>,
    events: mpsc::UnboundedSender<SlotEvent>,
}

impl Slot {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_current(&self, request_id: &str) -> bool {
        self.current().as_deref() == Some(request_id)
    }

    /// Clears the current request id (and its stream) if it is `request_id`.
    fn take(&self, request_id: &str) -> bool {
        let mut current = self.current();
        if current.as_deref() == Some(request_id) {
            *current = None;
            self.take_stream();
            true
        } else {
            false
        }
    }

    /// Takes the current invocation's stream sink.
    fn take_stream(&self) -> Option<mpsc::Sender<Bytes>> {
        self.stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn emit(&self, event: SlotEvent) {
        // The worker stopped listening: the process is being recycled.
        let _ = self.events.send(event);
    }
}

/// The worker's side of a slot.
#[derive(Debug)]
pub(crate) struct SlotHandle {
    /// Invocations for the process.
    pub(crate) deliveries: mpsc::Sender<Delivery>,
    /// What the process reported.
    pub(crate) events: mpsc::UnboundedReceiver<SlotEvent>,
}

#[derive(Debug)]
struct RuntimeState {
    slot: Mutex<Option<Arc<Slot>>>,
    function_arn: String,
    max_response: usize,
}

impl RuntimeState {
    fn slot(&self) -> Option<Arc<Slot>> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A Runtime API listener for one worker.
#[derive(Debug)]
pub(crate) struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<RuntimeState>,
    task: JoinHandle<()>,
}

impl RuntimeApi {
    /// Binds a free port on 127.0.0.1 and starts serving the function `function_arn`.
    pub(crate) async fn bind(function_arn: String, max_response: usize) -> io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(RuntimeState {
            slot: Mutex::new(None),
            function_arn,
            max_response,
        });
        let app = router(Arc::clone(&state));
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!("runtime API on {addr} failed: {error}");
            }
        });
        Ok(Self { addr, state, task })
    }

    /// The `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens a fresh slot for a new process, closing the previous one.
    pub(crate) fn open_slot(&self) -> SlotHandle {
        let (deliveries, next) = mpsc::channel(1);
        let (events_tx, events) = mpsc::unbounded_channel();
        let slot = Arc::new(Slot {
            next: tokio::sync::Mutex::new(next),
            current: Mutex::new(None),
            stream: Mutex::new(None),
            events: events_tx,
        });
        *self
            .state
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(slot);
        SlotHandle { deliveries, events }
    }

    /// Closes the current slot (its process is gone).
    pub(crate) fn close_slot(&self) {
        *self
            .state
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(state: Arc<RuntimeState>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(|| async { rapid_error(StatusCode::NOT_FOUND, "NotFound", "Unknown path") })
        .with_state(state)
}

/// An error answer in the Runtime API's shape.
fn rapid_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = json!({ "errorMessage": message, "errorType": error_type });
    (status, axum::Json(body)).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({ "status": "OK" }))).into_response()
}

fn gone() -> Response {
    rapid_error(
        StatusCode::GONE,
        "Gone",
        "This runtime's sandbox was recycled",
    )
}

fn invalid_request_id() -> Response {
    rapid_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID",
    )
}

/// `GET /2018-06-01/runtime/invocation/next`: long-polls for the next event.
async fn next(State(state): State<Arc<RuntimeState>>) -> Response {
    let Some(slot) = state.slot() else {
        return gone();
    };
    let delivery = {
        let mut next = slot.next.lock().await;
        next.recv().await
    };
    let Some(Delivery {
        mut invocation,
        timeout,
    }) = delivery
    else {
        return gone();
    };
    let deadline = crate::clock::epoch_ms(SystemTime::now() + timeout);
    *slot.stream.lock().unwrap_or_else(PoisonError::into_inner) = invocation.stream.take();
    *slot.current() = Some(invocation.request_id.clone());
    slot.emit(SlotEvent::Delivered {
        request_id: invocation.request_id.clone(),
    });
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("lambda-runtime-aws-request-id", &invocation.request_id);
    put("lambda-runtime-deadline-ms", &deadline.to_string());
    put("lambda-runtime-invoked-function-arn", &state.function_arn);
    put("lambda-runtime-trace-id", &invocation.trace_id);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers, Body::from(invocation.payload)).into_response()
}

/// `POST /2018-06-01/runtime/invocation/{id}/response`: a buffered response, or a
/// streamed one (`Lambda-Runtime-Function-Response-Mode: streaming`, chunked) that is
/// relayed as it arrives when the caller streams.
async fn response(
    State(state): State<Arc<RuntimeState>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(slot) = state.slot() else {
        return gone();
    };
    if !slot.is_current(&request_id) {
        return invalid_request_id();
    }
    let streamed = headers
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if streamed && let Some(sink) = slot.take_stream() {
        relay(body, &sink).await;
        drop(sink);
        if slot.take(&request_id) {
            slot.emit(SlotEvent::Response {
                request_id,
                body: Bytes::new(),
            });
        }
        return accepted();
    }
    match read_limited(body, state.max_response).await {
        Ok(body) if slot.take(&request_id) => {
            slot.emit(SlotEvent::Response { request_id, body });
            accepted()
        }
        Ok(_) => invalid_request_id(),
        Err(BodyError::TooLarge(limit)) => {
            if slot.take(&request_id) {
                slot.emit(SlotEvent::ResponseTooLarge { request_id });
            }
            rapid_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!(
                    "Response payload size exceeded maximum allowed payload size ({limit} bytes)."
                ),
            )
        }
        Err(BodyError::Read(error)) => rapid_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &error.to_string(),
        ),
    }
}

/// Passes a streamed body on chunk by chunk, up to [`MAX_STREAMED_RESPONSE`]; a caller that
/// left stops the relay, not the function.
async fn relay(body: Body, sink: &mpsc::Sender<Bytes>) {
    let mut chunks = body.into_data_stream();
    let mut relayed = 0usize;
    let mut open = true;
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                tracing::warn!("streamed response broke off: {error}");
                return;
            }
        };
        relayed = relayed.saturating_add(chunk.len());
        if open && relayed > MAX_STREAMED_RESPONSE {
            tracing::warn!(
                "streamed response over {MAX_STREAMED_RESPONSE} bytes; the rest is dropped"
            );
            open = false;
        }
        if open {
            open = sink.send(chunk).await.is_ok();
        }
    }
}

/// `POST /2018-06-01/runtime/invocation/{id}/error`.
async fn error(
    State(state): State<Arc<RuntimeState>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(slot) = state.slot() else {
        return gone();
    };
    if !slot.is_current(&request_id) {
        return invalid_request_id();
    }
    let error = match read_error(&headers, body).await {
        Ok(error) => error,
        Err(response) => return response,
    };
    if !slot.take(&request_id) {
        return invalid_request_id();
    }
    slot.emit(SlotEvent::Error { request_id, error });
    accepted()
}

/// `POST /2018-06-01/runtime/init/error`.
async fn init_error(
    State(state): State<Arc<RuntimeState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(slot) = state.slot() else {
        return gone();
    };
    match read_error(&headers, body).await {
        Ok(error) => {
            slot.emit(SlotEvent::InitError(error));
            accepted()
        }
        Err(response) => response,
    }
}

async fn read_error(headers: &HeaderMap, body: Body) -> Result<FunctionError, Response> {
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok());
    match read_limited(body, MAX_ERROR_BODY).await {
        Ok(body) => Ok(FunctionError::from_runtime(body, header_type)),
        Err(BodyError::TooLarge(_)) => Err(rapid_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "Error payload too large",
        )),
        Err(BodyError::Read(error)) => Err(rapid_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &error.to_string(),
        )),
    }
}
