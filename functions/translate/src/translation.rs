//! Translating a whole text: Markdown code blocks kept, prose split into chunks that fit
//! the context window with room for their translation, chunks translated concurrently
//! and joined back in order with their surrounding whitespace untouched.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bedrock::{
    BedrockError, Completion, Deadline, GenerationParams, Invocation, LlamaClient, StopReason,
    UsageTotals, estimate_tokens,
};
use futures::{StreamExt, TryStreamExt};
use lambda_kit::TaskError;
use lambda_kit::streaming::Events;
use lambda_kit::sync_budget::{ModelCall, Workload};
use text::Language;

use crate::glossary::{Glossary, GlossaryEntry, GlossaryViolation};

/// Why a translation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TranslateError {
    /// The instructions and glossary leave no room for text in the context window.
    #[error("{0}")]
    NoRoom(String),
    /// The model's output limit cut off a chunk that cannot be split further.
    #[error("{0}")]
    CutOff(String),
    /// The model call failed or answered nothing usable.
    #[error(transparent)]
    Model(#[from] BedrockError),
}

impl From<TranslateError> for lambda_kit::TaskError {
    fn from(e: TranslateError) -> Self {
        match e {
            TranslateError::NoRoom(m) => Self::InputTooLarge(m),
            TranslateError::CutOff(m) => Self::UnsupportedDocument(m),
            TranslateError::Model(e) => Self::Model(e),
        }
    }
}
use crate::expansion::Expansion;
use crate::markdown::{Segment, segments};
use crate::prompt;

/// Each call may generate up to this many times its chunk's [`Expansion`] allowance
/// (plus [`GENERATION_SLACK`]), within `max_gen_len` and the window: room for verbose
/// translations of chunks shorter than a full one, without letting a looping model run
/// for the whole window. A full chunk gets `max_gen_len`, its allowance.
const GENERATION_ALLOWANCE: u32 = 2;

/// Extra tokens every call may generate beyond its allowance (short chunks).
const GENERATION_SLACK: u32 = 32;

/// Tokens kept free for estimate rounding where the prompt and the chunk join.
const PROMPT_MARGIN: u32 = 16;

/// Chunks smaller than this are not worth a call: the glossary is too large instead.
const MIN_CHUNK_TOKENS: u32 = 16;

/// How often a chunk whose translation was cut off is halved and tried again.
const MAX_SPLIT_DEPTH: u32 = 3;

/// Sampling temperature: translations should be faithful, not creative.
const TEMPERATURE: f32 = 0.2;

/// What to translate and how.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub text: &'a str,
    /// Its language.
    pub source: Language,
    /// The language to translate into (different from `source`).
    pub target: Language,
    /// Terms with required renderings.
    pub glossary: &'a Glossary,
}

/// A finished translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The translated text.
    pub text: String,
    /// Chunks sent to the model (before any re-splitting of cut-off chunks).
    pub chunks: usize,
    /// Tokens and calls.
    pub usage: UsageTotals,
    /// The model that answered (the last one, if fallbacks were used); `None` if no
    /// call was needed.
    pub model: Option<String>,
    /// Glossary terms the translation does not render as required.
    pub violations: Vec<GlossaryViolation>,
}

/// How chunks are sized and calls are made, given the window and the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Most estimated tokens per chunk.
    pub chunk_tokens: u32,
    pub context_window: u32,
    /// Most tokens generated per call.
    pub max_gen_len: u32,
    /// Tokens of translation allowed per estimated source token.
    pub expansion: Expansion,
}

impl ChunkPlan {
    /// Sizes chunks so that prompt overhead (`overhead_tokens`, instructions and
    /// glossary), the chunk and its translation (`expansion` times the chunk) fit
    /// `context_window`, and the translation fits `max_gen_len`.
    pub fn new(
        context_window: u32,
        max_gen_len: u32,
        overhead_tokens: u32,
        expansion: Expansion,
    ) -> Result<Self, TranslateError> {
        let room = context_window.saturating_sub(overhead_tokens.saturating_add(PROMPT_MARGIN));
        let chunk_tokens = expansion
            .source_with_translation(room)
            .min(expansion.source_for(max_gen_len));
        if chunk_tokens < MIN_CHUNK_TOKENS {
            return Err(TranslateError::NoRoom(format!(
                "the translation instructions and glossary take about {overhead_tokens} tokens \
                 of the {context_window}-token context window (with max_gen_len \
                 {max_gen_len}), leaving no room for the text; shorten the glossary"
            )));
        }
        Ok(Self {
            chunk_tokens,
            context_window,
            max_gen_len,
            expansion,
        })
    }

