//! Streamed summaries (the function URL of `SummarizeStreamFunction`): the same body as
//! `POST /summaries`, answered as Server-Sent Events. A document that fits one call streams
//! that call; a longer one sends `progress` events while its parts are summarized and
//! combined, then streams the final combination. `done` carries the record `POST /summaries`
//! returns, plus the final call's `stop_reason`.

use std::time::Instant;

use bedrock::{BedrockError, Deadline, StopReason, UsageTotals};
use futures::StreamExt;
use lambda_kit::streaming::{Events, done_data};
use lambda_kit::{TaskError, from_json};
use serde_json::{Value, json};
use text::Language;

use crate::App;
use crate::document::{SummaryRecord, Timings, check_text, ms};
use crate::options::SummaryOptions;
use crate::requests::InlineRequest;
use crate::summarize::{Reduced, Sizes, invocation, reduce, summarize_part};

/// Answers one streaming request.
pub async fn stream(
    app: &App,
    input: Value,
    deadline: Deadline,
    events: &mut Events,
) -> Result<Value, TaskError> {
    let started = Instant::now();
    let request: InlineRequest = from_json(input)?;
    let options = request.options;
    let text = request.text.as_str();
    let (language, output_language) = check_text(app, text, &options)?;
    let plan = app.config.http_plan();
    let sizes = Sizes::new(&app.llama, &options, &plan, output_language);

    // One call when the client's budget check (before any network call) lets it through,
    // as `POST /summaries` decides.
    let whole = crate::prompt::whole(text, &options, output_language);
    let call_started = Instant::now();
    let opened = app
        .llama
        .invoke_stream(&invocation(&whole, sizes.final_len, deadline))
        .await;
    let (stream, call_started, mut usage, parts) = match opened {
        Ok(stream) => (stream, call_started, UsageTotals::default(), 1),
        Err(BedrockError::ContextOverflow(_)) => {
            let (summaries, mut usage) =
                summarize_parts(app, text, output_language, &sizes, deadline, events).await?;
            let parts = summaries.len();
            events
                .send("progress", &json!({"stage": "combine", "parts": parts}))
                .await?;
            let reduced = reduce(
                &app.llama,
                summaries,
                &options,
                output_language,
                &sizes,
                &plan,
                deadline,
            )
            .await?;
            let prompt = match reduced {
                Reduced::Done(summary) => {
                    // One part: its summary is the answer, sent as one chunk.
                    events.text(&summary.summary).await?;
                    let record = SummaryRecord {
                        summary: summary.summary,
                        model: summary.model,
                        usage,
                        parts,
                        truncated: false,
                        ..record(language, output_language, options, started)
                    };
                    return done_data(&record, Some(&StopReason::Stop));
                }
                Reduced::Final {
                    prompt,
                    usage: combined,
                    ..
                } => {
                    usage += combined;
                    prompt
                }
            };
            let call_started = Instant::now();
            let stream = app
                .llama
                .invoke_stream(&invocation(&prompt, sizes.final_len, deadline))
                .await?;
            (stream, call_started, usage, parts)
        }
        Err(e) => return Err(e.into()),
    };
    let completion = events.relay(stream, call_started).await?;
    usage.add(&completion);
    let record = SummaryRecord {
        summary: completion.generation.trim().to_owned(),
        model: completion.model_id,
        usage,
        parts,
        truncated: completion.usage.stop_reason == StopReason::Length,
        ..record(language, output_language, options, started)
    };
    done_data(&record, Some(&completion.usage.stop_reason))
}

/// Summarizes the parts of a long document (`plan.concurrency` at a time), sending a
/// `progress` event as each one is done; the summaries come back in input order.
async fn summarize_parts(
    app: &App,
    text: &str,
    language: Language,
    sizes: &Sizes,
    deadline: Deadline,
    events: &mut Events,
) -> Result<(Vec<String>, UsageTotals), TaskError> {
    let parts = sizes.split(text);
    let total = parts.len();
    events
        .send(
            "progress",
            &json!({"stage": "parts", "parts": total, "done": 0}),
        )
        .await?;
    let mut calls = futures::stream::iter(parts.iter().enumerate())
        .map(|(i, part)| {
            summarize_part(
                &app.llama,
                part.text,
                i + 1,
                total,
                language,
                sizes,
                deadline,
            )
        })
        .buffered(app.config.http_plan().concurrency.max(1));
    let mut usage = UsageTotals::default();
    let mut summaries = Vec::with_capacity(total);
    while let Some(done) = calls.next().await {
        let done = done?;
        usage.add(&done);
        summaries.push(done.generation);
        events
            .send(
                "progress",
                &json!({"stage": "parts", "parts": total, "done": summaries.len()}),
            )
            .await?;
    }
    Ok((summaries, usage))
}

/// A record with everything but the summary, its model and usage.
fn record(
    language: Option<Language>,
    output_language: Language,
    options: SummaryOptions,
    started: Instant,
) -> SummaryRecord {
    SummaryRecord {
        summary: String::new(),
        source: None,
        language,
        output_language,
        format: "text",
        model: String::new(),
        usage: UsageTotals::default(),
        parts: 1,
        truncated: false,
        options,
        timings: Timings {
            extract_ms: 0,
            model_ms: ms(started),
            total_ms: ms(started),
        },
    }
}
