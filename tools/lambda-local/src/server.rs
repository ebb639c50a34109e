//! Starting, observing and stopping the server.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::functions::{Functions, MAX_SYNC_PAYLOAD, function_arn};
use crate::http_front::{self, HttpFront};
use crate::invoke_api;
use crate::pool::{FunctionSpec, Pool};
use crate::sqs_poller;
use crate::stats::{FunctionStats, SqsCounters, SqsSourceStats};

/// How long [`Server::shutdown`] waits for open requests before dropping them.
const GRACE: Duration = Duration::from_secs(5);

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// An SQS event source mapping could not start.
    #[error("cannot start the SQS source of `{function}`: {reason}")]
    SqsSource {
        /// The function.
        function: String,
        /// Why.
        reason: String,
    },
    /// A Runtime API listener could not be bound.
    #[error("cannot start the runtime API of `{function}`: {source}")]
    RuntimeApi {
        /// The function.
        function: String,
        /// Why.
        source: io::Error,
    },
}

/// An HTTP listener serving in the background.
struct Listener {
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

/// A running server: the Invoke API, the functions' Runtime APIs and, when configured, the
/// HTTP front. Dropping it stops the functions' processes; [`Server::shutdown`] also waits
/// for them to end.
pub struct Server {
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    functions: Arc<Functions>,
    shutdown: watch::Sender<bool>,
    pools: Vec<JoinHandle<()>>,
    listeners: Vec<Listener>,
    sqs_counters: HashMap<String, Arc<SqsCounters>>,
    sqs_pollers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Validates `config`, binds the listeners and starts serving in the background.
    /// Function processes start on their first invocation.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut pools = HashMap::new();
        let mut pool_tasks = Vec::new();
        for function in config.functions {
            let name = function.name.clone();
            let spec = FunctionSpec {
                arn: function_arn(&config.region, &config.account_id, &name),
                region: config.region.clone(),
                init_timeout: config.init_timeout,
                max_response_bytes: MAX_SYNC_PAYLOAD,
                log_prefix: format!("[{name}] "),
                config: function,
            };
            let (pool, task) = Pool::start(spec, shutdown_rx.clone())
                .await
                .map_err(|source| StartError::RuntimeApi {
                    function: name.clone(),
                    source,
                })?;
            pools.insert(name, pool);
            pool_tasks.push(task);
        }
        let functions = Arc::new(Functions {
            pools,
            region: config.region,
            account_id: config.account_id,
            dlq_dir: config.dlq_dir,
            async_retries: config.async_retries,
            async_retry_delay: config.async_retry_delay,
            shutdown: shutdown_rx.clone(),
        });
        let mut server = Self {
            addr: config.listen,
            http_addr: None,
            functions: Arc::clone(&functions),
            shutdown,
            pools: pool_tasks,
            listeners: Vec::new(),
            sqs_counters: HashMap::new(),
            sqs_pollers: Vec::new(),
        };
        for source in config.sqs_sources {
            let function = source.function.clone();
            let counters = Arc::new(SqsCounters::default());
            let pollers = sqs_poller::start(
                source,
                Arc::clone(&functions),
                Arc::clone(&counters),
                &shutdown_rx,
            )
            .await
            .map_err(|reason| StartError::SqsSource {
                function: function.clone(),
                reason,
            })?;
            server.sqs_pollers.extend(pollers);
            server.sqs_counters.insert(function, counters);
        }
        let listener = bind(config.listen).await?;
        server.addr = local_addr(&listener, config.listen)?;
        let app = invoke_api::router(Arc::clone(&functions));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped_signal(stopped))
                .into_future(),
        );
        server.listeners.push(Listener { stop, task });
        tracing::info!("Invoke API on http://{}", server.addr);
        if let Some(http_listen) = config.http_listen {
            let listener = bind(http_listen).await?;
            let addr = local_addr(&listener, http_listen)?;
            let front = Arc::new(HttpFront {
                functions,
                routes: config.http_routes,
                function_urls: config.function_urls,
                integration_timeout: config.http_integration_timeout,
                port: addr.port(),
            });
            let app = http_front::router(front).into_make_service_with_connect_info::<SocketAddr>();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped_signal(stopped))
                    .into_future(),
            );
            server.listeners.push(Listener { stop, task });
            server.http_addr = Some(addr);
            tracing::info!("HTTP API on http://{addr}");
        }
        Ok(server)
    }

    /// The Invoke API's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Invoke API's URL for SDKs (`AWS_ENDPOINT_URL_LAMBDA`), e.g. `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTP front's address, when configured.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The HTTP front's URL, when configured.
    pub fn http_endpoint(&self) -> Option<String> {
        self.http_addr.map(|addr| format!("http://{addr}"))
    }

    /// The counters of one function.
    pub fn stats(&self, function: &str) -> Option<FunctionStats> {
        self.functions
            .pools
            .get(function)
            .map(|pool| pool.counters.snapshot())
    }

    /// The counters of the SQS event source mapping of `function`, when it has one.
    pub fn sqs_stats(&self, function: &str) -> Option<SqsSourceStats> {
        self.sqs_counters
            .get(function)
            .map(|counters| counters.snapshot())
    }

    /// Stops the SQS pollers, fails what is queued, kills every function process and stops
    /// the listeners.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for mut task in self.sqs_pollers.drain(..) {
            match tokio::time::timeout(GRACE, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!("SQS poller task failed: {error}"),
                Err(_) => task.abort(),
            }
        }
        for (function, counters) in &self.sqs_counters {
            let stats = counters.snapshot();
            tracing::info!(
                "{function}: SQS source: {} batches, {} messages, {} deleted, {} failed items, \
                 {} failed batches, {} SQS errors",
                stats.batches,
                stats.messages,
                stats.deleted,
                stats.failed_items,
                stats.failed_batches,
                stats.sqs_errors
            );
        }
        for task in self.pools.drain(..) {
            if let Err(error) = task.await {
                tracing::error!("function pool task failed: {error}");
            }
        }
        for Listener { stop, mut task } in self.listeners.drain(..) {
            let _ = stop.send(());
            match tokio::time::timeout(GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::error!("listener failed: {error}"),
                Ok(Err(error)) => tracing::error!("listener task failed: {error}"),
                Err(_) => task.abort(),
            }
        }
        tracing::info!("stopped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for listener in &self.listeners {
            listener.task.abort();
        }
        for poller in &self.sqs_pollers {
            poller.abort();
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, requested: SocketAddr) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        addr: requested,
        source,
    })
}

/// Resolves when `stop` fires or its sender is dropped.
async fn stopped_signal(stopped: oneshot::Receiver<()>) {
    let _ = stopped.await;
}
