//! Once per cold start: logging, settings, SDK clients, the function; then the runtime loop.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;
use bedrock::{ClientSettings, LlamaClient};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use settings::ConfigError;

use crate::boundary::BoundarySettings;
use crate::deadline::{DEFAULT_MARGIN, invocation_deadline};
use crate::dispatch::handle_with;
use crate::jobs::{JobSettings, JobStore};
use crate::{Function, Invocation, TaskError, logging};

/// The SDK clients a function may use, built from the AWS configuration in the environment
/// ([`bedrock::sdk::load_config`]).
/// Each is built on its first use and then shared by every user (clones share them too).
#[derive(Clone)]
pub struct Clients {
    /// The Bedrock client (every model call goes through it; its SDK client is built on
    /// the first call).
    pub llama: LlamaClient,
    sdk: SdkConfig,
    s3_force_path_style: bool,
    built: Arc<Built>,
}

/// The clients built so far.
#[derive(Default)]
struct Built {
    s3: OnceLock<aws_sdk_s3::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    lambda: OnceLock<aws_sdk_lambda::Client>,
}

impl Clients {
    /// Clients over `sdk`; `s3_force_path_style` for local S3 servers.
    pub fn new(llama: LlamaClient, sdk: SdkConfig, s3_force_path_style: bool) -> Self {
        Self {
            llama,
            sdk,
            s3_force_path_style,
            built: Arc::default(),
        }
    }

    /// The S3 client (built on demand: functions that never read S3 never pay for it).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let build = || {
            aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&self.sdk)
                    .force_path_style(self.s3_force_path_style)
                    .build(),
            )
        };
        self.built.s3.get_or_init(build).clone()
    }

    /// The DynamoDB client (jobs).
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let build = || aws_sdk_dynamodb::Client::new(&self.sdk);
        self.built.dynamodb.get_or_init(build).clone()
    }

    /// The Lambda client (starting job workers, forwarding to other functions).
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let build = || aws_sdk_lambda::Client::new(&self.sdk);
        self.built.lambda.get_or_init(build).clone()
    }

    /// The shared SDK configuration, for clients of services this crate does not name
    /// (Step Functions for the jobs function's batches).
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }
}

/// Runs function `F`: reads every setting (a bad one fails the cold start with a message
/// naming the variable), builds the clients once, then serves events until the runtime
/// stops.
pub async fn run<F: Function + 'static>() -> Result<(), lambda_runtime::Error> {
    logging::init_logging();
    let (boundary, llama_settings, settings) = match read_settings::<F>() {
        Ok(settings) => settings,
        Err(e) => return Err(init_failed(e).await),
    };
    let job_settings = match settings::from_env::<JobSettings>() {
        Ok(settings) => settings,
        Err(e) => return Err(init_failed(e).await),
    };
    let sdk = match bedrock::sdk::load_config().await {
        Ok(sdk) => sdk,
        Err(e) => return Err(init_failed(e).await),
    };
    let clients = Clients::new(
        LlamaClient::new(&sdk, llama_settings),
        sdk,
        boundary.s3_force_path_style,
    );
    let function = match F::build(&clients, settings) {
        Ok(function) => function,
        Err(e) => return Err(init_failed(e).await),
    };
    if boundary.response_streaming {
        // One function per process, kept for its lifetime: the streamed work outlives the
        // handler's call.
        return crate::streaming::serve::<F>(Box::leak(Box::new(function))).await;
    }
    // The worker of a job is this same function, invoked asynchronously.
    let jobs = JobStore::new(&clients, &job_settings)
        .map(|store| store.worker(std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok()));
    let (function, jobs) = (&function, jobs.as_ref());
    let handler = move |event, invocation| -> HandlerFuture<'_> {
        Box::pin(handle_with(function, jobs, event, invocation))
    };
    serve(&handler, &boundary).await
}

type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, TaskError>> + 'a>>;

/// The runtime loop, not generic over the function: its deep service stack is compiled
/// once, here.
async fn serve<'a>(
    handler: &'a dyn Fn(Value, Invocation) -> HandlerFuture<'a>,
    boundary: &BoundarySettings,
) -> Result<(), lambda_runtime::Error> {
    let (api_time_budget, sync_rates) = (boundary.api_time_budget(), boundary.sync_rates());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let invocation = Invocation {
            deadline: invocation_deadline(event.context.deadline, DEFAULT_MARGIN),
            api_time_budget,
            request_id: Some(event.context.request_id.clone()),
            sync_rates,
        };
        let answer = handler(event.payload, invocation);
        async move { answer.await.map_err(Diagnostic::from) }
    }))
    .await
}

/// Logs a setting that stops the cold start and reports it to the Runtime API's
/// `/init/error` (as `ConfigError`), so that the invoker sees what is wrong, not only a
/// crashed runtime.
async fn init_failed(e: ConfigError) -> lambda_runtime::Error {
    tracing::error!(variable = %e.variable, error = %e, "cannot start");
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        let diagnostic = Diagnostic {
            error_type: "ConfigError".into(),
            error_message: e.to_string(),
        };
        let request = serde_json::to_vec(&diagnostic)
            .map_err(lambda_runtime::Error::from)
            .and_then(|body| {
                lambda_runtime_api_client::build_request()
                    .method(http::Method::POST)
                    .uri("/2018-06-01/runtime/init/error")
                    .header("lambda-runtime-function-error-type", "ConfigError")
                    .body(lambda_runtime_api_client::body::Body::from(body))
                    .map_err(lambda_runtime::Error::from)
            });
        let client = lambda_runtime_api_client::PooledClient::builder().build();
        let sent = match request {
            Ok(request) => client.call(request).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(report) = sent {
            tracing::warn!(error = %report, "could not report the init error");
        }
    }
    e.into()
}

fn read_settings<F: Function>()
-> Result<(BoundarySettings, ClientSettings, F::Settings), ConfigError> {
    Ok((
        settings::from_env()?,
        ClientSettings::from_env()?,
        settings::from_env()?,
    ))
}
