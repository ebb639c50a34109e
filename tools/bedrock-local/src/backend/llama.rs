//! The llama.cpp backend: a GGUF model on the CPU through `llama-cpp-2`.
//!
//! The model is loaded once; every generation gets its own context on a blocking thread.
//! Llama 3 prompts are fed as they are to Llama 3 models and re-rendered with the model's own
//! chat template for others (e.g. SmolLM2's ChatML).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::GenEvent;
use crate::chat::{self, Chat};
use crate::errors::{BedrockError, ErrorKind};
use crate::wire::{LlamaRequest, StopReason, context_overflow};

/// Where and how to run a GGUF model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaOptions {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// CPU threads per generation.
    pub threads: u16,
    /// Seed of every request's token sampling (the same prompt and parameters then give the
    /// same answer); None: a random seed per request.
    pub sample_seed: Option<u32>,
}

impl LlamaOptions {
    /// Options for the model at `model_path`, with 2 threads and random sampling.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            threads: 2,
            sample_seed: None,
        }
    }
}

/// A GGUF model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LlamaLoadError {
    /// The file does not exist.
    #[error("model file {0} not found")]
    NotFound(PathBuf),
    /// llama.cpp could not start.
    #[error("llama.cpp backend: {0}")]
    Backend(#[from] llama_cpp_2::LlamaCppError),
    /// llama.cpp could not read the model.
    #[error("cannot load {path}: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        source: llama_cpp_2::LlamaModelLoadError,
    },
    /// The loader thread panicked.
    #[error("model loader panicked: {0}")]
    Panicked(String),
}

/// The process-wide llama.cpp backend, shared by every loaded model and freed with the last.
fn shared_backend() -> Result<Arc<LlamaBackend>, LlamaLoadError> {
    static BACKEND: Mutex<Weak<LlamaBackend>> = Mutex::new(Weak::new());
    let mut slot = BACKEND.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(backend) = slot.upgrade() {
        return Ok(backend);
    }
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let backend = Arc::new(LlamaBackend::init()?);
    *slot = Arc::downgrade(&backend);
    Ok(backend)
}

/// A loaded model.
pub(crate) struct LlamaEngine {
    // Declared before `backend`, so the model is freed first.
    model: LlamaModel,
    /// The model's chat template when Llama 3 prompts must be re-rendered; `None` for Llama 3
    /// models (prompts are fed as they are) and for models without a template.
    template: Option<LlamaChatTemplate>,
    context_window: u32,
    train_context: u32,
    threads: i32,
    sample_seed: Option<u32>,
    /// llama.cpp may mutate the model while creating a context: one at a time.
    context_lock: Mutex<()>,
    name: String,
    backend: Arc<LlamaBackend>,
}

/// Turns partial UTF-8 from token pieces into whole characters.
#[derive(Default)]
struct Utf8Buffer {
    pending: Vec<u8>,
}

impl Utf8Buffer {
    /// Adds bytes; returns the text that is complete so far (invalid bytes become U+FFFD).
    fn push(&mut self, bytes: &[u8]) -> Option<String> {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    break;
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match error.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        Some(len) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + len);
                        }
                    }
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Whatever is left, lossily.
    fn finish(self) -> Option<String> {
        (!self.pending.is_empty()).then(|| String::from_utf8_lossy(&self.pending).into_owned())
    }
}

fn model_error(what: &str, error: impl std::fmt::Display) -> BedrockError {
    tracing::error!("llama.cpp {what} failed: {error}");
    BedrockError::new(
        ErrorKind::ModelErrorException,
        format!("The model failed while processing the request ({what})."),
    )
}

/// Rounds `n` up to a multiple of 256.
fn round_up(n: u32) -> u32 {
    n.div_ceil(256).saturating_mul(256)
}

impl LlamaEngine {
    /// Loads the GGUF. `context_window` caps the model's training context.
    pub(crate) fn load(
        options: &LlamaOptions,
        context_window: Option<u32>,
    ) -> Result<Self, LlamaLoadError> {
        let path = &options.model_path;
        if !path.is_file() {
            return Err(LlamaLoadError::NotFound(path.clone()));
        }
        let backend = shared_backend()?;
        let model = LlamaModel::load_from_file(&backend, path, &LlamaModelParams::default())
            .map_err(|source| LlamaLoadError::Model {
                path: path.clone(),
                source,
            })?;
        let train_context = model.n_ctx_train().max(1);
        let context_window = context_window.map_or(train_context, |w| w.clamp(1, train_context));
        let single_token =
            |text: &str| model.vocab().tokenize(text.as_bytes(), false, true).len() == 1;
        let native = single_token("<|start_header_id|>") && single_token("<|eot_id|>");
        let template = if native {
            None
        } else {
            let template = model.chat_template(None).ok();
            if template.is_none() {
                tracing::warn!(
                    "the model is not a Llama 3 model and has no chat template: prompts are fed as they are"
                );
            }
            template
        };
        let name = model
            .meta_val_str("general.name")
            .unwrap_or_else(|_| path.display().to_string());
        Ok(Self {
            model,
            template,
            context_window,
            train_context,
            threads: i32::from(options.threads.max(1)),
            sample_seed: options.sample_seed,
            context_lock: Mutex::new(()),
            name,
            backend,
        })
    }

    pub(crate) fn describe(&self) -> String {
        let format = if self.template.is_some() {
            "Llama 3 prompts re-rendered with the model's chat template"
        } else {
            "prompts fed as they are"
        };
        format!(
            "llama.cpp model {:?} ({} parameters, context window {} tokens, {} threads, {format})",
            self.name,
            self.model.n_params(),
            self.context_window,
            self.threads
        )
    }

