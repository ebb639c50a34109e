//! Test support for the functions (a dev-dependency only): an in-process S3 server
//! (s3s-fs, real S3 wire protocol and SigV4 checks, with S3's atomic conditional
//! requests) and the Bedrock emulator on free
//! ports, plus the real AWS SDK clients pointed at them, and the events of each trigger.

mod atomic_s3;
pub mod cold_start;
pub mod events;

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use bedrock::metrics::{Metrics, MetricsSink};
use bedrock::{ClientSettings, LlamaClient, RetryPolicy};
use bedrock_local::{Config, Script, Server};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

/// Access key the local servers accept.
pub const ACCESS_KEY: &str = "test-access-key";
/// Secret key the local servers accept.
pub const SECRET_KEY: &str = "test-secret-key";

/// SDK configuration with static test credentials, a region, and `endpoint`.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(bedrock::sdk::https_client())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "testkit"),
        ))
        .endpoint_url(endpoint)
        .build()
}

/// An S3 server on a free local port, storing objects in a temporary directory.
pub struct LocalS3 {
    endpoint: String,
    _root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl LocalS3 {
    /// Starts the server and creates `buckets`.
    pub async fn start(buckets: &[&str]) -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs root");
        let mut builder = S3ServiceBuilder::new(atomic_s3::AtomicConditions::new(fs));
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        let s3 = Self {
            endpoint,
            _root: root,
            task,
        };
        let client = s3.client();
        for bucket in buckets {
            client
                .create_bucket()
                .bucket(*bucket)
                .send()
                .await
                .expect("create bucket");
        }
        s3
    }

    /// The server's URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A real S3 client for this server (path-style addressing).
    pub fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&sdk_config(&self.endpoint))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Writes an object.
    pub async fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into().into())
            .send()
            .await
            .expect("put object");
    }

    /// Reads an object, `None` if it does not exist.
    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.ok()?.into_bytes().to_vec())
    }

    /// Reads an object as JSON, `None` if it does not exist.
    pub async fn get_json(&self, bucket: &str, key: &str) -> Option<serde_json::Value> {
        let bytes = self.get(bucket, key).await?;
        Some(serde_json::from_slice(&bytes).expect("the object is JSON"))
    }

    /// Writes an object and returns its ETag (quotes removed).
    pub async fn put_for_etag(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) -> String {
        self.put(bucket, key, body).await;
        self.etag(bucket, key).await
    }

    /// An existing object's ETag (quotes removed).
    pub async fn etag(&self, bucket: &str, key: &str) -> String {
        let head = self
            .client()
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("head object");
        head.e_tag().expect("an ETag").trim_matches('"').to_owned()
    }

    /// Keys under `prefix`.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self
            .client()
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The Bedrock emulator running the scripted test double, and a client for it.
pub struct Emulator {
    /// The running server (see `stats()` for request counts).
    pub server: Server,
    /// EMF lines the client wrote.
    pub metrics: Arc<Mutex<Vec<String>>>,
}

impl Emulator {
    /// Starts the emulator with `script` and the given context window.
    pub async fn start(script: Script, context_window: u32) -> Self {
        Self::scripted(script, context_window, bedrock_local::Faults::default()).await
    }

    /// Starts the emulator with `script` behind a guardrail that intervenes on every call
    /// that names one (200, the block message, `INTERVENED`, as Bedrock answers); pair it
    /// with [`Emulator::guarded_settings`].
    pub async fn start_blocking_guardrail(script: Script, context_window: u32) -> Self {
        let faults = bedrock_local::Faults {
            guardrail_intervene_rate: 1.0,
            ..bedrock_local::Faults::default()
        };
        Self::scripted(script, context_window, faults).await
    }

    async fn scripted(script: Script, context_window: u32, faults: bedrock_local::Faults) -> Self {
        let server = Server::start(Config {
            backend: bedrock_local::Backend::Scripted(script),
            context_window: Some(context_window),
            faults,
            ..Config::default()
        })
        .await
        .expect("start emulator");
        Self {
            server,
            metrics: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// [`Emulator::settings`] with a guardrail on every call.
    pub fn guarded_settings(&self, context_window: u32) -> ClientSettings {
        ClientSettings {
            guardrail: Some(bedrock::Guardrail {
                identifier: "gr-test".into(),
                version: "1".into(),
            }),
            ..self.settings(context_window)
        }
    }

    /// Starts the emulator with the real local model (`scripts/setup.sh` fetches it into
    /// `.cache/models/`; `BEDROCK_LOCAL_MODEL` overrides the path), for smoke tests of
    /// the whole path. The window is the model's own (8,192 tokens for SmolLM2).
    ///
    /// `None`, with the reason on stderr, when this crate was built without its
    /// `real-model` feature (llama.cpp is compiled only with it) or the model file is
    /// missing: real-model tests are opt-in and skip rather than fail.
    pub async fn start_local_model() -> Option<Self> {
        #[cfg(not(feature = "real-model"))]
        {
            eprintln!(
                "SKIPPED: real-model test; build with `--features testkit/real-model` \
                 (make test does) to run it"
            );
            None
        }
        #[cfg(feature = "real-model")]
        {
            let path = std::env::var_os("BEDROCK_LOCAL_MODEL").map_or_else(
                || {
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
                },
                std::path::PathBuf::from,
            );
            if !path.exists() {
                eprintln!(
                    "SKIPPED: real-model test; {} is missing (run scripts/setup.sh)",
                    path.display()
                );
                return None;
            }
            let server = Server::start(Config {
                backend: bedrock_local::Backend::Llama(bedrock_local::LlamaOptions::new(path)),
                ..Config::default()
            })
            .await
            .expect("start emulator with the local model");
            Some(Self {
                server,
                metrics: Arc::new(Mutex::new(Vec::new())),
            })
        }
    }

    /// Default client settings for tests: this window, fast retries, metrics in memory.
    pub fn settings(&self, context_window: u32) -> ClientSettings {
        ClientSettings {
            budget: bedrock::ContextBudget::new(context_window).expect("window"),
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: std::time::Duration::from_millis(5),
                max_delay: std::time::Duration::from_millis(20),
                min_attempt_time: std::time::Duration::from_millis(50),
            },
            metrics: Metrics::new("Test", MetricsSink::Memory(self.metrics.clone())),
            ..ClientSettings::default()
        }
    }

    /// A real Bedrock client for the emulator with `settings`.
    pub fn client(&self, settings: ClientSettings) -> LlamaClient {
        LlamaClient::new(&sdk_config(&self.server.endpoint()), settings)
    }

    /// Model calls the emulator received (InvokeModel and streaming, all models).
    pub fn calls(&self) -> u64 {
        self.server.stats().total()
    }
}
