//! The scripted backend: a TEST DOUBLE with canned replies and errors, for deterministic tests.
//! It runs no model.
//!
//! Rules are checked in order; the first that matches (and has uses left) decides the answer.
//! Prompt token counts are whitespace-separated words (a prompt counts at least 1), or exact
//! Llama 3 tokens when the script says `"tokens": "llama3"`. A request no rule matches gets
//! the fallback, by default the echo reply `Echo: <last user message>`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Action, GenEvent, Generation, Plan, Work};
use crate::chat;
use crate::errors::{BedrockError, ErrorKind};
use crate::wire::{LlamaRequest, StopReason, context_overflow};

/// The context window of the scripted backend unless configured, in words.
pub const DEFAULT_SCRIPTED_CONTEXT_WINDOW: u32 = 8192;

/// A scripted test double's behaviour: rules checked in order, then the fallback.
///
/// As JSON: `{"rules": [...], "fallback": {outcome}, "tokens": "words"}`, all optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Rules, checked in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The answer when no rule matches; `None` means the echo reply.
    #[serde(default)]
    pub fallback: Option<Outcome>,
    /// How prompts are counted (`prompt_token_count`, the context window check).
    #[serde(default)]
    pub tokens: PromptTokens,
}

/// How the scripted double counts a prompt's tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptTokens {
    /// Whitespace-separated words, at least 1.
    #[default]
    Words,
    /// Exact Llama 3 tokens, as Bedrock counts them.
    Llama3,
}

impl PromptTokens {
    fn count(self, prompt: &str) -> u32 {
        match self {
            Self::Words => count_words(prompt),
            Self::Llama3 => tokens::llama3::count_tokens(prompt),
        }
    }
}

/// One rule: when it applies, and what to answer.
///
/// As JSON, the matchers, limits and outcome share one object, e.g.
/// `{"prompt_contains": "hi", "times": 2, "error": "ThrottlingException"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct Rule {
    /// Applies only to this model id (the configured id, or the id exactly as sent).
    pub model_id: Option<String>,
    /// Applies only when the prompt contains this text.
    pub prompt_contains: Option<String>,
    /// Applies only to its first `times` matches, then requests fall through to later rules.
    pub times: Option<u32>,
    /// Wait before answering (JSON: `delay_ms`).
    pub delay: Duration,
    /// Wait before each streamed chunk (JSON: `chunk_delay_ms`).
    pub chunk_delay: Duration,
    /// The answer.
    pub outcome: Outcome,
}

/// What a scripted request gets.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawOutcome")]
pub enum Outcome {
    /// A generation, streamed one word per chunk. JSON: `{"generation": "...", "stop_reason":
    /// "stop"|"length"}` (stop reason optional, default `stop`). Cut to `max_gen_len` words
    /// (then `length`).
    Generate {
        /// The full text.
        generation: String,
        /// The stop reason when not cut by `max_gen_len`.
        stop_reason: StopReason,
    },
    /// An error before any output. JSON: `{"error": "ThrottlingException", "message"?: "..."}`.
    Error(BedrockError),
    /// A stream that fails after `after` chunks (or at its end if shorter). JSON:
    /// `{"stream_error_after": N, "stream_error": "throttlingException", "message"?: "...",
    /// "generation"?: "..."}`; InvokeModel gets the error as an HTTP error instead.
    StreamError {
        /// Chunks sent before the exception frame.
        after: usize,
        /// The error in the exception frame.
        error: BedrockError,
        /// The text streamed before the failure; `None` means the echo reply.
        generation: Option<String>,
    },
    /// A 200 response whose model body is not valid JSON. JSON: `{"malformed": true}`.
    Malformed,
    /// No answer at all: the request is accepted and nothing is sent until the client
    /// gives up or the server shuts down. JSON: `{"stall": true}`.
    Stall,
}

/// A script that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read scripted file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The JSON is invalid or does not describe a script.
    #[error("invalid scripted file: {0}")]
    Json(#[from] serde_json::Error),
}

impl Script {
    /// A script with these rules and the echo fallback.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    /// Replaces the fallback.
    pub fn with_fallback(mut self, outcome: Outcome) -> Self {
        self.fallback = Some(outcome);
        self
    }

    /// Parses a script from JSON.
    pub fn from_json(json: &str) -> Result<Self, ScriptError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Reads a script from a JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ScriptError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| ScriptError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&json)
    }
}

impl Rule {
    /// A rule that applies to every request, always, with no delay.
    pub fn new(outcome: Outcome) -> Self {
        Self {
            model_id: None,
            prompt_contains: None,
            times: None,
            delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            outcome,
        }
    }

    /// Only for this model id.
    pub fn model_id(mut self, id: impl Into<String>) -> Self {
        self.model_id = Some(id.into());
        self
    }

