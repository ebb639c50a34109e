//! Function processes: started with the environment Lambda gives a sandbox, their output
//! forwarded, killed when recycled.

use std::io;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::{Instant, SystemTime};

use tokio::process::{Child, Command};

use crate::logs;
use crate::pool::FunctionSpec;

/// One running function process (a sandbox).
#[derive(Debug)]
pub(crate) struct FunctionProcess {
    child: Child,
    /// When it was started, for the REPORT line's init duration.
    pub(crate) started: Instant,
}

impl FunctionProcess {
    /// Starts the function's binary pointed at the Runtime API on `runtime_api`.
    pub(crate) fn spawn(spec: &FunctionSpec, runtime_api: SocketAddr) -> io::Result<Self> {
        let config = &spec.config;
        let task_root = config
            .binary
            .parent()
            .map(|dir| dir.to_string_lossy().into_owned())
            .unwrap_or_default();
        let handler = config
            .binary
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bootstrap".to_owned());
        let now = SystemTime::now();
        let day = crate::clock::iso8601(now)
            .get(..10)
            .unwrap_or("1970-01-01")
            .replace('-', "/");
        let stream = uuid::Uuid::new_v4().simple().to_string();
        let mut command = Command::new(&config.binary);
        command
            // A process per concurrent invocation: the runtime must not multiplex.
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .envs(config.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &config.name)
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                config.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("{day}/[$LATEST]{stream}"),
            )
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", &spec.region)
            .env("AWS_DEFAULT_REGION", &spec.region)
            .env("_HANDLER", handler)
            .env("LAMBDA_TASK_ROOT", &task_root)
            .env("LAMBDA_RUNTIME_DIR", &task_root)
            .env("TZ", ":UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let prefix = format!("[{}] ", config.name);
        if let Some(stdout) = child.stdout.take() {
            logs::forward(stdout, prefix.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            logs::forward(stderr, prefix);
        }
        Ok(Self {
            child,
            started: Instant::now(),
        })
    }

    /// Waits for the process to end.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Whether it has already ended.
    pub(crate) fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills it and waits for it to end.
    pub(crate) async fn kill(mut self) {
        // Already gone is fine.
        let _ = self.child.kill().await;
    }
}

/// The reason Lambda gives for a runtime that exited: `Runtime exited with error: exit
/// status 1`, `... signal: killed`, or `Runtime exited without providing a reason`.
pub(crate) fn exit_reason(status: &io::Result<ExitStatus>) -> String {
    let status = match status {
        Ok(status) => status,
        Err(error) => return format!("Runtime exited with error: {error}"),
    };
    if let Some(code) = status.code() {
        if code == 0 {
            return "Runtime exited without providing a reason".to_owned();
        }
        return format!("Runtime exited with error: exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => "aborted".to_owned(),
                9 => "killed".to_owned(),
                11 => "segmentation fault".to_owned(),
                15 => "terminated".to_owned(),
                other => format!("signal {other}"),
            };
            return format!("Runtime exited with error: signal: {name}");
        }
    }
    "Runtime exited without providing a reason".to_owned()
}
