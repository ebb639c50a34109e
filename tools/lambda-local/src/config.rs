//! Server configuration, from Rust or from the command line and `LAMBDA_LOCAL_*` variables.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::route::{RouteError, RouteKey};
use crate::sqs_source::SqsSource;

/// Lambda's default function timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Lambda's longest function timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);
/// Lambda's default memory size, in MB (reported to the function, not enforced).
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Lambda's init phase limit for on-demand functions.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// API Gateway HTTP API's longest integration timeout.
pub const DEFAULT_HTTP_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Lambda's most retries of a failed asynchronous invocation.
pub const MAX_ASYNC_RETRIES: u32 = 2;

/// Environment variables that Lambda sets itself and a function cannot override.
pub const RESERVED_ENV: [&str; 12] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// One function to serve: a binary built on a Lambda runtime client (e.g. `lambda_runtime`).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    /// Function name, as callers name it (`[A-Za-z0-9_-]`, 1 to 64 characters).
    pub name: String,
    /// The executable (Lambda's `bootstrap`).
    pub binary: PathBuf,
    /// Invocation timeout; past it the invocation fails with `Sandbox.Timedout` and the
    /// process is recycled.
    pub timeout: Duration,
    /// Memory size reported in `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (not enforced).
    pub memory_mb: u32,
    /// Worker processes, started on demand and kept warm; more invocations wait in a queue.
    pub concurrency: usize,
    /// Extra environment variables, applied over the server's own environment.
    pub env: Vec<(String, String)>,
}

impl FunctionConfig {
    /// A function with Lambda's defaults: 3 s timeout, 128 MB, one worker, no extra env.
    pub fn new(name: impl Into<String>, binary: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            binary: binary.into(),
            timeout: DEFAULT_TIMEOUT,
            memory_mb: DEFAULT_MEMORY_MB,
            concurrency: 1,
            env: Vec::new(),
        }
    }

    /// Sets the timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the number of worker processes.
    #[must_use]
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.concurrency = workers;
        self
    }

    /// Sets the reported memory size.
    #[must_use]
    pub fn memory_mb(mut self, memory_mb: u32) -> Self {
        self.memory_mb = memory_mb;
        self
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// An HTTP API route and the function behind it (payload format 2.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// `METHOD /path` (with `{param}` and `{proxy+}`), `ANY /path` or `$default`.
    pub route_key: RouteKey,
    /// The function name.
    pub function: String,
}

impl std::str::FromStr for HttpRoute {
    type Err = ConfigError;

    /// Parses `ROUTE=FUNCTION`, e.g. `POST /tickets/classify=classify-ticket`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (route, function) = spec
            .rsplit_once('=')
            .ok_or_else(|| ConfigError::Syntax(format!("`{spec}`: expected ROUTE=FUNCTION")))?;
        Ok(Self {
            route_key: route.trim().parse()?,
            function: function.trim().to_owned(),
        })
    }
}

/// A function URL on the HTTP front: requests under `path` go to `function` as function-URL
/// events (payload format 2.0, route `$default`, `rawPath` below `path`), and a streamed
/// response (`InvokeMode: RESPONSE_STREAM`) is relayed as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionUrl {
    /// The path prefix standing for the URL's domain, e.g. `/urls/summarize`.
    pub path: String,
    /// The function name.
    pub function: String,
}

impl std::str::FromStr for FunctionUrl {
    type Err = ConfigError;