    /// Only when the prompt contains `text`.
    pub fn prompt_contains(mut self, text: impl Into<String>) -> Self {
        self.prompt_contains = Some(text.into());
        self
    }

    /// Only for the first `n` matches.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Wait before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Wait before each streamed chunk.
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    fn matches(&self, served_id: &str, requested_id: &str, prompt: &str) -> bool {
        self.model_id
            .as_deref()
            .is_none_or(|id| id == served_id || id == requested_id)
            && self
                .prompt_contains
                .as_deref()
                .is_none_or(|text| prompt.contains(text))
    }
}

impl Outcome {
    /// A generation that ends with `stop`.
    pub fn text(generation: impl Into<String>) -> Self {
        Self::Generate {
            generation: generation.into(),
            stop_reason: StopReason::Stop,
        }
    }

    /// An error before any output, with Bedrock's usual message.
    pub fn error(kind: ErrorKind) -> Self {
        Self::Error(BedrockError::of(kind))
    }

    /// A stream of the echo reply that fails with `kind` after `after` chunks.
    pub fn stream_error(after: usize, kind: ErrorKind) -> Self {
        Self::StreamError {
            after,
            error: BedrockError::of(kind),
            generation: None,
        }
    }
}

/// The JSON form of a rule: matchers and limits next to the outcome's keys.
#[derive(Deserialize)]
struct RawRule {
    model_id: Option<String>,
    prompt_contains: Option<String>,
    times: Option<u32>,
    delay_ms: Option<u64>,
    chunk_delay_ms: Option<u64>,
    #[serde(flatten)]
    outcome: RawOutcome,
}

/// The JSON form of an outcome; `unknown` catches misspelt keys.
#[derive(Deserialize)]
struct RawOutcome {
    generation: Option<String>,
    stop_reason: Option<StopReason>,
    error: Option<ErrorKind>,
    message: Option<String>,
    stream_error_after: Option<usize>,
    stream_error: Option<ErrorKind>,
    malformed: Option<bool>,
    stall: Option<bool>,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde_json::Value>,
}

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, String> {
        Ok(Self {
            model_id: raw.model_id,
            prompt_contains: raw.prompt_contains,
            times: raw.times,
            delay: Duration::from_millis(raw.delay_ms.unwrap_or(0)),
            chunk_delay: Duration::from_millis(raw.chunk_delay_ms.unwrap_or(0)),
            outcome: Outcome::try_from(raw.outcome)?,
        })
    }
}

impl TryFrom<RawOutcome> for Outcome {
    type Error = String;

    fn try_from(raw: RawOutcome) -> Result<Self, String> {
        if let Some(key) = raw.unknown.keys().next() {
            return Err(format!("unknown key [{key}] in a scripted rule"));
        }
        let streamed = raw.stream_error.is_some() || raw.stream_error_after.is_some();
        if raw.stall == Some(true) {
            let alone = raw.generation.is_none()
                && raw.stop_reason.is_none()
                && raw.error.is_none()
                && raw.message.is_none()
                && !streamed
                && raw.malformed.is_none();
            return if alone {
                Ok(Self::Stall)
            } else {
                Err("a scripted rule has conflicting outcomes: stall takes no other keys".into())
            };
        }
        let error_with = |kind: ErrorKind| match raw.message.clone() {
            Some(message) => BedrockError::new(kind, message),
            None => BedrockError::of(kind),
        };
        match (raw.malformed == Some(true), raw.error, streamed) {
            (true, None, false) if raw.generation.is_none() => Ok(Self::Malformed),
            (false, Some(kind), false) if raw.generation.is_none() => {
                Ok(Self::Error(error_with(kind)))
            }
            (false, None, true) if raw.stop_reason.is_none() => Ok(Self::StreamError {
                after: raw.stream_error_after.unwrap_or(0),
                error: error_with(
                    raw.stream_error
                        .unwrap_or(ErrorKind::ModelStreamErrorException),
                ),
                generation: raw.generation,
            }),
            (false, None, false) if raw.message.is_none() => match raw.generation {
                Some(generation) => Ok(Self::Generate {
                    generation,
                    stop_reason: raw.stop_reason.unwrap_or(StopReason::Stop),
                }),
                None => Err("a scripted rule needs an outcome: generation, error, \
                     stream_error/stream_error_after, malformed or stall"
                    .into()),
            },
            _ => Err(
                "a scripted rule has conflicting outcomes: use one of generation, error, \
                 stream_error/stream_error_after or malformed"
                    .into(),
            ),
        }
    }
}

/// A loaded script with its per-rule use counts.
pub(crate) struct ScriptedEngine {
    script: Script,
    uses: Mutex<Vec<u32>>,
    context_window: u32,
}