    /// The `max_gen_len` for a call whose prompt is estimated at `prompt_tokens` and
    /// whose chunk at `chunk_tokens`.
    fn gen_len(&self, prompt_tokens: u32, chunk_tokens: u32) -> u32 {
        let allowance = self
            .expansion
            .of(chunk_tokens)
            .saturating_mul(GENERATION_ALLOWANCE)
            .saturating_add(GENERATION_SLACK);
        self.max_gen_len
            .min(self.context_window.saturating_sub(prompt_tokens))
            .min(allowance)
    }
}

/// One piece of the text in output order.
enum Unit<'a> {
    /// Kept as is (a code block, or only whitespace).
    Keep(&'a str),
    /// Translated; the index counts translated chunks.
    Translate { index: usize, text: &'a str },
}

/// The output of one unit.
#[derive(Default)]
struct Piece {
    text: String,
    usage: UsageTotals,
    model: Option<String>,
    violations: Vec<GlossaryViolation>,
}

/// Translates `job.text` with `client`, `concurrency` chunks at a time, within `deadline`.
pub async fn translate(
    client: &LlamaClient,
    job: Job<'_>,
    max_gen_len: u32,
    concurrency: usize,
    deadline: Deadline,
) -> Result<Translation, TranslateError> {
    let translator = Translator::new(client, job, max_gen_len, deadline)?;
    let plan = translator.plan;
    let units = plan_units(job.text, plan.chunk_tokens);
    let chunks = units
        .iter()
        .filter(|u| matches!(u, Unit::Translate { .. }))
        .count();
    tracing::info!(
        chunks,
        chunk_tokens = plan.chunk_tokens,
        source = job.source.code(),
        target = job.target.code(),
        "translating"
    );
    let pieces: Vec<Piece> = futures::stream::iter(units.into_iter().map(|unit| {
        let translator = &translator;
        async move {
            match unit {
                Unit::Keep(text) => Ok(Piece {
                    text: text.to_owned(),
                    ..Piece::default()
                }),
                Unit::Translate { index, text } => translator.chunk(index, text, 0).await,
            }
        }
    }))
    .buffered(concurrency.max(1))
    .try_collect()
    .await?;
    let mut out = Translation {
        text: String::with_capacity(job.text.len() + job.text.len() / 2),
        chunks,
        usage: UsageTotals::default(),
        model: None,
        violations: Vec::new(),
    };
    for piece in pieces {
        out.text.push_str(&piece.text);
        out.usage += piece.usage;
        out.model = piece.model.or(out.model);
        out.violations.extend(piece.violations);
    }
    tracing::info!(
        chunks,
        model_calls = out.usage.model_calls,
        generation_tokens = out.usage.generation_tokens,
        glossary_violations = out.violations.len(),
        "translated"
    );
    Ok(out)
}

/// The model calls [`translate`] makes for `job` (one per chunk, `concurrency` at a time,
/// each counted at the largest chunk's prompt and `max_gen_len`); re-splitting of cut-off
/// chunks is not foreseen.
pub fn workload(
    client: &LlamaClient,
    job: Job<'_>,
    max_gen_len: u32,
    concurrency: usize,
) -> Result<Workload, TranslateError> {
    let (system, plan) = system_and_plan(client, job, max_gen_len)?;
    let mut chunks = 0;
    let mut largest = ModelCall {
        prompt_tokens: 0,
        max_gen_len: 0,
    };
    for unit in plan_units(job.text, plan.chunk_tokens) {
        if let Unit::Translate { text, .. } = unit {
            let core = text.trim();
            let prompt_tokens = estimate_tokens(prompt::chat(&system, core).render().as_str());
            chunks += 1;
            largest.prompt_tokens = largest.prompt_tokens.max(prompt_tokens);
            largest.max_gen_len = largest
                .max_gen_len
                .max(plan.gen_len(prompt_tokens, estimate_tokens(core)));
        }
    }
    Ok(Workload::new().then_parallel(chunks, concurrency, largest))
}

/// The system prompt of `job` and its chunk plan, sized for the longest prompt it may
/// send (the retry that repeats every glossary entry).
fn system_and_plan(
    client: &LlamaClient,
    job: Job<'_>,
    max_gen_len: u32,
) -> Result<(String, ChunkPlan), TranslateError> {
    let system = prompt::system_prompt(job.source, job.target, job.glossary, &[]);
    let all: Vec<&GlossaryEntry> = job.glossary.entries().iter().collect();
    let longest = prompt::system_prompt(job.source, job.target, job.glossary, &all);
    let overhead = estimate_tokens(prompt::chat(&longest, "").render().as_str());
    let plan = ChunkPlan::new(
        client.settings().budget.context_window(),
        max_gen_len,
        overhead,
        Expansion::into(job.target),
    )?;
    Ok((system, plan))
}

/// Code blocks and whitespace are kept; prose is split into chunks of at most
/// `chunk_tokens`.
fn plan_units(text: &str, chunk_tokens: u32) -> Vec<Unit<'_>> {
    let mut units = Vec::new();
    let mut index = 0;
    for segment in segments(text) {
        match segment {
            Segment::Code(code) => units.push(Unit::Keep(code)),
            Segment::Prose(prose) => {
                for chunk in text::split(prose, chunk_tokens, 0) {
                    if chunk.text.trim().is_empty() {
                        units.push(Unit::Keep(chunk.text));
                    } else {
                        units.push(Unit::Translate {
                            index,
                            text: chunk.text,
                        });
                        index += 1;
                    }
                }
            }
        }
    }
    units
}

