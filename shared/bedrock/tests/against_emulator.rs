//! The client through the real AWS SDK against the Bedrock emulator (scripted test
//! double): success, streaming, every error before and inside a stream, retries,
//! fallback models, deadlines, attempt timeouts, guardrail interventions, and checks made
//! before any network call. Tests of time limits run on tokio's paused clock: their
//! outcome does not depend on how fast the machine is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_bedrockruntime::config::Credentials;
use bedrock::metrics::{Metrics, MetricsSink};
use bedrock::pricing::Price;
use bedrock::{
    AttemptTimeouts, BedrockError, ChatPrompt, ClientSettings, ContextBudget, Cost, Deadline,
    GenerationParams, Guardrail, Invocation, LlamaClient, ModelSelection, Pricing, RetryPolicy,
    StopReason, StreamEvent, UsageTotals,
};
use bedrock_local::{Backend, Config, ErrorKind, Faults, Outcome, Rule, Script, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PRIMARY: &str = "us.meta.llama3-2-3b-instruct-v1:0";
const FALLBACK: &str = "eu.meta.llama3-2-3b-instruct-v1:0";

struct Harness {
    server: Server,
    metrics: Arc<Mutex<Vec<String>>>,
}

impl Harness {
    async fn start(rules: Vec<Rule>) -> Self {
        Self::with_faults(rules, Faults::default()).await
    }

    async fn with_faults(rules: Vec<Rule>, faults: Faults) -> Self {
        let server = Server::start(Config {
            backend: Backend::Scripted(Script::new(rules)),
            faults,
            ..Config::default()
        })
        .await
        .expect("emulator starts");
        Self {
            server,
            metrics: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn settings(&self) -> ClientSettings {
        ClientSettings {
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                min_attempt_time: Duration::from_millis(50),
            },
            metrics: Metrics::new("Test", MetricsSink::Memory(self.metrics.clone())),
            ..ClientSettings::default()
        }
    }

    fn client(&self, settings: ClientSettings) -> LlamaClient {
        LlamaClient::new(&sdk_config(&self.server.endpoint()), settings)
    }

    fn metric_lines(&self) -> Vec<serde_json::Value> {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(bedrock::sdk::https_client())
        .region(Region::new("us-east-1"))
        .credentials_provider(
            aws_sdk_bedrockruntime::config::SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "test",
            )),
        )
        .endpoint_url(endpoint)
        .build()
}

fn call(text: &str) -> Invocation {
    Invocation::chat(&ChatPrompt::new().system("Be brief.").user(text))
        .params(GenerationParams::default().max_gen_len(64))
}

#[tokio::test]
async fn invoke_returns_generation_usage_and_model() {
    let h = Harness::start(vec![Rule::new(Outcome::text("Paris is the capital."))]).await;
    let client = h.client(h.settings());
    let done = client.invoke(&call("Capital of France?")).await.unwrap();
    assert_eq!(done.generation, "Paris is the capital.");
    assert_eq!(done.usage.stop_reason, StopReason::Stop);
    assert_eq!(done.usage.generation_tokens, 4);
    assert!(done.usage.prompt_tokens > 0);
    assert_eq!(done.model_id, PRIMARY);
    assert_eq!(done.attempts, 1);
    let lines = h.metric_lines();
    assert_eq!(lines.len(), 1, "one EMF line per call");
    assert_eq!(lines[0]["OutputTokens"], 4);
    assert_eq!(lines[0]["Operation"], "InvokeModel");
    assert_eq!(lines[0]["Errors"], 0);
}

#[tokio::test]
async fn stream_yields_deltas_then_usage_with_invocation_metrics() {
    let h = Harness::start(vec![Rule::new(Outcome::text("one two three four five"))]).await;
    let client = h.client(h.settings());
    let mut stream = client.invoke_stream(&call("count")).await.unwrap();
    let mut deltas = Vec::new();
    let mut end = None;
    while let Some(event) = stream.next_event().await.unwrap() {
        match event {
            StreamEvent::Text(t) => deltas.push(t),
            StreamEvent::End(usage) => end = Some(usage),
        }
    }
    assert!(deltas.len() >= 3, "several chunks: {deltas:?}");
    assert_eq!(deltas.concat(), "one two three four five");
    let usage = end.expect("usage at the end");
    assert_eq!(usage.generation_tokens, 5);
    assert_eq!(usage.stop_reason, StopReason::Stop);
    let metrics = usage.invocation_metrics.expect("invocation metrics");
    assert_eq!(metrics.output_token_count, 5);
    assert_eq!(metrics.input_token_count, usage.prompt_tokens);
    assert_eq!(stream.model_id(), PRIMARY);
    assert!(stream.next_event().await.unwrap().is_none());
    let lines = h.metric_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["Operation"], "InvokeModelWithResponseStream");
}

