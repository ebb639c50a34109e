//! Starting, observing and stopping the server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::backend::Engine;
use crate::capacity::Capacity;
use crate::config::{Config, ConfigError};
use crate::faults::FaultInjector;
use crate::meter::{Counters, Meter};
use crate::quota::Limits;
use crate::routes::{self, AppState};

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The GGUF could not be loaded.
    #[cfg(feature = "llama")]
    #[error(transparent)]
    Model(#[from] crate::backend::LlamaLoadError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Requests received, counted per model id exactly as sent (percent-decoded), whether or not
/// they succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// InvokeModel requests.
    pub invoke: BTreeMap<String, u64>,
    /// InvokeModelWithResponseStream requests.
    pub stream: BTreeMap<String, u64>,
    /// Requests (of both kinds, counted above too) that were never answered: stall faults.
    pub stalled: u64,
}

impl Stats {
    /// Requests of both kinds for `model_id`.
    pub fn requests(&self, model_id: &str) -> u64 {
        self.invoke.get(model_id).copied().unwrap_or(0)
            + self.stream.get(model_id).copied().unwrap_or(0)
    }

    /// All requests of both kinds.
    pub fn total(&self) -> u64 {
        self.invoke.values().chain(self.stream.values()).sum()
    }
}

/// A running server. Dropping it starts a graceful shutdown; [`Server::shutdown`] also waits
/// for it.
pub struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    /// Tells stalled requests to end (so a graceful shutdown is not held up by them).
    stopping: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Loads the backend, binds `config.listen` and starts serving in the background.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let engine = Engine::load(config.backend, config.context_window).await?;
        let max_concurrency = config
            .max_concurrency
            .unwrap_or_else(|| engine.default_concurrency());
        let limits = Limits {
            tokens_per_minute: config.tokens_per_minute,
            requests_per_minute: config.requests_per_minute,
        };
        tracing::info!(
            "serving {}; model ids {:?}; {max_concurrency} concurrent, queue {}; \
             tokens/min {:?}, requests/min {:?}",
            engine.describe(),
            config.model_ids,
            config.max_queue,
            limits.tokens_per_minute,
            limits.requests_per_minute
        );
        let (stopping, stopping_rx) = watch::channel(false);
        let state = Arc::new(AppState {
            engine,
            stopping: stopping_rx,
            model_ids: config.model_ids,
            capacity: Capacity::new(max_concurrency, config.max_queue),
            faults: FaultInjector::new(config.faults),
            stats: Default::default(),
            meter: Arc::new(Meter::new(limits, max_concurrency, config.max_queue)),
        });
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = routes::router(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!("listening on http://{addr}");
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            stopping,
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL for SDKs, e.g. `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> Stats {
        self.state
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The quota and call counters, as served at `GET /_local/stats`.
    pub fn counters(&self) -> Counters {
        self.state.meter.counters(self.state.capacity.in_flight())
    }

    /// Stops accepting requests and waits for the ones in flight to finish.
    pub async fn shutdown(mut self) {
        self.stopping.send_replace(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => tracing::info!("server stopped"),
            Ok(Err(e)) => tracing::error!("server failed: {e}"),
            Err(e) => tracing::error!("server task failed: {e}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stopping.send_replace(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