/// `text` as (leading whitespace, content, trailing whitespace).
fn whitespace_edges(text: &str) -> (&str, &str, &str) {
    let rest = text.trim_start();
    let lead = text.strip_suffix(rest).unwrap_or("");
    let core = rest.trim_end();
    let trail = rest.strip_prefix(core).unwrap_or("");
    (lead, core, trail)
}

type PieceFuture<'a> = Pin<Box<dyn Future<Output = Result<Piece, TranslateError>> + Send + 'a>>;

struct Translator<'a> {
    client: &'a LlamaClient,
    job: Job<'a>,
    system: String,
    plan: ChunkPlan,
    deadline: Deadline,
}

impl<'a> Translator<'a> {
    /// A translator for `job` ([`system_and_plan`]).
    fn new(
        client: &'a LlamaClient,
        job: Job<'a>,
        max_gen_len: u32,
        deadline: Deadline,
    ) -> Result<Self, TranslateError> {
        let (system, plan) = system_and_plan(client, job, max_gen_len)?;
        Ok(Self {
            client,
            job,
            system,
            plan,
            deadline,
        })
    }

    /// Translates one chunk (chunk `index` of the text, or part of it at `depth` > 0),
    /// keeping its leading and trailing whitespace exactly. An empty translation is tried
    /// once more before it fails as `MalformedModelResponse`. A translation cut off at
    /// `max_gen_len` is redone in halves, down to [`MAX_SPLIT_DEPTH`].
    fn chunk<'s>(&'s self, index: usize, text: &'s str, depth: u32) -> PieceFuture<'s> {
        Box::pin(async move {
            let (lead, core, trail) = whitespace_edges(text);
            if core.is_empty() {
                return Ok(Piece {
                    text: text.to_owned(),
                    ..Piece::default()
                });
            }
            let mut piece = Piece::default();
            let mut first = self.call(&self.system, core).await?;
            piece.usage.add(&first);
            piece.model = Some(first.model_id.clone());
            if first.generation.trim().is_empty() && first.usage.stop_reason != StopReason::Length {
                // An empty answer is most likely a fluke of sampling: one more try.
                tracing::warn!(
                    chunk = index,
                    "empty translation; translating the chunk again"
                );
                first = self.call(&self.system, core).await?;
                piece.usage.add(&first);
                piece.model = Some(first.model_id.clone());
            }
            if first.usage.stop_reason == StopReason::Length {
                return self.resplit(index, text, core, depth, piece).await;
            }
            let mut translated = nonempty(&first)?.to_owned();
            let mut missed = self.job.glossary.violations(core, &translated);
            if !missed.is_empty() {
                // One more try that insists on the ignored entries; keep the better one.
                let strict = prompt::system_prompt(
                    self.job.source,
                    self.job.target,
                    self.job.glossary,
                    &missed,
                );
                let retry = self.call(&strict, core).await?;
                piece.usage.add(&retry);
                if retry.usage.stop_reason != StopReason::Length
                    && let Ok(text) = nonempty(&retry)
                {
                    let retry_missed = self.job.glossary.violations(core, text);
                    if retry_missed.len() < missed.len() {
                        translated = text.to_owned();
                        missed = retry_missed;
                        piece.model = Some(retry.model_id.clone());
                    }
                }
            }
            if !missed.is_empty() {
                tracing::warn!(
                    chunk = index,
                    terms = missed.len(),
                    "translation does not follow the glossary"
                );
            }
            piece.violations = GlossaryViolation::in_chunk(&missed, index);
            piece.text = format!("{lead}{translated}{trail}");
            Ok(piece)
        })
    }