#[tokio::test]
async fn length_stop_reason_and_collect() {
    let h = Harness::start(vec![Rule::new(Outcome::text("a b c d e f g h"))]).await;
    let client = h.client(h.settings());
    let call = call("x").params(GenerationParams::default().max_gen_len(3));
    let done = client
        .invoke_stream(&call)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(done.usage.stop_reason, StopReason::Length);
    assert_eq!(done.usage.generation_tokens, 3);
    let done = client.invoke(&call).await.unwrap();
    assert_eq!(done.usage.stop_reason, StopReason::Length);
}

const ERRORS: [(ErrorKind, &str); 10] = [
    (ErrorKind::ThrottlingException, "ModelThrottled"),
    (ErrorKind::ServiceQuotaExceededException, "ModelThrottled"),
    (ErrorKind::ModelTimeoutException, "ModelTimeout"),
    (ErrorKind::ModelNotReadyException, "ModelNotReady"),
    (ErrorKind::ServiceUnavailableException, "ModelUnavailable"),
    (ErrorKind::InternalServerException, "ModelUnavailable"),
    (ErrorKind::ValidationException, "ModelValidation"),
    (ErrorKind::AccessDeniedException, "ModelAccessDenied"),
    (ErrorKind::ResourceNotFoundException, "ModelNotFound"),
    (ErrorKind::ModelErrorException, "ModelError"),
];

#[tokio::test]
async fn every_error_before_the_stream_is_typed_for_both_operations() {
    for (kind, expected) in ERRORS {
        let h = Harness::start(vec![Rule::new(Outcome::error(kind))]).await;
        let mut settings = h.settings();
        settings.retry.max_attempts = 1;
        let client = h.client(settings);
        let err = client.invoke(&call("x")).await.unwrap_err();
        assert_eq!(err.error_type(), expected, "invoke {kind:?}: {err}");
        let err = client
            .invoke_stream(&call("x"))
            .await
            .err()
            .expect("stream fails");
        assert_eq!(err.error_type(), expected, "stream {kind:?}: {err}");
        let lines = h.metric_lines();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l["ErrorType"] == expected));
    }
}

