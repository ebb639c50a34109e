//! Response streaming for Lambda function URLs (`InvokeMode: RESPONSE_STREAM`): Server-Sent
//! Events written while the function works.
//!
//! With `RESPONSE_STREAMING=true`, [`crate::run`] serves every invocation as a function-URL
//! request (payload format 2.0) and answers through the Runtime API's streaming mode
//! (`Lambda-Runtime-Function-Response-Mode: streaming`; `lambda_runtime` writes the HTTP
//! integration prelude, the JSON `{statusCode, headers, cookies}` and 8 NUL bytes, before the
//! body). The function's [`crate::Function::stream`] sends events through [`Events`]:
//!
//! * a request refused before the first event gets a plain JSON error response with its
//!   status (`{"error": {"type", "message"}}`, as every HTTP route);
//! * the first event opens a `200` `text/event-stream` response;
//! * the handler's result becomes the last event, `done`, or, after the stream has opened, an
//!   `error` event `{"type", "message"}` with the same public message as an HTTP error.
//!
//! Such a function answers nothing else: API Gateway, S3 and Step Functions expect buffered
//! JSON, so the streaming functions are separate Lambda functions built from the same binary.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use aws_lambda_events::encodings::Body as EventBody;
use bedrock::{Completion, CompletionStream, Deadline, StopReason, StreamEvent};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_runtime::streaming::{Body, Response, Sender};
use lambda_runtime::{LambdaEvent, MetadataPrelude, service_fn};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::deadline::{DEFAULT_MARGIN, invocation_deadline};
use crate::http as http_api;
use crate::trigger::Trigger;
use crate::{Function, TaskError};

/// The event stream of one streaming request.
pub struct Events {
    /// Where the response's status and headers go; taken by the first event.
    head: Option<oneshot::Sender<MetadataPrelude>>,
    body: Sender,
}

impl Events {
    fn new(head: oneshot::Sender<MetadataPrelude>, body: Sender) -> Self {
        Self {
            head: Some(head),
            body,
        }
    }

    /// Whether the `200` event stream has started.
    pub fn is_open(&self) -> bool {
        self.head.is_none()
    }

    /// Sends one event (`event: NAME`, `data: JSON`), opening the stream if this is the first.
    /// Fails when the caller has gone.
    pub async fn send(&mut self, event: &str, data: &Value) -> Result<(), TaskError> {
        if let Some(head) = self.head.take() {
            // The receiver is dropped only when the runtime has given up on the invocation.
            let _ = head.send(prelude(StatusCode::OK, sse_headers(), Vec::new()));
        }
        self.body
            .send_data(sse_frame(event, data))
            .await
            .map_err(|_| TaskError::Internal("the response stream closed".into()))
    }

    /// Sends generated text as a `chunk` event `{"text": ...}`; empty text sends nothing.
    pub async fn text(&mut self, text: &str) -> Result<(), TaskError> {
        if text.is_empty() {
            return Ok(());
        }
        self.send("chunk", &serde_json::json!({ "text": text }))
            .await
    }

    /// Relays a model stream as `chunk` events, trimmed as the buffered answers are (the
    /// whole generation's leading and trailing whitespace is not sent), and returns the
    /// whole completion (`generation` untrimmed); `started` is when the call began.
    pub async fn relay(
        &mut self,
        mut stream: CompletionStream,
        started: Instant,
    ) -> Result<Completion, TaskError> {
        let mut generation = String::new();
        let mut trimmed = Trimmed::default();
        while let Some(event) = stream.next_event().await? {
            match event {
                StreamEvent::Text(text) => {
                    self.text(&trimmed.push(&text)).await?;
                    generation.push_str(&text);
                }
                StreamEvent::End(usage) => {
                    return Ok(Completion {
                        generation,
                        usage,
                        model_id: stream.model_id().to_owned(),
                        attempts: stream.attempts(),
                        latency: started.elapsed(),
                    });
                }
            }
        }
        Err(TaskError::Internal("the model stream ended twice".into()))
    }