    /// Redoes a chunk whose translation hit `max_gen_len` as smaller parts, in order.
    async fn resplit(
        &self,
        index: usize,
        text: &str,
        core: &str,
        depth: u32,
        mut piece: Piece,
    ) -> Result<Piece, TranslateError> {
        let tokens = estimate_tokens(core);
        let parts = text::split(core, (tokens / 2).max(1), 0);
        if depth >= MAX_SPLIT_DEPTH || parts.len() < 2 {
            return Err(TranslateError::CutOff(format!(
                "the translation of chunk {index} (about {tokens} tokens) was cut off at the \
                 model's output limit even after splitting it {depth} time(s); the text \
                 cannot be translated completely"
            )));
        }
        tracing::info!(
            chunk = index,
            depth,
            parts = parts.len(),
            "translation cut off at max_gen_len; splitting the chunk"
        );
        let (lead, _, trail) = whitespace_edges(text);
        let mut out = String::from(lead);
        for part in parts {
            let sub = self.chunk(index, part.text, depth + 1).await?;
            out.push_str(&sub.text);
            piece.usage += sub.usage;
            piece.model = sub.model.or(piece.model);
            piece.violations.extend(sub.violations);
        }
        out.push_str(trail);
        piece.text = out;
        Ok(piece)
    }

    async fn call(&self, system: &str, core: &str) -> Result<Completion, TranslateError> {
        let invocation = self.invocation(system, core)?;
        Ok(self.client.invoke(&invocation).await?)
    }

    /// The call that translates `core` with `system`, sized to the chunk.
    fn invocation(&self, system: &str, core: &str) -> Result<Invocation, TranslateError> {
        let invocation = Invocation::chat(&prompt::chat(system, core));
        let prompt_tokens = estimate_tokens(invocation.prompt());
        let gen_len = self.plan.gen_len(prompt_tokens, estimate_tokens(core));
        if gen_len == 0 {
            return Err(TranslateError::Model(BedrockError::ContextOverflow(
                bedrock::budget::Overflow {
                    prompt_tokens,
                    max_gen_len: 1,
                    context_window: self.plan.context_window,
                },
            )));
        }
        Ok(invocation
            .params(
                GenerationParams::default()
                    .temperature(TEMPERATURE)
                    .max_gen_len(gen_len),
            )
            .deadline(self.deadline))
    }

    /// Translates one chunk as [`Translator::chunk`] does, sending the translation as it is
    /// generated: its whitespace, then the model's text (an empty answer is tried once
    /// more, nothing of it having been sent). What was sent cannot be taken back, so a
    /// translation cut off at `max_gen_len` fails (`UnsupportedDocument`) instead of being
    /// redone in halves, and glossary misses are reported, not retried.
    async fn stream_chunk(
        &self,
        index: usize,
        text: &str,
        events: &mut Events,
    ) -> Result<Piece, TaskError> {
        let (lead, core, trail) = whitespace_edges(text);
        events.text(lead).await?;
        if core.is_empty() {
            events.text(trail).await?;
            return Ok(Piece {
                text: text.to_owned(),
                ..Piece::default()
            });
        }
        let mut piece = Piece::default();
        let mut answer = self.stream_call(core, events).await?;
        piece.usage.add(&answer);
        if answer.generation.trim().is_empty() && answer.usage.stop_reason != StopReason::Length {
            tracing::warn!(
                chunk = index,
                "empty translation; translating the chunk again"
            );
            answer = self.stream_call(core, events).await?;
            piece.usage.add(&answer);
        }
        piece.model = Some(answer.model_id.clone());
        if answer.usage.stop_reason == StopReason::Length {
            return Err(TranslateError::CutOff(format!(
                "the translation of chunk {index} was cut off at the model's output limit; a \
                 streamed translation cannot redo it in parts: use POST /translations"
            ))
            .into());
        }
        let translated = nonempty(&answer)?.to_owned();
        let missed = self.job.glossary.violations(core, &translated);
        piece.violations = GlossaryViolation::in_chunk(&missed, index);
        events.text(trail).await?;
        piece.text = format!("{lead}{translated}{trail}");
        Ok(piece)
    }