#[tokio::test]
async fn errors_inside_the_stream_are_the_same_typed_errors() {
    let cases = [
        (ErrorKind::ThrottlingException, "ModelThrottled"),
        (ErrorKind::ModelStreamErrorException, "ModelUnavailable"),
        (ErrorKind::ModelTimeoutException, "ModelTimeout"),
        (ErrorKind::ServiceUnavailableException, "ModelUnavailable"),
        (ErrorKind::InternalServerException, "ModelUnavailable"),
        (ErrorKind::ValidationException, "ModelValidation"),
    ];
    for (kind, expected) in cases {
        let h = Harness::start(vec![Rule::new(Outcome::StreamError {
            after: 2,
            error: bedrock_local::BedrockError::of(kind),
            generation: Some("alpha beta gamma delta".into()),
        })])
        .await;
        let client = h.client(h.settings());
        let mut stream = client.invoke_stream(&call("x")).await.unwrap();
        let mut text = String::new();
        let err = loop {
            match stream.next_event().await {
                Ok(Some(StreamEvent::Text(t))) => text.push_str(&t),
                Ok(other) => panic!("{kind:?}: expected an error, got {other:?}"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.error_type(), expected, "{kind:?}: {err}");
        assert_eq!(
            text.trim_end(),
            "alpha beta",
            "{kind:?}: the text before the failure arrives"
        );
        assert!(
            stream.next_event().await.unwrap().is_none(),
            "a failed stream is over"
        );
    }
}

#[tokio::test]
async fn a_stream_failing_before_any_text_is_retried() {
    let h = Harness::start(vec![
        Rule::new(Outcome::stream_error(0, ErrorKind::ThrottlingException)).times(1),
        Rule::new(Outcome::text("recovered fine")),
    ])
    .await;
    let client = h.client(h.settings());
    let done = client
        .invoke_stream(&call("x"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(done.generation, "recovered fine");
    assert_eq!(done.attempts, 2);
    assert_eq!(h.server.stats().total(), 2);
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_then_succeeds() {
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).times(2),
        Rule::new(Outcome::text("third time lucky")),
    ])
    .await;
    let client = h.client(h.settings());
    let done = client.invoke(&call("x")).await.unwrap();
    assert_eq!(done.generation, "third time lucky");
    assert_eq!(done.attempts, 3);
    assert_eq!(h.server.stats().requests(PRIMARY), 3);
    let lines = h.metric_lines();
    assert_eq!(lines[0]["Throttles"], 2);
    assert_eq!(lines[0]["Attempts"], 3);
}

#[tokio::test]
async fn non_retryable_errors_are_not_retried() {
    let h = Harness::start(vec![Rule::new(Outcome::error(
        ErrorKind::ValidationException,
    ))])
    .await;
    let client = h.client(h.settings());
    let err = client.invoke(&call("x")).await.unwrap_err();
    assert_eq!(err.error_type(), "ModelValidation");
    assert_eq!(h.server.stats().total(), 1);
}

#[tokio::test]
async fn still_throttled_after_retries_falls_back_and_says_which_model_answered() {
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).model_id(PRIMARY),
        Rule::new(Outcome::text("from the fallback")).model_id(FALLBACK),
    ])
    .await;
    let mut settings = h.settings();
    settings.models = ModelSelection::parse(PRIMARY, FALLBACK).unwrap();
    let client = h.client(settings);
    let done = client.invoke(&call("x")).await.unwrap();
    assert_eq!(done.generation, "from the fallback");
    assert_eq!(done.model_id, FALLBACK);
    assert_eq!(done.attempts, 4);
    let stats = h.server.stats();
    assert_eq!((stats.requests(PRIMARY), stats.requests(FALLBACK)), (3, 1));
    let stream = client.invoke_stream(&call("x")).await.unwrap();
    assert_eq!(stream.model_id(), FALLBACK);
}

#[tokio::test]
async fn denied_or_missing_models_fall_back_at_once() {
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.meta.llama3-2-3b-instruct-v1:0";
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::AccessDeniedException)).model_id(PRIMARY),
        Rule::new(Outcome::text("via ARN")),
    ])
    .await;
    let mut settings = h.settings();
    // Not served at all (404), then denied (403), then an ARN that works.
    settings.models = ModelSelection::parse(
        "us.meta.llama3-2-90b-instruct-v1:0",
        &format!("{PRIMARY},{arn}"),
    )
    .unwrap();
    let client = h.client(settings);
    let done = client.invoke(&call("x")).await.unwrap();
    assert_eq!(done.model_id, arn);
    assert_eq!(
        done.attempts, 3,
        "one attempt per model: denied and missing are not retried"
    );
}