    /// Ends the request with `result`: `done` with its value, an `error` event once the
    /// stream is open, else the JSON error response.
    async fn finish(mut self, result: Result<Value, TaskError>) {
        let sent = match result {
            Ok(done) => self.send("done", &done).await,
            Err(e) => match self.head.take() {
                Some(head) => {
                    let response = http_api::error_response(&e, &bedrock::UsageTotals::default());
                    let body = match response.body {
                        Some(EventBody::Text(text)) => text.into_bytes(),
                        Some(EventBody::Binary(bytes)) => bytes,
                        _ => Vec::new(),
                    };
                    let status = u16::try_from(response.status_code)
                        .ok()
                        .and_then(|s| StatusCode::from_u16(s).ok())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let _ = head.send(prelude(status, response.headers, response.cookies));
                    self.body
                        .send_data(Bytes::from(body))
                        .await
                        .map_err(|_| TaskError::Internal("the response stream closed".into()))
                }
                None => {
                    e.log();
                    let data = serde_json::json!({
                        "type": e.error_type(),
                        "message": e.public_message(),
                    });
                    self.send("error", &data).await
                }
            },
        };
        if sent.is_err() {
            tracing::info!("the caller left before the stream ended");
        }
    }
}

/// Text deltas whose concatenation is the whole text trimmed: leading whitespace is
/// dropped, trailing whitespace held back until more text follows it.
#[derive(Debug, Default)]
struct Trimmed {
    begun: bool,
    held: String,
}

impl Trimmed {
    fn push(&mut self, text: &str) -> String {
        let text = if self.begun { text } else { text.trim_start() };
        if text.is_empty() {
            return String::new();
        }
        self.begun = true;
        let core = text.trim_end();
        if core.is_empty() {
            self.held.push_str(text);
            return String::new();
        }
        let out = std::mem::take(&mut self.held) + core;
        self.held.push_str(&text[core.len()..]);
        out
    }
}

/// The `done` event's data: `answer` (what the buffered route returns) serialized, plus the
/// generation's `stop_reason` (`null` when no model call was made).
pub fn done_data<T: serde::Serialize>(
    answer: &T,
    stop_reason: Option<&StopReason>,
) -> Result<Value, TaskError> {
    let mut value = crate::to_json(answer)?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "stop_reason".into(),
            stop_reason.map(StopReason::as_str).into(),
        );
    }
    Ok(value)
}

/// One Server-Sent Event: `event: NAME`, `data: JSON` (one line: JSON escapes newlines),
/// and the blank line that ends it.
pub fn sse_frame(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn sse_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers
}

fn prelude(status_code: StatusCode, headers: HeaderMap, cookies: Vec<String>) -> MetadataPrelude {
    MetadataPrelude {
        status_code,
        headers,
        cookies,
    }
}

/// Checks a function-URL request (POST, JSON body within the function's limit) and gives its
/// JSON body.
fn request_input<F: Function>(function: &F, event: Value) -> Result<Value, TaskError> {
    let Trigger::Http(request) = Trigger::classify(event) else {
        return Err(TaskError::InvalidInput(format!(
            "this {} function answers function URL requests only",
            F::NAME
        )));
    };
    let request = request?;
    if request.request_context.http.method != http::Method::POST {
        return Err(TaskError::MethodNotAllowed {
            message: "the streaming URL takes POST with a JSON body".into(),
            allow: "POST".into(),
        });
    }
    http_api::json_body(&request, function.max_request_bytes())
}

/// Runs one streaming request to its end, writing the response through `head` and `body`.
async fn produce<F: Function>(
    function: &F,
    event: Value,
    deadline: Deadline,
    head: oneshot::Sender<MetadataPrelude>,
    body: Sender,
) {
    let mut events = Events::new(head, body);
    let result = match request_input(function, event) {
        Ok(input) => {
            let run: Pin<Box<dyn Future<Output = _> + '_>> =
                Box::pin(function.stream(input, deadline, &mut events));
            run.await
        }
        Err(e) => Err(e),
    };
    events.finish(result).await;
}

type Respond = dyn Fn(Value, Deadline) -> Pin<Box<dyn Future<Output = Response<Body>>>>;

