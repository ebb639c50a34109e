//! Server configuration, from Rust or from the command line and `BEDROCK_LOCAL_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::backend::{Backend, Script, ScriptError};
use crate::faults::{Faults, FaultsError};

/// The model ids served unless configured otherwise.
pub const DEFAULT_MODEL_IDS: [&str; 3] = [
    "meta.llama3-2-3b-instruct-v1:0",
    "us.meta.llama3-2-3b-instruct-v1:0",
    "eu.meta.llama3-2-3b-instruct-v1:0",
];

/// The GGUF the command line serves when neither `--model` nor `--scripted` is given,
/// relative to the working directory (the workspace root, where `scripts/setup.sh` puts it).
pub const DEFAULT_MODEL_PATH: &str = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The model behind the server.
    pub backend: Backend,
    /// Model ids served (ARN forms of them are accepted too).
    pub model_ids: Vec<String>,
    /// Cap on prompt tokens + `max_gen_len`; default: the model's training context
    /// (scripted: 8192 words).
    pub context_window: Option<u32>,
    /// Generations running at once; default 1 for llama.cpp, 64 for the scripted double.
    pub max_concurrency: Option<usize>,
    /// Requests waiting for a slot; beyond it, `ThrottlingException`. 0 is Bedrock's
    /// behaviour: no waiting, throttled as soon as every slot is busy.
    pub max_queue: usize,
    /// Tokens (prompt + `max_gen_len` reserved, settled to prompt + generated) per rolling
    /// minute; beyond it, `ThrottlingException`. `None`: unlimited.
    pub tokens_per_minute: Option<u64>,
    /// Calls per rolling minute; beyond it, `ThrottlingException`. `None`: unlimited.
    pub requests_per_minute: Option<u64>,
    /// Injected faults.
    pub faults: Faults,
}

impl Default for Config {
    /// `127.0.0.1:0`, the scripted double with no rules, the default model ids, no faults.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            backend: Backend::default(),
            model_ids: DEFAULT_MODEL_IDS.iter().map(|s| (*s).to_owned()).collect(),
            context_window: None,
            max_concurrency: None,
            max_queue: 16,
            tokens_per_minute: None,
            requests_per_minute: None,
            faults: Faults::default(),
        }
    }
}

/// A configuration that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad fault settings.
    #[error(transparent)]
    Faults(#[from] FaultsError),
    /// The scripted file is unreadable or invalid.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// No model ids to serve.
    #[error("at least one model id must be served")]
    NoModelIds,
    /// `max_concurrency` of 0.
    #[error("max concurrency must be at least 1")]
    ZeroConcurrency,
    /// A context window of 0.
    #[error("context window must be at least 1")]
    ZeroContextWindow,
    /// A per-minute quota of 0.
    #[error("{0} must be at least 1 (leave it unset for no limit)")]
    ZeroQuota(&'static str),
    /// `--model` on a build without llama.cpp.
    #[error("this build has no llama.cpp backend (feature `llama`): use --scripted")]
    NoLlama,
}

impl Config {
    /// Checks the settings that can be checked without loading the model.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.faults.validate()?;
        if self.model_ids.is_empty() {
            return Err(ConfigError::NoModelIds);
        }
        if self.max_concurrency == Some(0) {
            return Err(ConfigError::ZeroConcurrency);
        }
        if self.context_window == Some(0) {
            return Err(ConfigError::ZeroContextWindow);
        }
        if self.tokens_per_minute == Some(0) {
            return Err(ConfigError::ZeroQuota("tokens per minute"));
        }
        if self.requests_per_minute == Some(0) {
            return Err(ConfigError::ZeroQuota("requests per minute"));
        }
        Ok(())
    }
}