    async fn stream_call(&self, core: &str, events: &mut Events) -> Result<Completion, TaskError> {
        let invocation = self.invocation(&self.system, core)?;
        let started = Instant::now();
        let stream = self.client.invoke_stream(&invocation).await?;
        events.relay(stream, started).await
    }
}

/// Translates `job.text` as [`translate`] does, one chunk after the other, sending the
/// translation through `events` as the model generates it (see `Translator::stream_chunk`
/// for what differs).
pub async fn translate_streaming(
    client: &LlamaClient,
    job: Job<'_>,
    max_gen_len: u32,
    deadline: Deadline,
    events: &mut Events,
) -> Result<Translation, TaskError> {
    // Chunked as `translate` chunks, so that both give the same text.
    let translator = Translator::new(client, job, max_gen_len, deadline)?;
    let plan = translator.plan;
    let mut out = Translation {
        text: String::with_capacity(job.text.len() + job.text.len() / 2),
        chunks: 0,
        usage: UsageTotals::default(),
        model: None,
        violations: Vec::new(),
    };
    for unit in plan_units(job.text, plan.chunk_tokens) {
        match unit {
            Unit::Keep(text) => {
                events.text(text).await?;
                out.text.push_str(text);
            }
            Unit::Translate { index, text } => {
                let piece = translator.stream_chunk(index, text, events).await?;
                out.chunks += 1;
                out.text.push_str(&piece.text);
                out.usage += piece.usage;
                out.model = piece.model.or(out.model);
                out.violations.extend(piece.violations);
            }
        }
    }
    Ok(out)
}