#[tokio::test]
async fn all_models_failing_transiently_reports_the_last_error() {
    let h = Harness::start(vec![Rule::new(Outcome::error(
        ErrorKind::ServiceUnavailableException,
    ))])
    .await;
    let mut settings = h.settings();
    settings.models = ModelSelection::parse(PRIMARY, FALLBACK).unwrap();
    settings.retry.max_attempts = 2;
    let client = h.client(settings);
    let err = client.invoke(&call("x")).await.unwrap_err();
    assert_eq!(err.error_type(), "ModelUnavailable");
    assert_eq!(h.server.stats().total(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_slow_model_is_cut_off_at_the_deadline() {
    let h = Harness::start(vec![
        Rule::new(Outcome::text("late")).delay(Duration::from_secs(3)),
    ])
    .await;
    let client = h.client(h.settings());
    let err = client
        .invoke(&call("x").deadline(Deadline::after(Duration::from_millis(400))))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "DeadlineExceeded", "{err}");
    // Not waited out: on the paused clock the 400 ms deadline fires before the model's 3 s,
    // and the emulator has not answered.
    let counters = h.server.counters();
    assert_eq!(counters.completed, 0, "{counters:?}");
    match err {
        BedrockError::DeadlineExceeded { attempts, .. } => assert_eq!(attempts, 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_that_cannot_finish_in_time() {
    // Every answer is a throttle that takes 250 ms; pauses are at most 1 ms.
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).delay(Duration::from_millis(250)),
    ])
    .await;
    let mut settings = h.settings();
    settings.retry.min_attempt_time = Duration::from_millis(300);
    settings.retry.base_delay = Duration::from_millis(1);
    settings.retry.max_delay = Duration::from_millis(1);
    settings.retry.max_attempts = 10;
    let client = h.client(settings);
    // Too little time for even one attempt: nothing is sent, and the call says why.
    let err = client
        .invoke(&call("x").deadline(Deadline::after(Duration::from_millis(100))))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "DeadlineExceeded", "{err}");
    assert_eq!(h.server.stats().total(), 0);
    // 900 ms: attempts start at 0, 250 and 500 ms; after the third (750 ms) 150 ms are
    // left, less than an attempt needs, so the retries stop, well short of ten. The call
    // ends with the retryable cause, not DeadlineExceeded.
    let err = client
        .invoke(&call("x").deadline(Deadline::after(Duration::from_millis(900))))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ModelThrottled", "{err}");
    assert_eq!(h.server.stats().total(), 3);
    let lines = h.metric_lines();
    let summary: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l["ErrorType"].clone(),
                l["Attempts"].clone(),
                l["Throttles"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("DeadlineExceeded".into(), 0.into(), 0.into()),
            ("ModelThrottled".into(), 3.into(), 3.into()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_cut_at_the_deadline_after_throttling_reports_the_throttling() {
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException))
            .prompt_contains("invoke")
            .times(1),
        Rule::new(Outcome::error(ErrorKind::ThrottlingException))
            .prompt_contains("stream")
            .times(1),
        Rule::new(Outcome::text("too late")).delay(Duration::from_secs(30)),
    ])
    .await;
    let client = h.client(h.settings());
    for stream in [false, true] {
        let text = if stream { "stream" } else { "invoke" };
        let call = call(text).deadline(Deadline::after(Duration::from_secs(2)));
        let err = if stream {
            client
                .invoke_stream(&call)
                .await
                .err()
                .expect("stream fails")
        } else {
            client.invoke(&call).await.unwrap_err()
        };
        assert_eq!(err.error_type(), "ModelThrottled", "stream {stream}: {err}");
    }
    // Per call: throttled once, then cut off at the deadline.
    assert_eq!(h.server.stats().total(), 4);
}

