//! The entry point: classify the event, check the request, translate, answer.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use bedrock::Deadline;
use lambda_kit::http::{error_response, json_body, json_response, route};
use lambda_kit::{TaskError, Trigger, storage};
use serde_json::Value;
use text::Language;

use crate::App;
use crate::document::{DocumentRef, decode_text};
use crate::request::{HttpRequest, Options, TaskInput, TaskSource};
use crate::response::TranslationResponse;
use crate::translation::{Job, UsageTotals, translate};

/// The HTTP route served.
pub const ROUTE_PATH: &str = "/translations";

/// Below this detector confidence (0-1) the source language counts as undetermined: short
/// texts (a few words) often get a wrong guess with a confidence under 0.3, and a wrong
/// guess equal to the target would return the text untranslated.
pub const MIN_DETECTION_CONFIDENCE: f64 = 0.4;

/// Handles one invocation. HTTP API requests always get `Ok` with an HTTP response
/// (errors as `{"error": {"type", "message"}}`); Step Functions task input gets the
/// result or a [`TaskError`] whose type Step Functions can match.
pub async fn handle(app: &App, event: Value, deadline: Deadline) -> Result<Value, TaskError> {
    match Trigger::classify(event)? {
        Trigger::Http(request) => Ok(http(app, &request, deadline).await),
        Trigger::Task(input) => {
            let result = task(app, input, deadline).await;
            match &result {
                Err(e) if e.http_status() >= 500 || e.http_status() == 429 => {
                    tracing::error!(error_type = e.error_type(), error = %e, "task failed");
                }
                Err(e) => tracing::info!(error_type = e.error_type(), "task input rejected"),
                Ok(_) => {}
            }
            serialize(&result?)
        }
        Trigger::S3(_) => Err(TaskError::InvalidInput(
            "translate does not handle S3 notifications; run it as a Step Functions task \
             with {\"bucket\", \"key\", \"target_language\"}"
                .into(),
        )),
    }
}

async fn http(app: &App, request: &ApiGatewayV2httpRequest, deadline: Deadline) -> Value {
    let response = match http_translation(app, request, deadline).await {
        Ok(result) => json_response(200, &result),
        Err(e) => error_response(&e),
    };
    serde_json::to_value(&response).unwrap_or_else(|_| {
        serde_json::json!({
            "statusCode": 500,
            "headers": {"content-type": "application/json"},
            "body": "{\"error\":{\"type\":\"InternalError\",\"message\":\"internal error\"}}"
        })
    })
}

async fn http_translation(
    app: &App,
    request: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<TranslationResponse, TaskError> {
    let route = route(request);
    let path = route.split_once(' ').map_or("", |(_, path)| path);
    if path != ROUTE_PATH && !path.ends_with(ROUTE_PATH) {
        return Err(TaskError::InvalidInput(format!(
            "unknown route {route:?}; use POST {ROUTE_PATH}"
        )));
    }
    let body: HttpRequest = json_body(request, app.config.max_body_bytes)?;
    let options = Options::parse(
        &body.target_language,
        body.source_language.as_deref(),
        body.glossary,
        &app.config,
    )?;
    check_text(app, &body.text)?;
    run(app, &body.text, options, None, deadline).await
}

async fn task(
    app: &App,
    input: Value,
    deadline: Deadline,
) -> Result<TranslationResponse, TaskError> {
    let mut input: TaskInput = serde_json::from_value(input)
        .map_err(|e| TaskError::InvalidInput(format!("invalid task input: {e}")))?;
    let options = Options::parse(
        &input.target_language,
        input.source_language.as_deref(),
        input.glossary.take(),
        &app.config,
    )?;
    let output_key = input.output_key.take();
    match input.source()? {
        TaskSource::Text(_) if output_key.is_some() => Err(TaskError::InvalidInput(
            "`output_key` needs S3 input (`bucket` and `key`)".into(),
        )),
        TaskSource::Text(text) => {
            check_text(app, &text)?;
            run(app, &text, options, None, deadline).await
        }
        TaskSource::Document(document) => {
            let object = storage::get_object(
                &app.s3,
                &document.bucket,
                &document.key,
                app.config.max_object_bytes,
            )
            .await?;
            let text = decode_text(&object.bytes)?;
            check_text(app, &text)?;
            let bucket = document.bucket.clone();
            let mut result = run(app, &text, options, Some(document), deadline).await?;
            if let Some(output_key) = output_key {
                storage::put_text(&app.s3, &bucket, &output_key, &result.translation).await?;
                result.translation.clear();
                result.output_key = Some(output_key);
            }
            Ok(result)
        }
    }
}

/// Refuses empty and oversized text before any model call.
fn check_text(app: &App, text: &str) -> Result<(), TaskError> {
    if text.len() > app.config.max_text_bytes {
        return Err(TaskError::InputTooLarge(format!(
            "text is {} bytes; the limit is {}",
            text.len(),
            app.config.max_text_bytes
        )));
    }
    if text.trim().is_empty() {
        return Err(TaskError::InvalidInput("text is empty".into()));
    }
    Ok(())
}

/// Resolves the source language and translates (or returns the text as is when source
/// and target are the same).
async fn run(
    app: &App,
    text: &str,
    options: Options,
    document: Option<DocumentRef>,
    deadline: Deadline,
) -> Result<TranslationResponse, TaskError> {
    let (source, detected) = match options.source {
        Some(language) => (language, false),
        None => (detect(text)?, true),
    };
    let target = options.target;
    let mut response = TranslationResponse {
        translation: String::new(),
        source_language: source,
        detected,
        target_language: target,
        model: None,
        chunks: 0,
        usage: UsageTotals::default(),
        glossary_violations: Vec::new(),
        document,
        output_key: None,
    };
    if source == target {
        tracing::info!(
            language = source.code(),
            "source and target are the same; no translation"
        );
        response.translation = text.to_owned();
        return Ok(response);
    }
    let job = Job {
        text,
        source,
        target,
        glossary: &options.glossary,
    };
    let translation = translate(
        &app.llm,
        job,
        app.config.max_gen_len,
        app.config.concurrency,
        deadline,
    )
    .await?;
    response.translation = translation.text;
    response.model = translation.model;
    response.chunks = translation.chunks;
    response.usage = translation.usage;
    response.glossary_violations = translation.violations;
    Ok(response)
}

fn detect(text: &str) -> Result<Language, TaskError> {
    match text::detect(text) {
        Some(d) if d.confidence >= MIN_DETECTION_CONFIDENCE => {
            tracing::info!(
                language = d.language.code(),
                confidence = d.confidence,
                "source language detected"
            );
            Ok(d.language)
        }
        _ => Err(TaskError::InvalidInput(format!(
            "could not determine the language of the text; set source_language to one of: {}",
            Language::supported_list()
        ))),
    }
}

fn serialize(response: &TranslationResponse) -> Result<Value, TaskError> {
    serde_json::to_value(response)
        .map_err(|e| TaskError::Internal(format!("cannot serialize the result: {e}")))
}
