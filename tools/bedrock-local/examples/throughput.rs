//! Measures what the emulator costs: the same GGUF, prompt and settings (greedy, 128 tokens,
//! 2 threads) run (a) directly through llama-cpp-2, (b) through bedrock-local with InvokeModel
//! and (c) with InvokeModelWithResponseStream, both through the AWS SDK over HTTP. The three
//! are interleaved run by run on warm models ((a) in a child process of this program, since
//! llama.cpp allows one backend per process). Writes tools/bedrock-local/BENCHMARKS.md.
//!
//! `cargo run --release -p bedrock-local --example throughput` (env: `BEDROCK_LOCAL_MODEL`,
//! `BENCH_REPS`, default 5).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{Credentials, Region};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ResponseStream;
use bedrock_local::{Backend, Config, LlamaOptions, Server};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;

type Error = Box<dyn std::error::Error>;

const MAX_GEN_LEN: u32 = 128;
const THREADS: u16 = 2;
const WORKER_FLAG: &str = "--direct-worker";
const MODEL_ID: &str = "us.meta.llama3-2-3b-instruct-v1:0";
const USER_MESSAGE: &str = "Write a detailed story about a lighthouse keeper who finds a message in a bottle. \
    Describe the island, the weather, the keeper's daily routine, and what the message says.";

/// One measured generation.
#[derive(Debug, Clone, Copy)]
struct Run {
    prompt_tokens: u32,
    generated_tokens: u32,
    /// Until the prompt was processed (direct) or the first chunk arrived (stream).
    first: Option<Duration>,
    total: Duration,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn llama3_prompt() -> String {
    format!(
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{USER_MESSAGE}<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    )
}

/// (a) llama-cpp-2 with no server, mirroring what the emulator does per request. Runs as a
/// child process: one generation per line on stdin, one line of results per generation on
/// stdout (`prompt_tokens generated_tokens prompt_done_ns total_ns`).
fn direct_worker(path: &Path) -> Result<(), Error> {
    let backend = LlamaBackend::init()?;
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(false));
    let model = LlamaModel::load_from_file(&backend, path, &LlamaModelParams::default())?;
    let vocab = model.vocab();
    // The prompt the emulator feeds: the Llama 3 chat re-rendered with the model's template.
    let text = match model.chat_template(None) {
        Ok(template) => model.apply_chat_template(
            &template,
            &[LlamaChatMessage::new("user".into(), USER_MESSAGE.into())?],
            true,
        )?,
        Err(_) => llama3_prompt(),
    };
    let tokens = vocab.tokenize(text.as_bytes(), true, true);
    let prompt_tokens = u32::try_from(tokens.len())?;
    let needed = prompt_tokens + MAX_GEN_LEN;
    let n_ctx = needed.div_ceil(256) * 256;
    let mut stdout = std::io::stdout();
    for line in std::io::stdin().lines() {
        line?;
        let started = Instant::now();
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx)
            .with_n_threads(i32::from(THREADS))
            .with_n_threads_batch(i32::from(THREADS));
        let mut ctx = model.new_context(&backend, params)?;
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        batch.add_sequence(&tokens, 0, false)?;
        ctx.decode(&mut batch)?;
        let prompt_done = started.elapsed();
        let mut sampler = LlamaSampler::greedy();
        let mut generated = 0u32;
        let mut position = i32::try_from(tokens.len())?;
        let mut text = Vec::new();
        loop {
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break;
            }
            generated += 1;
            text.extend(vocab.token_to_piece(token, false, None));
            if generated >= MAX_GEN_LEN {
                break;
            }
            batch.clear();
            batch.add(token, position, &[0], true)?;
            position += 1;
            ctx.decode(&mut batch)?;
        }
        let total = started.elapsed();
        writeln!(
            stdout,
            "{prompt_tokens} {generated} {} {}",
            prompt_done.as_nanos(),
            total.as_nanos()
        )?;
        stdout.flush()?;
    }
    Ok(())
}