#[tokio::test]
async fn a_throttled_primary_and_a_denied_fallback_end_throttled() {
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).model_id(PRIMARY),
        Rule::new(Outcome::error(ErrorKind::AccessDeniedException)).model_id(FALLBACK),
    ])
    .await;
    let mut settings = h.settings();
    settings.models = ModelSelection::parse(PRIMARY, FALLBACK).unwrap();
    let client = h.client(settings);
    let err = client.invoke(&call("x")).await.unwrap_err();
    assert_eq!(err.error_type(), "ModelThrottled", "{err}");
    assert!(err.is_retryable());
    let err = client.invoke_stream(&call("x")).await.err().unwrap();
    assert_eq!(err.error_type(), "ModelThrottled", "{err}");
    let stats = h.server.stats();
    assert_eq!((stats.requests(PRIMARY), stats.requests(FALLBACK)), (6, 2));
    let lines = h.metric_lines();
    assert_eq!(lines.len(), 2);
    for line in lines {
        assert_eq!(line["ErrorType"], "ModelThrottled");
        assert_eq!(line["Attempts"], 4);
        assert_eq!(line["Throttles"], 3);
    }
}

#[tokio::test]
async fn a_fallback_failing_on_its_own_does_not_hide_the_primary_throttling() {
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).model_id(PRIMARY),
        Rule::new(Outcome::error(ErrorKind::ModelErrorException)).model_id(FALLBACK),
    ])
    .await;
    let mut settings = h.settings();
    settings.models = ModelSelection::parse(PRIMARY, FALLBACK).unwrap();
    let err = h.client(settings).invoke(&call("x")).await.unwrap_err();
    assert_eq!(err.error_type(), "ModelThrottled", "{err}");
    let stats = h.server.stats();
    assert_eq!((stats.requests(PRIMARY), stats.requests(FALLBACK)), (3, 2));
}

#[tokio::test]
async fn a_denied_primary_and_a_throttled_fallback_end_throttled() {
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::AccessDeniedException)).model_id(PRIMARY),
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).model_id(FALLBACK),
    ])
    .await;
    let mut settings = h.settings();
    settings.models = ModelSelection::parse(PRIMARY, FALLBACK).unwrap();
    let err = h.client(settings).invoke(&call("x")).await.unwrap_err();
    assert_eq!(err.error_type(), "ModelThrottled", "{err}");
    let stats = h.server.stats();
    assert_eq!((stats.requests(PRIMARY), stats.requests(FALLBACK)), (1, 3));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_is_cut_at_the_attempt_timeout_and_retried() {
    let h = Harness::start(vec![
        Rule::new(Outcome::Stall).prompt_contains("invoke").times(1),
        Rule::new(Outcome::Stall).prompt_contains("stream").times(1),
        Rule::new(Outcome::text("answered")),
    ])
    .await;
    let mut settings = h.settings();
    settings.timeouts = AttemptTimeouts {
        invoke: Duration::from_secs(5),
        stream_idle: Duration::from_secs(5),
    };
    let client = h.client(settings);
    let deadline = Deadline::after(Duration::from_secs(600));
    let done = client
        .invoke(&call("invoke").deadline(deadline))
        .await
        .unwrap();
    assert_eq!(done.generation, "answered");
    assert_eq!(done.attempts, 2, "one stalled attempt, then the answer");
    // The stream's first chunk is waited for at most the idle timeout, too.
    let done = client
        .invoke_stream(&call("stream").deadline(deadline))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(done.generation, "answered");
    assert_eq!(done.attempts, 2);
    let stats = h.server.stats();
    assert_eq!((stats.stalled, stats.total()), (2, 4));
    // Each stall was cut at its 5 s attempt timeout: on the paused clock only timers move
    // time, so at least those two passed (exact). A client that waited a stall out towards
    // the deadline would have used far more.
    let used = Duration::from_secs(600) - deadline.remaining();
    assert!(
        (Duration::from_secs(10)..Duration::from_secs(60)).contains(&used),
        "{used:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_silent_between_chunks_fails_at_the_idle_timeout() {
    let h = Harness::start(vec![
        Rule::new(Outcome::text("one two three")).chunk_delay(Duration::from_secs(60)),
    ])
    .await;
    let mut settings = h.settings();
    settings.timeouts.stream_idle = Duration::from_secs(90);
    let client = h.client(settings.clone());
    let done = client
        .invoke_stream(&call("x"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        done.unwrap().generation,
        "one two three",
        "60 s gaps are allowed"
    );
    settings.timeouts.stream_idle = Duration::from_secs(10);
    let client = h.client(settings);
    let err = client.invoke_stream(&call("x")).await.err().unwrap();
    assert_eq!(err.error_type(), "ModelTimeout", "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        h.server.stats().total(),
        1 + 3,
        "the silent first chunk was retried"
    );
}

#[tokio::test(start_paused = true)]
async fn stalls_from_the_fault_injector_are_retried_in_time() {
    let h = Harness::with_faults(
        vec![],
        Faults {
            stall_rate: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let mut settings = h.settings();
    settings.timeouts.invoke = Duration::from_secs(10);
    let client = h.client(settings);
    let err = client
        .invoke(&call("x").deadline(Deadline::after(Duration::from_secs(600))))
        .await
        .unwrap_err();
    // Three attempts of 10 s, each cut and retried; none waits for the deadline.
    assert_eq!(err.error_type(), "ModelTimeout", "{err}");
    let stats = h.server.stats();
    assert_eq!((stats.stalled, stats.total()), (3, 3));
}

#[tokio::test]
async fn a_model_error_is_retried_once_per_call() {
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::ModelErrorException))
            .prompt_contains("flaky")
            .times(1),
        Rule::new(Outcome::text("second time")).prompt_contains("flaky"),
        Rule::new(Outcome::error(ErrorKind::ModelErrorException)),
    ])
    .await;
    let mut settings = h.settings();
    settings.models = ModelSelection::parse(PRIMARY, FALLBACK).unwrap();
    let client = h.client(settings);
    let done = client.invoke(&call("flaky")).await.unwrap();
    assert_eq!(done.generation, "second time");
    assert_eq!(done.attempts, 2);
    // Failing again: one retry only, and no fallback (max_attempts is 3).
    let err = client.invoke(&call("broken")).await.unwrap_err();
    assert_eq!(err.error_type(), "ModelError", "{err}");
    assert!(!err.is_retryable());
    let stats = h.server.stats();
    assert_eq!((stats.requests(PRIMARY), stats.requests(FALLBACK)), (4, 0));
}