/// Command line of `bedrock-local`; every option can also come from its `BEDROCK_LOCAL_*`
/// variable.
#[derive(Debug, Parser)]
#[command(name = "bedrock-local", version, about)]
pub struct Cli {
    /// Address to listen on (port 0: a free port; the URL is printed as stdout's first line).
    #[arg(long, env = "BEDROCK_LOCAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// GGUF model to serve [default: .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf].
    #[arg(long, env = "BEDROCK_LOCAL_MODEL", conflicts_with = "scripted")]
    pub model: Option<PathBuf>,
    /// Serve the scripted test double from this JSON file instead of a model.
    #[arg(long, env = "BEDROCK_LOCAL_SCRIPTED")]
    pub scripted: Option<PathBuf>,
    /// Model id to serve (repeatable; the variable takes a comma-separated list).
    #[arg(long = "model-id", env = "BEDROCK_LOCAL_MODEL_ID", value_delimiter = ',',
          default_values_t = DEFAULT_MODEL_IDS.map(String::from))]
    pub model_ids: Vec<String>,
    /// Cap on prompt tokens + max_gen_len [default: the model's training context].
    #[arg(long, env = "BEDROCK_LOCAL_CONTEXT_WINDOW")]
    pub context_window: Option<u32>,
    /// CPU threads per generation.
    #[arg(long, env = "BEDROCK_LOCAL_THREADS", default_value_t = 2)]
    pub threads: u16,
    /// Seed of the model's token sampling, the same for every request, so that the same
    /// prompt gets the same answer (evaluation runs) [default: random per request].
    #[arg(long, env = "BEDROCK_LOCAL_SAMPLE_SEED")]
    pub sample_seed: Option<u32>,
    /// Generations running at once [default: 1 for a model, 64 for --scripted].
    #[arg(long, env = "BEDROCK_LOCAL_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// Requests waiting for a slot before ThrottlingException (0: none wait, as on Bedrock).
    #[arg(long, env = "BEDROCK_LOCAL_MAX_QUEUE", default_value_t = 16)]
    pub max_queue: usize,
    /// Tokens per rolling minute (a call reserves prompt + max_gen_len) [default: no limit].
    #[arg(long, env = "BEDROCK_LOCAL_TOKENS_PER_MINUTE")]
    pub tokens_per_minute: Option<u64>,
    /// Calls per rolling minute [default: no limit].
    #[arg(long, env = "BEDROCK_LOCAL_REQUESTS_PER_MINUTE")]
    pub requests_per_minute: Option<u64>,
    /// Fraction of requests answered ThrottlingException.
    #[arg(long, env = "BEDROCK_LOCAL_THROTTLE_RATE", default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Fraction of requests answered ServiceUnavailableException.
    #[arg(long, env = "BEDROCK_LOCAL_UNAVAILABLE_RATE", default_value_t = 0.0)]
    pub unavailable_rate: f64,
    /// Fraction of requests answered ModelTimeoutException.
    #[arg(long, env = "BEDROCK_LOCAL_TIMEOUT_RATE", default_value_t = 0.0)]
    pub timeout_rate: f64,
    /// Fraction of requests accepted and never answered (the client must time out).
    #[arg(long, env = "BEDROCK_LOCAL_STALL_RATE", default_value_t = 0.0)]
    pub stall_rate: f64,
    /// Fraction of requests answered with a malformed model body.
    #[arg(long, env = "BEDROCK_LOCAL_MALFORMED_RATE", default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Fraction of streams failing with modelStreamErrorException after the first chunk.
    #[arg(long, env = "BEDROCK_LOCAL_STREAM_FAIL_RATE", default_value_t = 0.0)]
    pub stream_fail_rate: f64,
    /// Fraction of requests with a guardrail identifier that the guardrail blocks.
    #[arg(
        long,
        env = "BEDROCK_LOCAL_GUARDRAIL_INTERVENE_RATE",
        default_value_t = 0.0
    )]
    pub guardrail_intervene_rate: f64,
    /// Milliseconds added before every model request is answered.
    #[arg(long, env = "BEDROCK_LOCAL_ADDED_LATENCY_MS", default_value_t = 0)]
    pub added_latency_ms: u64,
    /// Streams fail with modelStreamErrorException after this many chunks.
    #[arg(long, env = "BEDROCK_LOCAL_STREAM_FAIL_AFTER")]
    pub stream_fail_after: Option<usize>,
    /// Seed for fault injection (same seed, same faults for the same request order).
    #[arg(long, env = "BEDROCK_LOCAL_FAULT_SEED")]
    pub fault_seed: Option<u64>,
}