/// Serves `function`'s streaming requests until the runtime stops. The work of a request
/// goes on in a local task after its status and headers are known, while the runtime sends
/// the body (hence the `LocalSet`, and `'static`: one function per process).
pub(crate) async fn serve<F: Function>(function: &'static F) -> Result<(), lambda_runtime::Error> {
    let respond = move |event: Value, deadline: Deadline| -> Pin<Box<dyn Future<Output = _>>> {
        Box::pin(respond(function, event, deadline))
    };
    serve_with(&respond).await
}

/// Starts a request's work and answers with its head as soon as it is known.
async fn respond<F: Function>(
    function: &'static F,
    event: Value,
    deadline: Deadline,
) -> Response<Body> {
    let (head, known) = oneshot::channel();
    let (sender, body) = lambda_runtime::streaming::channel();
    tokio::task::spawn_local(produce(function, event, deadline, head, sender));
    let metadata_prelude = known.await.unwrap_or_else(|_| {
        prelude(
            StatusCode::INTERNAL_SERVER_ERROR,
            HeaderMap::new(),
            Vec::new(),
        )
    });
    Response {
        metadata_prelude,
        stream: body,
    }
}

/// The runtime loop, not generic over the function (its service stack is compiled once).
async fn serve_with(respond: &Respond) -> Result<(), lambda_runtime::Error> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(lambda_runtime::run(service_fn(
            move |event: LambdaEvent<Value>| {
                let deadline = invocation_deadline(event.context.deadline, DEFAULT_MARGIN);
                let answer = respond(event.payload, deadline);
                async move { Ok::<_, lambda_runtime::Error>(answer.await) }
            },
        )))
        .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Clients, Route};

    /// Streams `chunks` then answers `end`.
    struct Probe {
        chunks: &'static [&'static str],
        end: Result<Value, TaskError>,
    }

    impl Function for Probe {
        type Settings = crate::boundary::BoundarySettings;
        type Endpoint = ();
        const NAME: &'static str = "probe";
        const ROUTES: &'static [Route<()>] = &[];

        fn build(_: &Clients, _: Self::Settings) -> Result<Self, settings::ConfigError> {
            Err(settings::ConfigError::new("X", "not built"))
        }

        fn max_request_bytes(&self) -> usize {
            96
        }

        async fn http(&self, (): (), _: Value, _: Deadline) -> Result<Value, TaskError> {
            Err(TaskError::Internal("unused".into()))
        }

        async fn task(&self, _: Value, _: Deadline) -> Result<Value, TaskError> {
            Err(TaskError::Internal("unused".into()))
        }

        async fn stream(
            &self,
            input: Value,
            _: Deadline,
            events: &mut Events,
        ) -> Result<Value, TaskError> {
            assert_eq!(input["text"], "hi");
            for chunk in self.chunks {
                events.text(chunk).await?;
            }
            self.end.clone()
        }
    }

    fn url_event(method: &str, content_type: &str, body: &str) -> Value {
        serde_json::json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
            "headers": {"content-type": content_type},
            "requestContext": {"http": {"method": method, "path": "/"}, "domainName": "x.lambda-url.us-east-1.on.aws"},
            "body": body, "isBase64Encoded": false
        })
    }

    /// The prelude and the whole body of one request.
    async fn run(probe: &Probe, event: Value) -> (MetadataPrelude, String) {
        let (head, known) = oneshot::channel();
        let (sender, body) = lambda_runtime::streaming::channel();
        let deadline = Deadline::after(Duration::from_secs(60));
        let ((), prelude, body) = tokio::join!(
            produce(probe, event, deadline, head, sender),
            async { known.await.expect("a head is always sent") },
            async { body.collect().await.expect("body").to_bytes() },
        );
        (prelude, String::from_utf8(body.to_vec()).expect("utf-8"))
    }

    #[test]
    fn the_sample_function_url_event_is_a_post_with_a_json_body() {
        let event: Value = serde_json::from_str(include_str!(
            "../../../events/summarize-stream-function-url.json"
        ))
        .unwrap();
        let probe = Probe {
            chunks: &[],
            end: Ok(Value::Null),
        };
        let input = request_input(&probe, event).unwrap();
        assert_eq!(input["length"], "short");
    }

    #[test]
    fn frames_are_one_event_each() {
        let frame = sse_frame("chunk", &serde_json::json!({"text": "a\nb"}));
        assert_eq!(&frame[..], b"event: chunk\ndata: {\"text\":\"a\\nb\"}\n\n");
    }

    #[test]
    fn relayed_text_is_the_trimmed_generation() {
        let cases: [&[&str]; 4] = [
            &["  Hello", " world", " \n", "", "again. ", " \n"],
            &["\n", " ", "x"],
            &[" ", "\n"],
            &["a", "b "],
        ];
        for pieces in cases {
            let mut trimmed = Trimmed::default();
            let sent: String = pieces.iter().map(|p| trimmed.push(p)).collect();
            assert_eq!(sent, pieces.concat().trim(), "{pieces:?}");
        }
    }

    #[test]
    fn the_prelude_is_the_function_url_shape() {
        let json =
            serde_json::to_value(prelude(StatusCode::OK, sse_headers(), Vec::new())).unwrap();
        assert_eq!(json["statusCode"], 200);
        assert_eq!(json["headers"]["content-type"], "text/event-stream");
        assert_eq!(json["cookies"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn events_then_done() {
        let probe = Probe {
            chunks: &["Hello", "", " world"],
            end: Ok(serde_json::json!({"stop_reason": "stop"})),
        };
        let (prelude, body) = run(
            &probe,
            url_event("POST", "application/json", r#"{"text":"hi"}"#),
        )
        .await;
        assert_eq!(prelude.status_code, StatusCode::OK);
        assert_eq!(prelude.headers[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(
            body,
            "event: chunk\ndata: {\"text\":\"Hello\"}\n\n\
             event: chunk\ndata: {\"text\":\" world\"}\n\n\
             event: done\ndata: {\"stop_reason\":\"stop\"}\n\n"
        );
    }

    #[tokio::test]
    async fn a_failure_after_the_first_event_is_an_error_event() {
        let probe = Probe {
            chunks: &["Hello"],
            end: Err(TaskError::Internal("secret detail".into())),
        };
        let (prelude, body) = run(
            &probe,
            url_event("POST", "application/json", r#"{"text":"hi"}"#),
        )
        .await;
        assert_eq!(prelude.status_code, StatusCode::OK);
        assert!(
            body.ends_with(
                "event: error\ndata: {\"message\":\"internal error\",\"type\":\"InternalError\"}\n\n"
            ),
            "{body}"
        );
        assert!(!body.contains("secret"));
    }

    #[tokio::test]
    async fn refusals_before_the_first_event_are_plain_json_errors() {
        let cases = [
            (
                url_event("POST", "text/plain", "{}"),
                415,
                "UnsupportedMediaType",
            ),
            (
                url_event("GET", "application/json", ""),
                405,
                "MethodNotAllowed",
            ),
            (
                url_event("POST", "application/json", &"x".repeat(100)),
                413,
                "InputTooLarge",
            ),
            (serde_json::json!({"text": "hi"}), 400, "InvalidInput"),
        ];
        let probe = Probe {
            chunks: &[],
            end: Ok(Value::Null),
        };
        for (event, status, error_type) in cases {
            let (prelude, body) = run(&probe, event).await;
            assert_eq!(prelude.status_code.as_u16(), status, "{body}");
            assert_eq!(prelude.headers[header::CONTENT_TYPE], "application/json");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"]["type"], error_type);
        }
        let refused = Probe {
            chunks: &[],
            end: Err(TaskError::InvalidInput("`text` is empty".into())),
        };
        let (prelude, body) = run(
            &refused,
            url_event("POST", "application/json", r#"{"text":"hi"}"#),
        )
        .await;
        assert_eq!(prelude.status_code.as_u16(), 400);
        assert!(body.contains("`text` is empty"), "{body}");
    }
}