/// An emulator whose guardrail blocks every request that carries one.
async fn blocking_guardrail() -> Harness {
    Harness::with_faults(
        vec![Rule::new(Outcome::text("a fine answer"))],
        Faults {
            guardrail_intervene_rate: 1.0,
            ..Faults::default()
        },
    )
    .await
}

fn guarded(mut settings: ClientSettings) -> ClientSettings {
    settings.guardrail = Some(Guardrail {
        identifier: "gr-abc123".into(),
        version: "1".into(),
    });
    settings
}

#[tokio::test]
async fn a_guardrail_intervention_is_content_blocked_not_a_generation() {
    let h = blocking_guardrail().await;
    let mut settings = guarded(h.settings());
    settings.models = ModelSelection::parse(PRIMARY, FALLBACK).unwrap();
    let client = h.client(settings);
    let err = client.invoke(&call("x")).await.unwrap_err();
    assert_eq!(err.error_type(), "ContentBlocked", "{err}");
    assert!(
        !err.to_string().contains("Sorry"),
        "no block message: {err}"
    );
    let err = client.invoke_stream(&call("x")).await.err().unwrap();
    assert_eq!(err.error_type(), "ContentBlocked", "{err}");
    // Neither retried nor sent to the fallback.
    let stats = h.server.stats();
    assert_eq!((stats.requests(PRIMARY), stats.requests(FALLBACK)), (2, 0));
    let lines = h.metric_lines();
    assert!(lines.iter().all(|l| l["ErrorType"] == "ContentBlocked"));
    // Without a guardrail on the request, the emulator has nothing to intervene with.
    let client = h.client(h.settings());
    assert_eq!(
        client.invoke(&call("x")).await.unwrap().generation,
        "a fine answer"
    );
}