/// A canned reply being played as a generation.
pub(crate) struct Reply {
    pieces: Vec<String>,
    stop_reason: StopReason,
    chunk_delay: Duration,
    /// Fail with this error after this many pieces (or at the end, if fewer).
    failure: Option<(usize, BedrockError)>,
}

/// Whitespace-separated words, at least 1: the scripted token count of a prompt.
fn count_words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count())
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Splits text into word pieces that concatenate back to it: "a b" → ["a", " b"].
fn split_words(text: &str) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            pieces.push(std::mem::take(&mut current));
            in_word = false;
        }
        in_word |= !c.is_whitespace();
        current.push(c);
    }
    match pieces.last_mut() {
        Some(last) if !in_word => last.push_str(&current),
        _ if !current.is_empty() => pieces.push(current),
        _ => {}
    }
    pieces
}

fn echo(prompt: &str) -> String {
    let parsed = chat::parse(prompt);
    let text = parsed
        .as_ref()
        .and_then(chat::Chat::last_user_message)
        .unwrap_or(prompt);
    format!("Echo: {text}")
}

impl Reply {
    fn new(
        text: &str,
        stop_reason: StopReason,
        max_gen_len: u32,
        chunk_delay: Duration,
        failure: Option<(usize, BedrockError)>,
    ) -> Self {
        let mut pieces = split_words(text);
        let limit = usize::try_from(max_gen_len).unwrap_or(usize::MAX);
        let stop_reason = if pieces.len() > limit {
            pieces.truncate(limit);
            StopReason::Length
        } else {
            stop_reason
        };
        Self {
            pieces,
            stop_reason,
            chunk_delay,
            failure,
        }
    }

    /// Sends the pieces, then `Done` (or `Failed`); stops early if the receiver is gone.
    pub(crate) async fn play(self, tx: &mpsc::Sender<GenEvent>) {
        let mut generated_tokens = 0;
        for (sent, text) in self.pieces.into_iter().enumerate() {
            if let Some((_, error)) = self.failure.as_ref().filter(|(after, _)| sent >= *after) {
                let _ = tx.send(GenEvent::Failed(error.clone())).await;
                return;
            }
            if !self.chunk_delay.is_zero() {
                tokio::time::sleep(self.chunk_delay).await;
            }
            generated_tokens += 1;
            let piece = GenEvent::Piece {
                text,
                generated_tokens,
            };
            if tx.send(piece).await.is_err() {
                return;
            }
        }
        let end = match self.failure {
            Some((_, error)) => GenEvent::Failed(error),
            None => GenEvent::Done {
                stop_reason: self.stop_reason,
                generated_tokens,
            },
        };
        let _ = tx.send(end).await;
    }
}

impl ScriptedEngine {
    pub(crate) fn new(script: Script, context_window: Option<u32>) -> Self {
        let uses = Mutex::new(vec![0; script.rules.len()]);
        Self {
            script,
            uses,
            context_window: context_window.unwrap_or(DEFAULT_SCRIPTED_CONTEXT_WINDOW),
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "scripted test double ({} rules, context window {} {})",
            self.script.rules.len(),
            self.context_window,
            match self.script.tokens {
                PromptTokens::Words => "words",
                PromptTokens::Llama3 => "Llama 3 tokens",
            }
        )
    }

    /// Picks the first matching rule with uses left (counting the use), else the fallback.
    fn select(&self, served_id: &str, requested_id: &str, prompt: &str) -> Option<&Rule> {
        let mut uses = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        self.script
            .rules
            .iter()
            .zip(uses.iter_mut())
            .find(|(rule, used)| {
                rule.matches(served_id, requested_id, prompt)
                    && rule.times.is_none_or(|times| **used < times)
            })
            .map(|(rule, used)| {
                *used += 1;
                rule
            })
    }