/// The parent's handle on the direct worker.
struct DirectWorker {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl DirectWorker {
    fn spawn(path: &Path) -> Result<Self, Error> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(WORKER_FLAG)
            .env("BEDROCK_LOCAL_MODEL", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no worker stdout")?;
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    fn run(&mut self) -> Result<Run, Error> {
        let stdin = self.child.stdin.as_mut().ok_or("no worker stdin")?;
        writeln!(stdin, "run")?;
        stdin.flush()?;
        let line = self.lines.next().ok_or("worker exited")??;
        let fields: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [prompt_tokens, generated_tokens, first, total] = fields[..] else {
            return Err(format!("bad worker line {line:?}").into());
        };
        Ok(Run {
            prompt_tokens: u32::try_from(prompt_tokens)?,
            generated_tokens: u32::try_from(generated_tokens)?,
            first: Some(Duration::from_nanos(first)),
            total: Duration::from_nanos(total),
        })
    }
}

impl Drop for DirectWorker {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn request_body() -> Blob {
    Blob::new(
        serde_json::json!({"prompt": llama3_prompt(), "max_gen_len": MAX_GEN_LEN, "temperature": 0.0})
            .to_string()
            .into_bytes(),
    )
}

/// (b) InvokeModel through the AWS SDK.
async fn invoke(client: &Client) -> Result<Run, Error> {
    let started = Instant::now();
    let output = client
        .invoke_model()
        .model_id(MODEL_ID)
        .body(request_body())
        .send()
        .await?;
    let total = started.elapsed();
    let reply: serde_json::Value = serde_json::from_slice(output.body().as_ref())?;
    let count = |key: &str| u32::try_from(reply[key].as_u64().unwrap_or(0)).unwrap_or(0);
    Ok(Run {
        prompt_tokens: count("prompt_token_count"),
        generated_tokens: count("generation_token_count"),
        first: None,
        total,
    })
}

/// (c) InvokeModelWithResponseStream through the AWS SDK, read to the end.
async fn stream(client: &Client) -> Result<Run, Error> {
    let started = Instant::now();
    let mut output = client
        .invoke_model_with_response_stream()
        .model_id(MODEL_ID)
        .body(request_body())
        .send()
        .await?;
    let mut first = None;
    let mut run = Run {
        prompt_tokens: 0,
        generated_tokens: 0,
        first: None,
        total: Duration::ZERO,
    };
    while let Some(event) = output.body.recv().await? {
        let ResponseStream::Chunk(part) = event else {
            continue;
        };
        first.get_or_insert_with(|| started.elapsed());
        let chunk: serde_json::Value =
            serde_json::from_slice(part.bytes().map(|b| b.as_ref()).unwrap_or_default())?;
        if let Some(n) = chunk["prompt_token_count"].as_u64() {
            run.prompt_tokens = u32::try_from(n)?;
        }
        run.generated_tokens =
            u32::try_from(chunk["generation_token_count"].as_u64().unwrap_or(0))?;
    }
    run.first = first;
    run.total = started.elapsed();
    Ok(run)
}

/// (a), (b) and (c), interleaved run by run, each warmed up once.
async fn measure(path: &Path, reps: usize) -> Result<[Vec<Run>; 3], Error> {
    let mut worker = DirectWorker::spawn(path)?;
    let server = Server::start(Config {
        backend: Backend::Llama(LlamaOptions {
            threads: THREADS,
            ..LlamaOptions::new(path)
        }),
        ..Config::default()
    })
    .await?;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(server.endpoint())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let client = Client::new(&config);
    worker.run()?;
    invoke(&client).await?;
    stream(&client).await?;
    let mut runs: [Vec<Run>; 3] = Default::default();
    for rep in 0..reps {
        eprintln!("run {}/{reps}", rep + 1);
        runs[0].push(worker.run()?);
        runs[1].push(invoke(&client).await?);
        runs[2].push(stream(&client).await?);
    }
    server.shutdown().await;
    Ok(runs)
}

struct Summary {
    name: &'static str,
    prompt_tokens: u32,
    generated_tokens: u32,
    total_ms: f64,
    best_ms: f64,
    first_ms: Option<f64>,
}

impl Summary {
    fn new(name: &'static str, runs: &[Run]) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Self {
            name,
            prompt_tokens: runs.first().map_or(0, |r| r.prompt_tokens),
            generated_tokens: runs.first().map_or(0, |r| r.generated_tokens),
            total_ms: median(runs.iter().map(|r| ms(r.total)).collect()),
            best_ms: runs
                .iter()
                .map(|r| ms(r.total))
                .fold(f64::INFINITY, f64::min),
            first_ms: runs
                .iter()
                .map(|r| r.first.map(ms))
                .collect::<Option<Vec<_>>>()
                .map(median),
        }
    }

    /// Generated tokens per second over the whole request.
    fn end_to_end_tps(&self) -> f64 {
        f64::from(self.generated_tokens) / (self.total_ms / 1000.0)
    }