#[tokio::test]
async fn a_guardrail_that_lets_the_call_pass_changes_nothing() {
    let h = Harness::start(vec![Rule::new(Outcome::text("a fine answer"))]).await;
    let client = h.client(guarded(h.settings()));
    assert_eq!(
        client.invoke(&call("x")).await.unwrap().generation,
        "a fine answer"
    );
    let done = client
        .invoke_stream(&call("x"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(done.unwrap().generation, "a fine answer");
}

#[tokio::test]
async fn bad_parameters_and_overflow_are_refused_before_any_call() {
    let h = Harness::start(vec![Rule::new(Outcome::text("never"))]).await;
    let mut settings = h.settings();
    settings.budget = ContextBudget::new(512).unwrap();
    let client = h.client(settings);
    let hot = call("x").params(GenerationParams::default().temperature(1.5));
    let err = client.invoke(&hot).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidParameter");
    assert!(err.to_string().contains("temperature"));
    let nan = call("x").params(GenerationParams::default().top_p(f32::NAN));
    assert_eq!(
        client.invoke_stream(&nan).await.err().unwrap().error_type(),
        "InvalidParameter"
    );
    let long = call(&"many words here ".repeat(200));
    let err = client.invoke(&long).await.unwrap_err();
    assert_eq!(err.error_type(), "ContextOverflow");
    assert_eq!(h.server.stats().total(), 0);
    assert_eq!(h.metric_lines().len(), 0, "nothing was called");
}

#[tokio::test]
async fn emulator_refusing_an_over_window_prompt_is_a_validation_error() {
    // The client thinks the window is Bedrock's; the emulator's is smaller.
    let server = Server::start(Config {
        context_window: Some(64),
        ..Config::default()
    })
    .await
    .unwrap();
    let client = LlamaClient::new(
        &sdk_config(&server.endpoint()),
        ClientSettings {
            metrics: Metrics::new("T", MetricsSink::Disabled),
            ..ClientSettings::default()
        },
    );
    let err = client
        .invoke(&call(&"word ".repeat(100)))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ModelValidation");
    assert!(err.to_string().contains("context"), "{err}");
}

#[tokio::test]
async fn malformed_model_body_is_a_typed_error() {
    let h = Harness::start(vec![Rule::new(Outcome::Malformed)]).await;
    let client = h.client(h.settings());
    let err = client.invoke(&call("x")).await.unwrap_err();
    assert_eq!(err.error_type(), "MalformedModelResponse");
}

/// A minimal in-test HTTP server that records one request's head and answers with a
/// fixed Llama body: the guardrail headers are only visible on the wire.
async fn capture_one_request() -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0;
        while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
            read += socket.read(&mut buf[read..]).await.unwrap();
        }
        let body = br#"{"generation":"ok","prompt_token_count":3,"generation_token_count":1,"stop_reason":"stop"}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(body).await.unwrap();
        String::from_utf8_lossy(&buf[..read]).to_lowercase()
    });
    (endpoint, task)
}

#[tokio::test]
async fn guardrail_is_passed_through() {
    let (endpoint, request) = capture_one_request().await;
    let settings = ClientSettings {
        guardrail: Some(Guardrail {
            identifier: "gr-abc123".into(),
            version: "7".into(),
        }),
        metrics: Metrics::new("T", MetricsSink::Disabled),
        ..ClientSettings::default()
    };
    let client = LlamaClient::new(&sdk_config(&endpoint), settings);
    let done = client.invoke(&call("x")).await.unwrap();
    assert_eq!(done.generation, "ok");
    let head = request.await.unwrap();
    assert!(
        head.contains("x-amzn-bedrock-guardrailidentifier: gr-abc123"),
        "{head}"
    );
    assert!(
        head.contains("x-amzn-bedrock-guardrailversion: 7"),
        "{head}"
    );
    assert!(
        head.starts_with("post /model/us.meta.llama3-2-3b-instruct-v1%3a0/invoke"),
        "{head}"
    );
}

