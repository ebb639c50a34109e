//! What answers requests: the llama.cpp model or the scripted test double, and the events a
//! generation produces.

#[cfg(feature = "llama")]
pub mod llama;
pub mod scripted;

#[cfg(feature = "llama")]
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::capacity::Admission;
use crate::errors::BedrockError;
#[cfg(feature = "llama")]
use crate::errors::ErrorKind;
use crate::wire::{LlamaRequest, StopReason};

#[cfg(feature = "llama")]
pub use llama::{LlamaLoadError, LlamaOptions};
pub use scripted::{Outcome, Rule, Script, ScriptError};

/// The model behind the server.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A GGUF model run on the CPU through llama.cpp.
    #[cfg(feature = "llama")]
    Llama(LlamaOptions),
    /// The scripted test double: canned answers and errors, no model.
    Scripted(Script),
}

impl Default for Backend {
    /// The scripted test double with no rules: every request gets the echo reply.
    fn default() -> Self {
        Self::Scripted(Script::default())
    }
}

/// A loaded backend.
pub(crate) enum Engine {
    #[cfg(feature = "llama")]
    Llama(Arc<llama::LlamaEngine>),
    Scripted(scripted::ScriptedEngine),
}

/// One event of a running generation, in order: pieces, then `Done` or `Failed`.
#[derive(Debug)]
pub(crate) enum GenEvent {
    /// New text; `generated_tokens` counts every token generated so far.
    Piece { text: String, generated_tokens: u32 },
    /// Generation ended normally.
    Done {
        stop_reason: StopReason,
        generated_tokens: u32,
    },
    /// Generation failed.
    Failed(BedrockError),
}

/// What the backend decided for one request, before any capacity is taken.
pub(crate) struct Plan {
    /// The prompt's token count (what the context check and the quota count).
    pub prompt_tokens: u32,
    /// Wait this long (holding a capacity slot) before answering.
    pub delay: Duration,
    pub action: Action,
}

pub(crate) enum Action {
    /// Answer with this error.
    Fail(BedrockError),
    /// Answer with a body that is not valid JSON.
    Malformed,
    /// Never answer.
    Stall,
    Generate(Generation),
}

/// A generation ready to start.
pub(crate) struct Generation {
    pub prompt_tokens: u32,
    work: Work,
}

enum Work {
    #[cfg(feature = "llama")]
    Llama {
        engine: Arc<llama::LlamaEngine>,
        tokens: Vec<llama_cpp_2::token::LlamaToken>,
        request: LlamaRequest,
    },
    Scripted(scripted::Reply),
}

/// Events buffered between the generator and the HTTP response.
const EVENT_BUFFER: usize = 64;

impl Generation {
    /// Starts generating in the background; the slot in `admission` is held until it ends.
    /// Dropping the receiver cancels the generation.
    pub(crate) fn start(self, admission: Admission) -> mpsc::Receiver<GenEvent> {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        match self.work {
            #[cfg(feature = "llama")]
            Work::Llama {
                engine,
                tokens,
                request,
            } => {
                tokio::task::spawn_blocking(move || {
                    let _admission = admission;
                    if let Err(error) = engine.generate(&tokens, &request, &tx) {
                        let _ = tx.blocking_send(GenEvent::Failed(error));
                    }
                });
            }
            Work::Scripted(reply) => {
                tokio::spawn(async move {
                    let _admission = admission;
                    reply.play(&tx).await;
                });
            }
        }
        rx
    }
}

impl Engine {
    /// Loads the backend (for llama.cpp: reads the GGUF on a blocking thread).
    pub(crate) async fn load(
        backend: Backend,
        context_window: Option<u32>,
    ) -> Result<Self, crate::server::StartError> {
        match backend {
            #[cfg(feature = "llama")]
            Backend::Llama(options) => {
                let engine = tokio::task::spawn_blocking(move || {
                    llama::LlamaEngine::load(&options, context_window)
                })
                .await
                .map_err(|e| llama::LlamaLoadError::Panicked(e.to_string()))??;
                Ok(Self::Llama(Arc::new(engine)))
            }
            Backend::Scripted(script) => Ok(Self::Scripted(scripted::ScriptedEngine::new(
                script,
                context_window,
            ))),
        }
    }

    /// How many generations may run at once unless configured otherwise.
    pub(crate) fn default_concurrency(&self) -> usize {
        match self {
            #[cfg(feature = "llama")]
            Self::Llama(_) => 1,
            Self::Scripted(_) => 64,
        }
    }

    /// A one-line description for the startup log.
    pub(crate) fn describe(&self) -> String {
        match self {
            #[cfg(feature = "llama")]
            Self::Llama(engine) => engine.describe(),
            Self::Scripted(engine) => engine.describe(),
        }
    }

    /// Validates the request against the model (token counts, context window) and decides what
    /// to answer. `served_id` is the configured id the request resolved to; `requested_id` is
    /// the id as sent.
    pub(crate) async fn plan(
        &self,
        served_id: &str,
        requested_id: &str,
        request: LlamaRequest,
    ) -> Result<Plan, BedrockError> {
        match self {
            #[cfg(feature = "llama")]
            Self::Llama(engine) => {
                let worker = Arc::clone(engine);
                let (tokens, request) = tokio::task::spawn_blocking(move || {
                    worker.prepare(&request).map(|tokens| (tokens, request))
                })
                .await
                .map_err(|_| BedrockError::of(ErrorKind::InternalServerException))??;
                let prompt_tokens = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
                Ok(Plan {
                    prompt_tokens,
                    delay: Duration::ZERO,
                    action: Action::Generate(Generation {
                        prompt_tokens,
                        work: Work::Llama {
                            engine: Arc::clone(engine),
                            tokens,
                            request,
                        },
                    }),
                })
            }
            Self::Scripted(engine) => engine.plan(served_id, requested_id, &request),
        }
    }
}