    /// Renders a parsed Llama 3 chat with the model's template; `None` if it cannot.
    fn render(&self, template: &LlamaChatTemplate, chat: &Chat) -> Option<String> {
        let message = |role: &str, content: &str| {
            LlamaChatMessage::new(role.to_owned(), content.to_owned()).ok()
        };
        let mut messages = chat
            .turns
            .iter()
            .map(|t| message(&t.role, &t.content))
            .collect::<Option<Vec<_>>>()?;
        let mut prefill = "";
        let add_assistant = match &chat.open {
            Some(open) if open.role == "assistant" => {
                prefill = &open.content;
                true
            }
            Some(open) => {
                messages.push(message(&open.role, open.content.trim())?);
                true
            }
            None => chat.turns.last().is_none_or(|t| t.role != "assistant"),
        };
        let mut text = self
            .model
            .apply_chat_template(template, &messages, add_assistant)
            .map_err(|e| tracing::warn!("chat template failed, using the prompt as it is: {e}"))
            .ok()?;
        text.push_str(prefill);
        Some(text)
    }

    /// Tokenizes the prompt (re-rendered if needed) and checks it fits the context window.
    pub(crate) fn prepare(&self, request: &LlamaRequest) -> Result<Vec<LlamaToken>, BedrockError> {
        let rendered = match (&self.template, chat::parse(&request.prompt)) {
            (Some(template), Some(chat)) => self.render(template, &chat),
            _ => None,
        };
        let text = rendered.as_deref().unwrap_or(&request.prompt);
        let vocab = self.model.vocab();
        let mut tokens = vocab.tokenize(text.as_bytes(), true, true);
        // A prompt that starts with its own BOS gets a second one from `add_special`.
        if tokens.len() >= 2 && tokens[0] == vocab.bos() && tokens[1] == vocab.bos() {
            tokens.remove(0);
        }
        if tokens.is_empty() {
            return Err(BedrockError::validation(
                "Malformed input request: #/prompt: the prompt has no tokens, please reformat your input and try again.",
            ));
        }
        let needed =
            u64::try_from(tokens.len()).unwrap_or(u64::MAX) + u64::from(request.max_gen_len);
        if needed > u64::from(self.context_window) {
            return Err(context_overflow(self.context_window));
        }
        Ok(tokens)
    }

    /// Generates from prepared `tokens`, sending events to `tx`. Returns early without error
    /// when the receiver is gone (client disconnected).
    pub(crate) fn generate(
        &self,
        tokens: &[LlamaToken],
        request: &LlamaRequest,
        tx: &mpsc::Sender<GenEvent>,
    ) -> Result<(), BedrockError> {
        let prompt_len = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
        let needed = prompt_len.saturating_add(request.max_gen_len);
        let n_ctx = round_up(needed).min(self.train_context).max(needed);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let mut ctx = {
            let _guard = self
                .context_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.model
                .new_context(&self.backend, params)
                .map_err(|e| model_error("context creation", e))?
        };
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        batch
            .add_sequence(tokens, 0, false)
            .map_err(|e| model_error("batch", e))?;
        ctx.decode(&mut batch)
            .map_err(|e| model_error("prompt decoding", e))?;

        let mut sampler = if request.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::top_p(request.top_p, 1),
                LlamaSampler::temp(request.temperature),
                LlamaSampler::dist(self.sample_seed.unwrap_or_else(rand::random)),
            ])
        };
        let vocab = self.model.vocab();
        let mut text = Utf8Buffer::default();
        let mut generated_tokens = 0u32;
        let mut position = i32::try_from(tokens.len()).unwrap_or(i32::MAX);
        let stop_reason = loop {
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break StopReason::Stop;
            }
            generated_tokens += 1;
            let piece = vocab.token_to_piece(token, false, None);
            if let Some(text) = text.push(&piece) {
                let event = GenEvent::Piece {
                    text,
                    generated_tokens,
                };
                if tx.blocking_send(event).is_err() {
                    return Ok(());
                }
            }
            if generated_tokens >= request.max_gen_len {
                break StopReason::Length;
            }
            batch.clear();
            batch
                .add(token, position, &[0], true)
                .map_err(|e| model_error("batch", e))?;
            position += 1;
            ctx.decode(&mut batch)
                .map_err(|e| model_error("decoding", e))?;
        };
        if let Some(text) = text.finish() {
            let event = GenEvent::Piece {
                text,
                generated_tokens,
            };
            if tx.blocking_send(event).is_err() {
                return Ok(());
            }
        }
        let _ = tx.blocking_send(GenEvent::Done {
            stop_reason,
            generated_tokens,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_pieces_are_joined() {
        let mut buffer = Utf8Buffer::default();
        let snake = "🐍".as_bytes();
        assert_eq!(buffer.push(&snake[..2]), None);
        assert_eq!(buffer.push(&snake[2..]).as_deref(), Some("🐍"));
        assert_eq!(buffer.push(b"a\xffb").as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(buffer.push(&snake[..1]), None);
        assert_eq!(buffer.finish().as_deref(), Some("\u{FFFD}"));
    }

    #[test]
    fn contexts_round_up() {
        assert_eq!(round_up(1), 256);
        assert_eq!(round_up(256), 256);
        assert_eq!(round_up(257), 512);
    }
}