/// Prices that make the arithmetic easy to follow: 1 USD per 1,000 prompt tokens (0.001 per
/// token) and 2 USD per 1,000 generated tokens; the fallback at a tenth of that.
fn priced(mut settings: ClientSettings) -> ClientSettings {
    let fallback = format!("{FALLBACK}=0.1/0.2");
    settings.pricing = Pricing::new(
        Price::per_1k("1", "2").unwrap(),
        Pricing::parse_overrides(&fallback).unwrap(),
    );
    settings
}

#[tokio::test]
async fn a_call_costs_its_tokens_at_the_answering_models_price() {
    let h = Harness::start(vec![Rule::new(Outcome::text("one two three four"))]).await;
    let client = h.client(priced(h.settings()));
    let done = client.invoke(&call("Count to four.")).await.unwrap();
    let (prompt, generated) = (done.usage.prompt_tokens, done.usage.generation_tokens);
    assert_eq!(generated, 4);
    assert!(prompt > 0);
    // prompt × 0.001 USD + 4 × 0.002 USD, in pico-dollars.
    let expected = u64::from(prompt) * 1_000_000_000 + 4 * 2_000_000_000;
    assert_eq!(done.usage.cost, Cost::from_pico_usd(expected));
    let totals = UsageTotals::of(&done);
    let json = serde_json::to_value(totals).unwrap();
    assert_eq!(json["cost_usd"], expected as f64 / 1e12);
    assert_eq!(
        done.usage.cost.to_string(),
        format!("{}.{:03}", (prompt + 8) / 1000, (prompt + 8) % 1000)
            .trim_end_matches('0')
            .trim_end_matches('.')
    );
    let lines = h.metric_lines();
    assert_eq!(lines[0]["CostUSD"], expected as f64 / 1e12);
    let declared = lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["Name"] == "CostUSD");
    assert!(declared, "CostUSD is a declared metric");
}

#[tokio::test]
async fn a_retried_call_that_fell_back_is_priced_at_the_fallbacks_price() {
    let h = Harness::start(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).model_id(PRIMARY),
        Rule::new(Outcome::text("from the fallback")).model_id(FALLBACK),
    ])
    .await;
    let mut settings = priced(h.settings());
    settings.models = ModelSelection::parse(PRIMARY, FALLBACK).unwrap();
    let client = h.client(settings);
    let done = client.invoke(&call("x")).await.unwrap();
    assert_eq!((done.model_id.as_str(), done.attempts), (FALLBACK, 4));
    let (prompt, generated) = (
        u64::from(done.usage.prompt_tokens),
        u64::from(done.usage.generation_tokens),
    );
    // 0.0001 and 0.0002 USD per token: 100,000,000 and 200,000,000 pico-dollars.
    let expected = prompt * 100_000_000 + generated * 200_000_000;
    assert_eq!(done.usage.cost.pico_usd(), expected);
    // The document's totals add calls' costs exactly.
    let mut totals = UsageTotals::default();
    totals.add(&done);
    totals.add(&done);
    assert_eq!(totals.cost.pico_usd(), 2 * expected);
    assert_eq!(h.metric_lines()[0]["CostUSD"], expected as f64 / 1e12);
}

#[tokio::test]
async fn a_stream_that_fails_midway_reports_the_cost_of_what_it_used() {
    let h = Harness::start(vec![Rule::new(Outcome::StreamError {
        after: 2,
        error: bedrock_local::BedrockError::of(ErrorKind::ModelStreamErrorException),
        generation: Some("alpha beta gamma delta".into()),
    })])
    .await;
    let client = h.client(priced(h.settings()));
    let mut stream = client.invoke_stream(&call("x")).await.unwrap();
    while stream.next_event().await.is_ok_and(|e| e.is_some()) {}
    let lines = h.metric_lines();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["Errors"], 1);
    let (input, output) = (
        line["InputTokens"].as_u64().unwrap(),
        line["OutputTokens"].as_u64().unwrap(),
    );
    assert!(input > 0 && output > 0, "{line}");
    let expected = input * 1_000_000_000 + output * 2_000_000_000;
    assert_eq!(line["CostUSD"], expected as f64 / 1e12);
}