impl Cli {
    /// Builds the server configuration (reads the scripted file, if any).
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let backend = match (self.scripted, self.model) {
            (Some(path), _) => Backend::Scripted(Script::load(path)?),
            #[cfg(feature = "llama")]
            (None, model) => Backend::Llama(crate::backend::LlamaOptions {
                model_path: model.unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_PATH)),
                threads: self.threads,
                sample_seed: self.sample_seed,
            }),
            #[cfg(not(feature = "llama"))]
            (None, _) => return Err(ConfigError::NoLlama),
        };
        let config = Config {
            listen: self.listen,
            backend,
            model_ids: self.model_ids,
            context_window: self.context_window,
            max_concurrency: self.max_concurrency,
            max_queue: self.max_queue,
            tokens_per_minute: self.tokens_per_minute,
            requests_per_minute: self.requests_per_minute,
            faults: Faults {
                throttle_rate: self.throttle_rate,
                unavailable_rate: self.unavailable_rate,
                timeout_rate: self.timeout_rate,
                stall_rate: self.stall_rate,
                malformed_rate: self.malformed_rate,
                stream_fail_rate: self.stream_fail_rate,
                guardrail_intervene_rate: self.guardrail_intervene_rate,
                added_latency: Duration::from_millis(self.added_latency_ms),
                stream_fail_after: self.stream_fail_after,
                seed: self.fault_seed,
            },
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "bedrock-local",
            "--listen",
            "127.0.0.1:0",
            "--model-id",
            "a",
            "--model-id",
            "b",
            "--throttle-rate",
            "0.5",
            "--fault-seed",
            "3",
            "--stream-fail-after",
            "2",
            "--stall-rate",
            "0.01",
            "--stream-fail-rate",
            "0.02",
            "--guardrail-intervene-rate",
            "0.5",
            "--tokens-per-minute",
            "600000",
            "--requests-per-minute",
            "1600",
        ])
        .unwrap();
        assert_eq!(
            (cli.tokens_per_minute, cli.requests_per_minute),
            (Some(600_000), Some(1600))
        );
        assert_eq!(cli.model_ids, ["a", "b"]);
        assert_eq!(cli.fault_seed, Some(3));
        assert_eq!(cli.threads, 2);
        assert_eq!(
            (
                cli.stall_rate,
                cli.stream_fail_rate,
                cli.guardrail_intervene_rate
            ),
            (0.01, 0.02, 0.5)
        );
    }

    #[test]
    fn defaults_serve_the_llama_ids() {
        let cli = Cli::try_parse_from(["bedrock-local"]).unwrap();
        assert_eq!(cli.model_ids, DEFAULT_MODEL_IDS);
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let cli = Cli::try_parse_from([
            "bedrock-local",
            "--timeout-rate",
            "2",
            "--scripted",
            "/nonexistent.json",
        ])
        .unwrap();
        assert!(cli.into_config().is_err());
        let config = Config {
            max_concurrency: Some(0),
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::ZeroConcurrency)
        ));
        let config = Config {
            tokens_per_minute: Some(0),
            ..Config::default()
        };
        assert!(matches!(config.validate(), Err(ConfigError::ZeroQuota(_))));
        assert!(Cli::try_parse_from(["bedrock-local", "--model", "a", "--scripted", "b"]).is_err());
    }
}