    /// Parses `FUNCTION=/PATH`, e.g. `summarize-stream=/urls/summarize`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (function, path) = split_pair(spec, '=', "FUNCTION=/PATH")?;
        let path = path.trim_end_matches('/');
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(ConfigError::Syntax(format!(
                "`{spec}`: the function URL path must start with / and hold no ? or #"
            )));
        }
        Ok(Self {
            path: path.to_owned(),
            function: function.to_owned(),
        })
    }
}

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the Invoke API; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The functions served.
    pub functions: Vec<FunctionConfig>,
    /// Address of the HTTP API front, if any; port 0 picks a free port.
    pub http_listen: Option<SocketAddr>,
    /// Routes of the HTTP API front.
    pub http_routes: Vec<HttpRoute>,
    /// Function URLs served on the HTTP front.
    pub function_urls: Vec<FunctionUrl>,
    /// Where asynchronous invocations that failed every attempt are written, one JSON file
    /// each (shaped like Lambda's on-failure destination record).
    pub dlq_dir: Option<PathBuf>,
    /// Region given to the functions and used in ARNs.
    pub region: String,
    /// Account id used in ARNs.
    pub account_id: String,
    /// Retries of a failed asynchronous invocation (Lambda: 0 to 2, default 2).
    pub async_retries: u32,
    /// Delay before the first retry; it doubles for the next (Lambda: 1 minute).
    pub async_retry_delay: Duration,
    /// Longest wait for a new process to ask for its first event.
    pub init_timeout: Duration,
    /// Longest the HTTP front waits for a function (API Gateway: 30 s), then 503.
    pub http_integration_timeout: Duration,
    /// SQS queues consumed by functions (one per function), as event source mappings.
    pub sqs_sources: Vec<SqsSource>,
}

impl Default for Config {
    /// `127.0.0.1:0`, no functions, no HTTP front, `us-east-1`, retries after 1 s and 2 s.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            functions: Vec::new(),
            http_listen: None,
            http_routes: Vec::new(),
            function_urls: Vec::new(),
            dlq_dir: None,
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            async_retries: MAX_ASYNC_RETRIES,
            async_retry_delay: Duration::from_secs(1),
            init_timeout: DEFAULT_INIT_TIMEOUT,
            http_integration_timeout: DEFAULT_HTTP_INTEGRATION_TIMEOUT,
            sqs_sources: Vec::new(),
        }
    }
}

/// A configuration that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An option value that does not parse.
    #[error("{0}")]
    Syntax(String),
    /// A bad HTTP route key.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A function name Lambda would refuse.
    #[error("invalid function name `{0}`: use 1 to 64 of A-Z a-z 0-9 - _")]
    FunctionName(String),
    /// Two functions with one name.
    #[error("function `{0}` is defined twice")]
    DuplicateFunction(String),
    /// A setting for a function that is not served.
    #[error("`{0}` is not a served function")]
    UnknownFunction(String),
    /// The binary is missing.
    #[error("function `{name}`: no executable at {}", binary.display())]
    MissingBinary {
        /// The function.
        name: String,
        /// The path given.
        binary: PathBuf,
    },
    /// A timeout out of Lambda's range.
    #[error("function `{0}`: timeout must be more than 0 and at most 900 seconds")]
    Timeout(String),
    /// Zero workers.
    #[error("function `{0}`: concurrency must be at least 1")]
    ZeroConcurrency(String),
    /// An environment variable Lambda reserves.
    #[error("function `{name}`: `{key}` is reserved by Lambda")]
    ReservedEnv {
        /// The function.
        name: String,
        /// The variable.
        key: String,
    },
    /// More retries than Lambda allows.
    #[error("async retries must be 0, 1 or 2")]
    AsyncRetries,
    /// An SQS event source mapping Lambda would refuse.
    #[error("SQS source of `{function}`: {reason}")]
    SqsSource {
        /// The function.
        function: String,
        /// Why.
        reason: String,
    },
    /// Routes or function URLs without a listener for them.
    #[error("HTTP routes and function URLs need an HTTP listen address (--http-listen)")]
    NoHttpListen,
}