    pub(crate) fn plan(
        &self,
        served_id: &str,
        requested_id: &str,
        request: &LlamaRequest,
    ) -> Result<Plan, BedrockError> {
        let prompt_tokens = self.script.tokens.count(&request.prompt);
        if u64::from(prompt_tokens) + u64::from(request.max_gen_len)
            > u64::from(self.context_window)
        {
            return Err(context_overflow(self.context_window));
        }
        let rule = self.select(served_id, requested_id, &request.prompt);
        let (delay, chunk_delay) = rule.map_or((Duration::ZERO, Duration::ZERO), |r| {
            (r.delay, r.chunk_delay)
        });
        let outcome = rule.map(|r| &r.outcome).or(self.script.fallback.as_ref());
        let generate = |text: &str, stop_reason, failure| {
            Action::Generate(Generation {
                prompt_tokens,
                work: Work::Scripted(Reply::new(
                    text,
                    stop_reason,
                    request.max_gen_len,
                    chunk_delay,
                    failure,
                )),
            })
        };
        let action = match outcome {
            None => generate(&echo(&request.prompt), StopReason::Stop, None),
            Some(Outcome::Generate {
                generation,
                stop_reason,
            }) => generate(generation, *stop_reason, None),
            Some(Outcome::Error(error)) => Action::Fail(error.clone()),
            Some(Outcome::StreamError {
                after,
                error,
                generation,
            }) => {
                let text = generation.clone().unwrap_or_else(|| echo(&request.prompt));
                generate(&text, StopReason::Stop, Some((*after, error.clone())))
            }
            Some(Outcome::Malformed) => Action::Malformed,
            Some(Outcome::Stall) => Action::Stall,
        };
        Ok(Plan {
            prompt_tokens,
            delay,
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_and_rejoin() {
        for text in [
            "Hello big world",
            "  lead and trail  ",
            "one",
            "",
            "   ",
            "a\n\nb\tc",
        ] {
            let pieces = split_words(text);
            assert_eq!(pieces.concat(), text);
            assert_eq!(
                pieces.len(),
                text.split_whitespace()
                    .count()
                    .max(usize::from(!text.is_empty()))
            );
        }
        assert_eq!(split_words("Hello big world"), ["Hello", " big", " world"]);
    }

    #[test]
    fn word_counts() {
        assert_eq!(count_words(""), 1);
        assert_eq!(count_words("a b  c"), 3);
        let script = Script::from_json(r#"{"tokens": "llama3"}"#).unwrap();
        assert_eq!(
            script
                .tokens
                .count("The quick brown fox jumps over the lazy dog."),
            10
        );
        assert_eq!(Script::default().tokens.count("The quick brown fox."), 4);
    }

    #[test]
    fn json_rules_parse() {
        let script = Script::from_json(
            r#"{"rules": [
                {"prompt_contains": "busy", "times": 2, "error": "ThrottlingException"},
                {"model_id": "m", "generation": "a b", "stop_reason": "length", "delay_ms": 5},
                {"stream_error_after": 1, "stream_error": "modelStreamErrorException", "message": "boom"},
                {"malformed": true},
                {"prompt_contains": "hang", "times": 1, "stall": true}
            ], "fallback": {"generation": "fixed"}}"#,
        )
        .unwrap();
        assert_eq!(script.rules.len(), 5);
        assert_eq!(script.rules[0].times, Some(2));
        assert_eq!(
            script.rules[0].outcome,
            Outcome::error(ErrorKind::ThrottlingException)
        );
        assert_eq!(script.rules[1].delay, Duration::from_millis(5));
        assert_eq!(
            script.rules[2].outcome,
            Outcome::StreamError {
                after: 1,
                error: BedrockError::new(ErrorKind::ModelStreamErrorException, "boom"),
                generation: None
            }
        );
        assert_eq!(script.rules[3].outcome, Outcome::Malformed);
        assert_eq!(script.rules[4].outcome, Outcome::Stall);
        assert_eq!(script.fallback, Some(Outcome::text("fixed")));
    }

    #[test]
    fn bad_rules_are_rejected() {
        for json in [
            r#"{"rules": [{}]}"#,
            r#"{"rules": [{"generation": "x", "error": "ThrottlingException"}]}"#,
            r#"{"rules": [{"generation": "x", "typo": 1}]}"#,
            r#"{"rules": [{"error": "NoSuchException"}]}"#,
            r#"{"rules": [{"malformed": true, "generation": "x"}]}"#,
            r#"{"rules": [{"generation": "x", "message": "m"}]}"#,
            r#"{"rules": [{"stall": true, "generation": "x"}]}"#,
            r#"{"rules": [{"stall": true, "error": "ThrottlingException"}]}"#,
            r#"{"rules": [], "extra": 1}"#,
        ] {
            assert!(Script::from_json(json).is_err(), "{json}");
        }
    }

    #[test]
    fn times_limits_a_rule_then_falls_through() {
        let engine = ScriptedEngine::new(
            Script::new(vec![
                Rule::new(Outcome::error(ErrorKind::ThrottlingException)).times(2),
                Rule::new(Outcome::text("ok")).model_id("other"),
            ]),
            None,
        );
        let request = crate::wire::parse_request(br#"{"prompt":"hi"}"#).unwrap();
        let kinds: Vec<bool> = (0..3)
            .map(|_| {
                matches!(
                    engine.plan("m", "m", &request).unwrap().action,
                    Action::Fail(_)
                )
            })
            .collect();
        assert_eq!(kinds, [true, true, false]);
    }

    #[test]
    fn echo_uses_the_last_user_message() {
        let prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nping<|eot_id|>\
            <|start_header_id|>assistant<|end_header_id|>\n\n";
        assert_eq!(echo(prompt), "Echo: ping");
        assert_eq!(echo("raw text"), "Echo: raw text");
    }
}
