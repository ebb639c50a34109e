//! The function's table of handlers: `POST /translations` and Step Functions tasks.

use bedrock::{Deadline, StopReason, UsageTotals};
use lambda_kit::streaming::{Events, done_data};
use lambda_kit::sync_budget::Workload;
use lambda_kit::{Clients, Function, Route, TaskError, from_json, storage, to_json};
use serde::Deserialize;
use serde_json::Value;
use settings::ConfigError;
use text::Language;

use crate::document::DocumentRef;
use crate::request::{HttpRequest, Options, TaskInput, TaskSource};
use crate::response::TranslationResponse;
use crate::translation::{self, Job, translate, translate_streaming};
use crate::{App, Config};

/// What the function serves over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /translations`.
    Translate,
}

impl Function for App {
    type Settings = Config;
    type Endpoint = Endpoint;

    const NAME: &'static str = "translate";
    const ROUTES: &'static [Route<Endpoint>] = &[Route::post("/translations", Endpoint::Translate)];

    fn build(clients: &Clients, config: Config) -> Result<Self, ConfigError> {
        Ok(Self {
            llm: clients.llama.clone(),
            s3: clients.s3(),
            config,
        })
    }

    fn max_request_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    fn estimate(&self, Endpoint::Translate: Endpoint, input: &Value) -> Option<Workload> {
        let body = HttpRequest::deserialize(input).ok()?;
        let options = Options::parse(
            &body.target_language,
            body.source_language.as_deref(),
            body.glossary,
            &self.config,
        )
        .ok()?;
        let source = match options.source {
            Some(language) => language,
            None => text::detect_confident(&body.text)?.language,
        };
        if source == options.target {
            return Some(Workload::new());
        }
        let job = Job {
            text: &body.text,
            source,
            target: options.target,
            glossary: &options.glossary,
        };
        translation::workload(
            &self.llm,
            job,
            self.config.max_gen_len,
            self.config.concurrency,
        )
        .ok()
    }

    async fn http(
        &self,
        Endpoint::Translate: Endpoint,
        input: Value,
        deadline: Deadline,
    ) -> Result<Value, TaskError> {
        let (text, options) = http_request(self, input)?;
        to_json(&run(self, &text, options, None, deadline, None).await?)
    }

    async fn stream(
        &self,
        input: Value,
        deadline: Deadline,
        events: &mut Events,
    ) -> Result<Value, TaskError> {
        let (text, options) = http_request(self, input)?;
        let response = run(self, &text, options, None, deadline, Some(events)).await?;
        // `stop` when the model translated: a streamed chunk cut off at `max_gen_len` ends
        // the stream with an `error` event instead.
        let stop = (response.usage.model_calls > 0).then_some(&StopReason::Stop);
        done_data(&response, stop)
    }

    async fn task(&self, input: Value, deadline: Deadline) -> Result<Value, TaskError> {
        to_json(&task(self, input, deadline).await?)
    }
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
            run(app, &text, options, None, deadline, None).await
        }
        TaskSource::Document(document) => {
            let object = storage::get_object(
                &app.s3,
                &document.bucket,
                &document.key,
                app.config.max_object_bytes,
            )
            .await?;
            let text = text::decode_plain_text(&object.bytes)?;
            check_text(app, &text)?;
            let bucket = document.bucket.clone();
            let mut result = run(app, &text, options, Some(document), deadline, None).await?;
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
/// An HTTP body (`POST /translations` or the streaming function URL): its text, checked,
/// and its options.
fn http_request(app: &App, input: Value) -> Result<(String, Options), TaskError> {
    let body: HttpRequest = from_json(input)?;
    let options = Options::parse(
        &body.target_language,
        body.source_language.as_deref(),
        body.glossary,
        &app.config,
    )?;
    check_text(app, &body.text)?;
    Ok((body.text, options))
}

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
/// and target are the same); with `events`, the translation is streamed as it comes.
async fn run(
    app: &App,
    text: &str,
    options: Options,
    document: Option<DocumentRef>,
    deadline: Deadline,
    events: Option<&mut Events>,
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
        if let Some(events) = events {
            events.text(text).await?;
        }
        response.translation = text.to_owned();
        return Ok(response);
    }
    let job = Job {
        text,
        source,
        target,
        glossary: &options.glossary,
    };
    let translation = match events {
        Some(events) => {
            translate_streaming(&app.llm, job, app.config.max_gen_len, deadline, events).await?
        }
        None => {
            translate(
                &app.llm,
                job,
                app.config.max_gen_len,
                app.config.concurrency,
                deadline,
            )
            .await?
        }
    };
    response.translation = translation.text;
    response.model = translation.model;
    response.chunks = translation.chunks;
    response.usage = translation.usage;
    response.glossary_violations = translation.violations;
    Ok(response)
}

fn detect(text: &str) -> Result<Language, TaskError> {
    match text::detect_confident(text) {
        Some(d) => {
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