    /// Prompt tokens per second up to `first` (prompt processed / first chunk).
    fn prompt_tps(&self) -> Option<f64> {
        self.first_ms
            .map(|first| f64::from(self.prompt_tokens) / (first / 1000.0))
    }

    /// Generated tokens per second after `first`.
    fn generation_tps(&self) -> Option<f64> {
        self.first_ms.map(|first| {
            let after_first = match self.name {
                // The direct timer stops the clock before the first token is sampled.
                n if n.starts_with("(a)") => f64::from(self.generated_tokens),
                _ => f64::from(self.generated_tokens.saturating_sub(1)),
            };
            after_first / ((self.total_ms - first) / 1000.0)
        })
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|l| l.split_once(':')))
        .map_or("unknown CPU", |(_, name)| name.trim());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{cpu}, {cores} cores available, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The 1-minute load average (other work on the machine skews the numbers).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn report(path: &Path, reps: usize, load: (&str, &str), rows: &[Summary]) -> String {
    let direct = &rows[0];
    let fmt = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), |x| format!("{x:.1}"));
    let mut out = String::new();
    let _ = writeln!(out, "# bedrock-local throughput\n");
    let _ = writeln!(
        out,
        "What the emulator costs on top of llama.cpp: the same GGUF, prompt and settings run \
         directly through `llama-cpp-2` and through `bedrock-local` with the AWS SDK for Rust over HTTP.\n"
    );
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(
        out,
        "- 1-minute load average: {} before, {} after the run",
        load.0, load.1
    );
    let _ = writeln!(
        out,
        "- Command: `cargo run --release -p bedrock-local --example throughput`"
    );
    let _ = writeln!(
        out,
        "- Model: `{}`",
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    let _ = writeln!(
        out,
        "- Settings: greedy (temperature 0), max_gen_len {MAX_GEN_LEN}, {THREADS} threads, one \
         request at a time, fixed Llama 3 chat prompt (re-rendered to the model's template), \
         the three paths interleaved run by run on warm models, {reps} runs each after one \
         warm-up; the tok/s columns use medians\n"
    );
    let _ = writeln!(
        out,
        "| Path | Prompt tokens | Generated tokens | Median request ms | Best request ms | Time to prompt done / first chunk ms | Prompt tok/s | Generation tok/s | End-to-end generated tok/s | Overhead vs direct (median / best) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let overhead = |ms: f64, base: f64| format!("{:+.1}%", (ms - base) / base * 100.0);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {:.1} | {} |",
            row.name,
            row.prompt_tokens,
            row.generated_tokens,
            row.total_ms,
            row.best_ms,
            fmt(row.first_ms),
            fmt(row.prompt_tps()),
            fmt(row.generation_tps()),
            row.end_to_end_tps(),
            if row.name.starts_with("(a)") {
                "—".to_owned()
            } else {
                format!(
                    "{} / {}",
                    overhead(row.total_ms, direct.total_ms),
                    overhead(row.best_ms, direct.best_ms)
                )
            }
        );
    }
    let _ = writeln!(
        out,
        "\nOverhead compares whole request times with the direct run's (context creation, prompt \
         and generation): medians, and best runs (least disturbed by other load on the machine). The stream's prompt tok/s is measured to the first chunk, so it also holds \
         the first generated token and the HTTP round trip. Target: overhead under 5%."
    );
    out
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let path = std::env::var_os("BEDROCK_LOCAL_MODEL").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        PathBuf::from,
    );
    let reps = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    if std::env::args().nth(1).as_deref() == Some(WORKER_FLAG) {
        return direct_worker(&path);
    }
    let load_before = load_average();
    let [direct_runs, invokes, streams] = measure(&path, reps).await?;
    let load_after = load_average();
    let rows = [
        Summary::new("(a) llama-cpp-2 direct", &direct_runs),
        Summary::new("(b) InvokeModel over HTTP", &invokes),
        Summary::new("(c) InvokeModelWithResponseStream over HTTP", &streams),
    ];
    if rows.iter().any(|r| {
        r.generated_tokens != rows[0].generated_tokens || r.prompt_tokens != rows[0].prompt_tokens
    }) {
        eprintln!("warning: the three paths did not see the same token counts");
    }
    let text = report(&path, reps, (&load_before, &load_after), &rows);
    print!("{text}");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    std::fs::write(&out, text)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