impl Config {
    /// Checks names, ranges, binaries and routes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for function in &self.functions {
            let name = &function.name;
            if !valid_function_name(name) {
                return Err(ConfigError::FunctionName(name.clone()));
            }
            if !names.insert(name.as_str()) {
                return Err(ConfigError::DuplicateFunction(name.clone()));
            }
            if !function.binary.is_file() {
                return Err(ConfigError::MissingBinary {
                    name: name.clone(),
                    binary: function.binary.clone(),
                });
            }
            if function.timeout.is_zero() || function.timeout > MAX_TIMEOUT {
                return Err(ConfigError::Timeout(name.clone()));
            }
            if function.concurrency == 0 {
                return Err(ConfigError::ZeroConcurrency(name.clone()));
            }
            if let Some((key, _)) = function
                .env
                .iter()
                .find(|(key, _)| RESERVED_ENV.contains(&key.as_str()))
            {
                return Err(ConfigError::ReservedEnv {
                    name: name.clone(),
                    key: key.clone(),
                });
            }
        }
        if let Some(function) = self
            .http_routes
            .iter()
            .map(|route| &route.function)
            .chain(self.function_urls.iter().map(|url| &url.function))
            .find(|function| !names.contains(function.as_str()))
        {
            return Err(ConfigError::UnknownFunction(function.clone()));
        }
        if (!self.http_routes.is_empty() || !self.function_urls.is_empty())
            && self.http_listen.is_none()
        {
            return Err(ConfigError::NoHttpListen);
        }
        if self.async_retries > MAX_ASYNC_RETRIES {
            return Err(ConfigError::AsyncRetries);
        }
        let mut mapped = HashSet::new();
        for source in &self.sqs_sources {
            let function = &source.function;
            let refuse = |reason: String| ConfigError::SqsSource {
                function: function.clone(),
                reason,
            };
            if !names.contains(function.as_str()) {
                return Err(ConfigError::UnknownFunction(function.clone()));
            }
            if !mapped.insert(function.as_str()) {
                return Err(refuse(
                    "lambda-local maps one queue per function".to_owned(),
                ));
            }
            source.check().map_err(refuse)?;
        }
        Ok(())
    }
}

/// Lambda's function name rule (the name part of an ARN).
pub(crate) fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Command line of `lambda-local`. Options that take a list also read a comma-separated
/// `LAMBDA_LOCAL_*` variable.
#[derive(Debug, Parser)]
#[command(name = "lambda-local", version, about)]
pub struct Cli {
    /// Address of the Invoke API (port 0: a free port; the URL is printed as stdout's first line).
    #[arg(long, env = "LAMBDA_LOCAL_LISTEN", default_value = "127.0.0.1:3001")]
    pub listen: SocketAddr,
    /// A function to serve, NAME=PATH_TO_BINARY (repeatable).
    #[arg(
        long = "function",
        env = "LAMBDA_LOCAL_FUNCTIONS",
        value_delimiter = ','
    )]
    pub functions: Vec<String>,
    /// Timeout in seconds, NAME=SECONDS or SECONDS for every function [default: 3].
    #[arg(long = "timeout", env = "LAMBDA_LOCAL_TIMEOUTS", value_delimiter = ',')]
    pub timeouts: Vec<String>,
    /// Memory size reported to the function, NAME=MB or MB [default: 128].
    #[arg(long = "memory", env = "LAMBDA_LOCAL_MEMORY", value_delimiter = ',')]
    pub memory: Vec<String>,
    /// Worker processes, NAME=N or N [default: 1]; more invocations queue.
    #[arg(
        long = "concurrency",
        env = "LAMBDA_LOCAL_CONCURRENCY",
        value_delimiter = ','
    )]
    pub concurrency: Vec<String>,
    /// An environment variable for one function, NAME:KEY=VALUE (repeatable).
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// Write asynchronous invocations that failed every attempt to this directory.
    #[arg(long, env = "LAMBDA_LOCAL_DLQ_DIR")]
    pub dlq_dir: Option<PathBuf>,
    /// An HTTP API route, "METHOD /path=FUNCTION" or "$default=FUNCTION" (repeatable).
    #[arg(long = "http", env = "LAMBDA_LOCAL_HTTP_ROUTES", value_delimiter = ',')]
    pub http_routes: Vec<String>,
    /// A function URL on the HTTP front, "FUNCTION=/PATH" (repeatable): requests under PATH
    /// go to FUNCTION as function-URL events; streamed responses are relayed as they come.
    #[arg(
        long = "function-url",
        env = "LAMBDA_LOCAL_FUNCTION_URLS",
        value_delimiter = ','
    )]
    pub function_urls: Vec<String>,
    /// Address of the HTTP API front (its URL is printed as stdout's second line).
    #[arg(long, env = "LAMBDA_LOCAL_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Region given to the functions and used in ARNs.
    #[arg(long, env = "LAMBDA_LOCAL_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Account id used in ARNs.
    #[arg(long, env = "LAMBDA_LOCAL_ACCOUNT_ID", default_value = "123456789012")]
    pub account_id: String,
    /// Retries of a failed asynchronous invocation (0 to 2).
    #[arg(long, env = "LAMBDA_LOCAL_ASYNC_RETRIES", default_value_t = MAX_ASYNC_RETRIES)]
    pub async_retries: u32,
    /// Delay before the first async retry in milliseconds; it doubles for the second.
    #[arg(
        long,
        env = "LAMBDA_LOCAL_ASYNC_RETRY_DELAY_MS",
        default_value_t = 1000
    )]
    pub async_retry_delay_ms: u64,
    /// Longest wait, in seconds, for a new process to ask for its first event.
    #[arg(long, env = "LAMBDA_LOCAL_INIT_TIMEOUT", default_value_t = 10.0)]
    pub init_timeout: f64,
    /// An SQS queue consumed by a function, FUNCTION=QUEUE_URL (one per function).
    #[arg(
        long = "sqs-source",
        env = "LAMBDA_LOCAL_SQS_SOURCES",
        value_delimiter = ','
    )]
    pub sqs_sources: Vec<String>,
    /// Most messages per invocation, FUNCTION=N (1 to 10000; over 10 needs a window) [default: 10].
    #[arg(
        long = "sqs-batch-size",
        env = "LAMBDA_LOCAL_SQS_BATCH_SIZES",
        value_delimiter = ','
    )]
    pub sqs_batch_sizes: Vec<String>,
    /// Longest wait to fill a batch, FUNCTION=SECONDS (0 to 300) [default: 0].
    #[arg(
        long = "sqs-batching-window",
        env = "LAMBDA_LOCAL_SQS_BATCHING_WINDOWS",
        value_delimiter = ','
    )]
    pub sqs_batching_windows: Vec<String>,
    /// Most invocations in flight for a mapping, FUNCTION=N (2 to 1000) [default: the workers].
    #[arg(
        long = "sqs-max-concurrency",
        env = "LAMBDA_LOCAL_SQS_MAX_CONCURRENCY",
        value_delimiter = ','
    )]
    pub sqs_max_concurrency: Vec<String>,
    /// Turn on ReportBatchItemFailures for the mapping of FUNCTION (repeatable).
    #[arg(
        long = "sqs-report-batch-item-failures",
        env = "LAMBDA_LOCAL_SQS_REPORT_BATCH_ITEM_FAILURES",
        value_delimiter = ','
    )]
    pub sqs_report_batch_item_failures: Vec<String>,
}