/// The generation, trimmed; an empty one is a malformed answer.
fn nonempty(completion: &Completion) -> Result<&str, TranslateError> {
    let text = completion.generation.trim();
    if text.is_empty() {
        return Err(TranslateError::Model(BedrockError::MalformedResponse {
            message: "the model returned an empty translation".into(),
        }));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedrock_local::{Outcome, Rule, Script};
    use std::time::Duration;

    const WINDOW: u32 = 8192;

    async fn translate_with(script: Script) -> (Result<Translation, TranslateError>, u64) {
        let emulator = testkit::Emulator::start(script, WINDOW).await;
        let client = emulator.client(emulator.settings(WINDOW));
        let glossary = Glossary::default();
        let job = Job {
            text: "The quarterly report is ready.",
            source: Language::English,
            target: Language::German,
            glossary: &glossary,
        };
        let deadline = Deadline::after(Duration::from_secs(60));
        let result = translate(&client, job, 512, 2, deadline).await;
        (result, emulator.calls())
    }

    #[tokio::test]
    async fn an_empty_translation_is_tried_once_more() {
        let script = Script::new(vec![
            Rule::new(Outcome::text("   ")).times(1),
            Rule::new(Outcome::text("Der Quartalsbericht ist fertig.")),
        ]);
        let (result, calls) = translate_with(script).await;
        let translation = result.unwrap();
        assert_eq!(translation.text, "Der Quartalsbericht ist fertig.");
        assert_eq!((calls, translation.usage.model_calls), (2, 2));
    }

    #[tokio::test]
    async fn an_empty_translation_twice_fails_and_is_never_the_result() {
        let (result, calls) = translate_with(Script::new(vec![Rule::new(Outcome::text(""))])).await;
        let err = lambda_kit::TaskError::from(result.unwrap_err());
        assert_eq!(err.error_type(), "MalformedModelResponse");
        assert_eq!(calls, 2, "one retry, not more");
    }

    #[tokio::test]
    async fn latin_script_targets_take_fewer_larger_chunks() {
        let emulator = testkit::Emulator::start(Script::default(), 131_072).await;
        let client = emulator.client(emulator.settings(131_072));
        let glossary = Glossary::default();
        let text =
            "The quarterly report describes revenue, costs and the outlook.\n\n".repeat(1200);
        let calls = |target| {
            let job = Job {
                text: &text,
                source: Language::English,
                target,
                glossary: &glossary,
            };
            workload(&client, job, 2048, 4).unwrap().model_calls()
        };
        let (german, hindi) = (calls(Language::German), calls(Language::Hindi));
        assert!(hindi >= 10, "{hindi}");
        // Each call still reserves up to 2048 tokens, for 1.5 times the source text.
        assert!(
            german * 4 <= hindi * 3,
            "{german} calls into German, {hindi} into Hindi"
        );
        assert_eq!(calls(Language::Thai), hindi);
    }

    #[test]
    fn whitespace_edges_split_exactly() {
        assert_eq!(
            whitespace_edges("\n\n  Hallo Welt \n\n"),
            ("\n\n  ", "Hallo Welt", " \n\n")
        );
        assert_eq!(whitespace_edges("x"), ("", "x", ""));
        assert_eq!(whitespace_edges(" \n "), (" \n ", "", ""));
        assert_eq!(whitespace_edges(""), ("", "", ""));
    }

    #[test]
    fn chunks_leave_room_for_a_longer_translation() {
        let plan = ChunkPlan::new(131_072, 2048, 400, Expansion::WIDE).unwrap();
        assert_eq!(plan.chunk_tokens, 1024);
        assert_eq!(plan.gen_len(1500, 1024), 2048);
        let small = ChunkPlan::new(512, 2048, 200, Expansion::WIDE).unwrap();
        assert_eq!(small.chunk_tokens, (512 - 216) / 3);
        let prompt = 200 + small.chunk_tokens;
        let gen_len = small.gen_len(prompt, small.chunk_tokens);
        assert!(gen_len >= 2 * small.chunk_tokens);
        assert!(prompt + gen_len <= 512);
        let err = ChunkPlan::new(512, 2048, 480, Expansion::WIDE).unwrap_err();
        assert_eq!(
            lambda_kit::TaskError::from(err.clone()).error_type(),
            "InputTooLarge"
        );
        assert!(err.to_string().contains("glossary"));
    }

    #[test]
    fn latin_script_targets_reserve_a_third_less_per_source_token() {
        // Per estimated source token, a full chunk reserves max_gen_len / chunk_tokens.
        let wide = ChunkPlan::new(131_072, 2048, 400, Expansion::WIDE).unwrap();
        let latin = ChunkPlan::new(131_072, 2048, 400, Expansion::LATIN).unwrap();
        assert_eq!(latin.chunk_tokens, 1517);
        assert_eq!(latin.gen_len(1900, latin.chunk_tokens), 2048);
        let per_token =
            |p: ChunkPlan| f64::from(p.gen_len(2000, p.chunk_tokens)) / f64::from(p.chunk_tokens);
        let saving = 1.0 - per_token(latin) / per_token(wide);
        assert!((0.32..0.34).contains(&saving), "{saving}");
        // A short chunk: twice its allowance plus the slack, a third less too.
        assert_eq!(wide.gen_len(300, 100), 432);
        assert_eq!(latin.gen_len(300, 100), 302);
        // The halves of a cut-off full chunk still get the whole max_gen_len.
        assert_eq!(latin.gen_len(1200, latin.chunk_tokens / 2), 2048);
        // In a small window, a chunk and its allowance fit beside the prompt.
        let small = ChunkPlan::new(512, 2048, 200, Expansion::LATIN).unwrap();
        assert_eq!(small.chunk_tokens, (512 - 216) * 100 / 235);
        let prompt = 200 + small.chunk_tokens;
        let gen_len = small.gen_len(prompt, small.chunk_tokens);
        assert!(gen_len >= Expansion::LATIN.of(small.chunk_tokens));
        assert!(prompt + gen_len <= 512);
    }

    #[test]
    fn units_keep_code_and_whitespace_and_cover_the_text() {
        let text = "Para one.\n\n```\ncode block\n```\n\nPara two is here.\n\n";
        let units = plan_units(text, 100);
        let mut rebuilt = String::new();
        let mut translated = Vec::new();
        for unit in &units {
            match unit {
                Unit::Keep(t) => rebuilt.push_str(t),
                Unit::Translate { index, text } => {
                    rebuilt.push_str(text);
                    translated.push((*index, *text));
                }
            }
        }
        assert_eq!(rebuilt, text);
        assert_eq!(
            translated,
            [(0, "Para one.\n\n"), (1, "\nPara two is here.\n\n")]
        );
    }
}