impl Cli {
    /// Turns the options into a validated [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mut functions = Vec::new();
        for spec in &self.functions {
            let (name, path) = split_pair(spec, '=', "NAME=PATH")?;
            functions.push(FunctionConfig::new(name, path));
        }
        for spec in &self.timeouts {
            apply(&mut functions, spec, |function, value| {
                let seconds: f64 = parse_number(value, "timeout seconds")?;
                function.timeout = seconds_to_duration(seconds)
                    .ok_or_else(|| ConfigError::Timeout(function.name.clone()))?;
                Ok(())
            })?;
        }
        for spec in &self.memory {
            apply(&mut functions, spec, |function, value| {
                function.memory_mb = parse_number(value, "memory size")?;
                Ok(())
            })?;
        }
        for spec in &self.concurrency {
            apply(&mut functions, spec, |function, value| {
                function.concurrency = parse_number(value, "concurrency")?;
                Ok(())
            })?;
        }
        for spec in &self.env {
            let (name, assignment) = split_pair(spec, ':', "NAME:KEY=VALUE")?;
            let (key, value) = split_pair(assignment, '=', "NAME:KEY=VALUE")?;
            let function = functions
                .iter_mut()
                .find(|function| function.name == name)
                .ok_or_else(|| ConfigError::UnknownFunction(name.to_owned()))?;
            function.env.push((key.to_owned(), value.to_owned()));
        }
        let http_routes = self
            .http_routes
            .iter()
            .map(|spec| spec.parse())
            .collect::<Result<Vec<HttpRoute>, _>>()?;
        let function_urls = self
            .function_urls
            .iter()
            .map(|spec| spec.parse())
            .collect::<Result<Vec<FunctionUrl>, _>>()?;
        let init_timeout = seconds_to_duration(self.init_timeout)
            .ok_or_else(|| ConfigError::Syntax("init timeout must be positive".to_owned()))?;
        let sqs_sources = self.sqs_sources()?;
        let config = Config {
            listen: self.listen,
            functions,
            http_listen: self.http_listen,
            http_routes,
            function_urls,
            dlq_dir: self.dlq_dir,
            region: self.region,
            account_id: self.account_id,
            async_retries: self.async_retries,
            async_retry_delay: Duration::from_millis(self.async_retry_delay_ms),
            init_timeout,
            http_integration_timeout: DEFAULT_HTTP_INTEGRATION_TIMEOUT,
            sqs_sources,
        };
        config.validate()?;
        Ok(config)
    }

    /// The `--sqs-*` options as mappings; every setting names a mapped function.
    fn sqs_sources(&self) -> Result<Vec<SqsSource>, ConfigError> {
        let mut sources = Vec::new();
        for spec in &self.sqs_sources {
            let (function, url) = split_pair(spec, '=', "FUNCTION=QUEUE_URL")?;
            sources.push(SqsSource::new(function, url));
        }
        for spec in &self.sqs_batch_sizes {
            let (source, value) = sqs_setting(&mut sources, spec, "FUNCTION=N")?;
            source.batch_size = parse_number(value, "batch size")?;
        }
        for spec in &self.sqs_batching_windows {
            let (source, value) = sqs_setting(&mut sources, spec, "FUNCTION=SECONDS")?;
            let seconds = parse_number(value, "batching window in whole seconds")?;
            source.batching_window = Duration::from_secs(seconds);
        }
        for spec in &self.sqs_max_concurrency {
            let (source, value) = sqs_setting(&mut sources, spec, "FUNCTION=N")?;
            source.maximum_concurrency = Some(parse_number(value, "maximum concurrency")?);
        }
        for function in &self.sqs_report_batch_item_failures {
            mapped(&mut sources, function.trim())?.report_batch_item_failures = true;
        }
        Ok(sources)
    }
}

/// The mapping of `function`.
fn mapped<'a>(
    sources: &'a mut [SqsSource],
    function: &str,
) -> Result<&'a mut SqsSource, ConfigError> {
    sources
        .iter_mut()
        .find(|source| source.function == function)
        .ok_or_else(|| ConfigError::SqsSource {
            function: function.to_owned(),
            reason: "no --sqs-source for this function".to_owned(),
        })
}

/// The mapping named by `FUNCTION=VALUE`, and the value.
fn sqs_setting<'a, 'b>(
    sources: &'a mut [SqsSource],
    spec: &'b str,
    expected: &str,
) -> Result<(&'a mut SqsSource, &'b str), ConfigError> {
    let (function, value) = split_pair(spec, '=', expected)?;
    Ok((mapped(sources, function)?, value))
}

/// Applies `NAME=VALUE` to one function, or a bare `VALUE` to all of them.
fn apply(
    functions: &mut [FunctionConfig],
    spec: &str,
    mut set: impl FnMut(&mut FunctionConfig, &str) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    match spec.split_once('=') {
        Some((name, value)) => {
            let function = functions
                .iter_mut()
                .find(|function| function.name == name.trim())
                .ok_or_else(|| ConfigError::UnknownFunction(name.trim().to_owned()))?;
            set(function, value.trim())
        }
        None => functions
            .iter_mut()
            .try_for_each(|function| set(function, spec.trim())),
    }
}

fn split_pair<'a>(
    spec: &'a str,
    separator: char,
    expected: &str,
) -> Result<(&'a str, &'a str), ConfigError> {
    spec.split_once(separator)
        .map(|(left, right)| (left.trim(), right.trim()))
        .filter(|(left, _)| !left.is_empty())
        .ok_or_else(|| ConfigError::Syntax(format!("`{spec}`: expected {expected}")))
}

fn parse_number<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::Syntax(format!("`{value}` is not a valid {what}")))
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && seconds > 0.0 && seconds <= MAX_TIMEOUT.as_secs_f64())
        .then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut argv = vec!["lambda-local"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses")
    }

    #[test]
    fn per_function_and_global_settings() {
        let exe = std::env::current_exe().expect("test binary path");
        let exe = exe.to_string_lossy();
        let config = cli(&[
            "--function",
            &format!("a={exe}"),
            "--function",
            &format!("b={exe}"),
            "--timeout",
            "30",
            "--timeout",
            "b=1.5",
            "--concurrency",
            "a=2",
            "--env",
            "a:GREETING=hi=there",
            "--http",
            "POST /x/{id}=a",
            "--function-url",
            "b=/urls/b/",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .into_config()
        .expect("valid");
        let a = &config.functions[0];
        let b = &config.functions[1];
        assert_eq!(a.timeout, Duration::from_secs(30));
        assert_eq!(b.timeout, Duration::from_millis(1500));
        assert_eq!((a.concurrency, b.concurrency), (2, 1));
        assert_eq!(a.env, vec![("GREETING".to_owned(), "hi=there".to_owned())]);
        assert_eq!(config.http_routes[0].function, "a");
        assert_eq!(
            config.function_urls,
            [FunctionUrl {
                path: "/urls/b".into(),
                function: "b".into()
            }]
        );
    }

    #[test]
    fn sqs_source_settings() {
        let exe = std::env::current_exe().expect("test binary path");
        let f = format!("f={}", exe.to_string_lossy());
        let url = "http://127.0.0.1:5000/123456789012/uploads";
        let config = cli(&[
            "--function",
            &f,
            "--sqs-source",
            &format!("f={url}"),
            "--sqs-batch-size",
            "f=50",
            "--sqs-batching-window",
            "f=2",
            "--sqs-max-concurrency",
            "f=5",
            "--sqs-report-batch-item-failures",
            "f",
        ])
        .into_config()
        .expect("valid");
        assert_eq!(
            config.sqs_sources,
            [SqsSource::new("f", url)
                .batch_size(50)
                .batching_window(Duration::from_secs(2))
                .maximum_concurrency(5)
                .report_batch_item_failures(true)]
        );
        let defaults = cli(&["--function", &f, "--sqs-source", &format!("f={url}")])
            .into_config()
            .expect("valid");
        assert_eq!(defaults.sqs_sources, [SqsSource::new("f", url)]);
        let source = format!("f={url}");
        let cases: [&[&str]; 6] = [
            &["--function", &f, "--sqs-source", &format!("g={url}")],
            &[
                "--function",
                &f,
                "--sqs-source",
                &source,
                "--sqs-source",
                &source,
            ],
            &["--function", &f, "--sqs-source", "f=not-a-url"],
            &["--function", &f, "--sqs-batch-size", "f=5"],
            &[
                "--function",
                &f,
                "--sqs-source",
                &source,
                "--sqs-batch-size",
                "f=11",
            ],
            &[
                "--function",
                &f,
                "--sqs-source",
                &source,
                "--sqs-max-concurrency",
                "f=1",
            ],
        ];
        for args in cases {
            assert!(cli(args).into_config().is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn refuses_bad_settings() {
        let exe = std::env::current_exe().expect("test binary path");
        let f = format!("f={}", exe.to_string_lossy());
        let cases: [&[&str]; 9] = [
            &[
                "--function",
                &f,
                "--function-url",
                "f=/u",
                "--function-url",
                "f=nopath",
            ],
            &[
                "--function",
                &f,
                "--function-url",
                "g=/u",
                "--http-listen",
                "127.0.0.1:0",
            ],
            &["--function", "bad name=/bin/true"],
            &["--function", "f=/no/such/binary"],
            &["--function", &f, "--timeout", "901"],
            &["--function", &f, "--timeout", "g=3"],
            &["--function", &f, "--concurrency", "0"],
            &["--function", &f, "--env", "f:AWS_LAMBDA_RUNTIME_API=x"],
            &["--function", &f, "--http", "GET /=f"],
        ];
        for args in cases {
            assert!(cli(args).into_config().is_err(), "{args:?} accepted");
        }
    }
}
