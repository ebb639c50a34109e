//! A worker: one sandbox slot of a function. It starts the process on demand (cold start),
//! hands it one invocation at a time, enforces the timeout, and recycles the process after a
//! timeout, a crash or an init error, as Lambda resets a sandbox.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::millis;
use crate::invocation::{FunctionError, Invocation, Outcome};
use crate::logs;
use crate::pool::FunctionSpec;
use crate::process::{FunctionProcess, exit_reason};
use crate::runtime_api::{Delivery, RuntimeApi, SlotEvent, SlotHandle};
use crate::stats::Counters;

/// A live process and its Runtime API slot.
#[derive(Debug)]
struct Sandbox {
    process: FunctionProcess,
    slot: SlotHandle,
}

/// One of a function's concurrent execution environments.
#[derive(Debug)]
pub(crate) struct Worker {
    spec: Arc<FunctionSpec>,
    counters: Arc<Counters>,
    runtime: RuntimeApi,
    sandbox: Option<Sandbox>,
}

/// How the wait for an invocation ended.
enum Ending {
    /// The process answered and stays warm.
    Answered(Outcome),
    /// The process must go (timeout, crash, init error, shutdown).
    Recycle(Outcome, Status),
}

/// The `Status` Lambda prints on the REPORT line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Success,
    Error,
    Timeout,
}

impl Worker {
    /// A worker with its Runtime API listener bound; no process yet.
    pub(crate) async fn new(spec: Arc<FunctionSpec>, counters: Arc<Counters>) -> io::Result<Self> {
        let runtime = RuntimeApi::bind(spec.arn.clone(), spec.max_response_bytes).await?;
        Ok(Self {
            spec,
            counters,
            runtime,
            sandbox: None,
        })
    }

    /// Whether a process is up (an invocation here would be warm).
    pub(crate) fn is_warm(&mut self) -> bool {
        self.sandbox
            .as_mut()
            .is_some_and(|sandbox| !sandbox.process.has_exited())
    }

    /// Kills the process, if any.
    pub(crate) async fn stop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.runtime.close_slot();
            drop(sandbox.slot);
            sandbox.process.kill().await;
        }
    }

    /// Runs one invocation to its end.
    pub(crate) async fn invoke(
        &mut self,
        invocation: Invocation,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Outcome {
        if *shutdown.borrow() {
            return Outcome::Unavailable;
        }
        let started = Instant::now();
        let request_id = invocation.request_id.clone();
        Counters::bump(&self.counters.invocations);
        self.log(&format!("START RequestId: {request_id} Version: $LATEST"));
        let cold = !self.is_warm();
        if cold && let Err(error) = self.cold_start().await {
            let outcome = Outcome::Failed(FunctionError::platform(
                "Runtime.InvalidEntrypoint",
                format!(
                    "RequestId: {request_id} Error: fork/exec {}: {error}",
                    self.spec.config.binary.display()
                ),
            ));
            return self.finish(&request_id, started, None, outcome, Status::Error);
        }
        let (ending, init_duration) = self.run(invocation, cold, shutdown).await;
        let (outcome, status) = match ending {
            Ending::Answered(outcome) => {
                let status = match outcome {
                    Outcome::Success(_) => Status::Success,
                    _ => Status::Error,
                };
                (outcome, status)
            }
            Ending::Recycle(outcome, status) => {
                self.stop().await;
                (outcome, status)
            }
        };
        self.finish(&request_id, started, init_duration, outcome, status)
    }

    /// Starts a fresh process on a fresh slot.
    async fn cold_start(&mut self) -> io::Result<()> {
        self.stop().await;
        let slot = self.runtime.open_slot();
        match FunctionProcess::spawn(&self.spec, self.runtime.addr()) {
            Ok(process) => {
                Counters::bump(&self.counters.cold_starts);
                self.sandbox = Some(Sandbox { process, slot });
                Ok(())
            }
            Err(error) => {
                self.runtime.close_slot();
                Err(error)
            }
        }
    }

    /// Hands the invocation over and waits for its answer, the process's exit, the timeout
    /// or shutdown. Returns the init duration on a cold start.
    async fn run(
        &mut self,
        invocation: Invocation,
        cold: bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> (Ending, Option<Duration>) {
        let request_id = invocation.request_id.clone();
        let timeout = self.spec.config.timeout;
        let init_timeout = self.spec.init_timeout;
        let Some(sandbox) = self.sandbox.as_mut() else {
            let error = FunctionError::platform("Runtime.Unknown", "no sandbox".to_owned());
            return (Ending::Recycle(Outcome::Failed(error), Status::Error), None);
        };
        let delivery = Delivery {
            invocation,
            timeout,
        };
        if sandbox.slot.deliveries.try_send(delivery).is_err() {
            let error = FunctionError::platform(
                "Runtime.Unknown",
                format!("RequestId: {request_id} Error: the runtime was not ready"),
            );
            return (Ending::Recycle(Outcome::Failed(error), Status::Error), None);
        }
        let init_deadline = tokio::time::Instant::now() + init_timeout;
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut init_duration = None;
        let ending = loop {
            enum Wake {
                Event(Option<SlotEvent>),
                Exited(io::Result<std::process::ExitStatus>),
                Timer,
                Shutdown,
            }
            let wake_at = deadline.unwrap_or(init_deadline);
            let wake = tokio::select! {
                biased;
                event = sandbox.slot.events.recv() => Wake::Event(event),
                status = sandbox.process.wait() => Wake::Exited(status),
                () = tokio::time::sleep_until(wake_at) => Wake::Timer,
                _ = shutdown.changed() => Wake::Shutdown,
            };
            let ours = |id: &str| id == request_id;
            match wake {
                Wake::Event(Some(SlotEvent::Delivered { request_id: id })) if ours(&id) => {
                    deadline = Some(tokio::time::Instant::now() + timeout);
                    if cold {
                        init_duration = Some(sandbox.process.started.elapsed());
                    }
                }
                Wake::Event(Some(SlotEvent::Response {
                    request_id: id,
                    body,
                })) if ours(&id) => {
                    break Ending::Answered(Outcome::Success(body));
                }
                Wake::Event(Some(SlotEvent::Error {
                    request_id: id,
                    error,
                })) if ours(&id) => break Ending::Answered(Outcome::Failed(error)),
                Wake::Event(Some(SlotEvent::ResponseTooLarge { request_id: id })) if ours(&id) => {
                    let error = FunctionError::platform(
                        "Function.ResponseSizeTooLarge",
                        format!(
                            "Response payload size exceeded maximum allowed payload size ({} bytes).",
                            self.spec.max_response_bytes
                        ),
                    );
                    break Ending::Answered(Outcome::Failed(error));
                }
                Wake::Event(Some(SlotEvent::InitError(error))) => {
                    break Ending::Recycle(Outcome::Failed(error), Status::Error);
                }
                // Answers for other request ids are stale; ignore them.
                Wake::Event(Some(_)) => {}
                Wake::Event(None) => {
                    let error = FunctionError::platform(
                        "Runtime.Unknown",
                        format!("RequestId: {request_id} Error: runtime API closed"),
                    );
                    break Ending::Recycle(Outcome::Failed(error), Status::Error);
                }
                Wake::Exited(status) => {
                    Counters::bump(&self.counters.crashes);
                    let error = FunctionError::exited(&request_id, &exit_reason(&status));
                    break Ending::Recycle(Outcome::Failed(error), Status::Error);
                }
                Wake::Timer => {
                    Counters::bump(&self.counters.timeouts);
                    let error = match deadline {
                        Some(_) => FunctionError::timed_out(&request_id, timeout, "Task"),
                        None => FunctionError::timed_out(&request_id, init_timeout, "Init"),
                    };
                    break Ending::Recycle(Outcome::Failed(error), Status::Timeout);
                }
                Wake::Shutdown => break Ending::Recycle(Outcome::Unavailable, Status::Error),
            }
        };
        (ending, init_duration)
    }

    /// Logs END and REPORT, counts errors, returns the outcome.
    fn finish(
        &self,
        request_id: &str,
        started: Instant,
        init_duration: Option<Duration>,
        outcome: Outcome,
        status: Status,
    ) -> Outcome {
        // Like Lambda, Duration excludes the init phase, and billing rounds up to 1 ms.
        let duration = started
            .elapsed()
            .saturating_sub(init_duration.unwrap_or_default());
        let billed = duration.as_micros().div_ceil(1000).max(1);
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB",
            millis(duration),
            self.spec.config.memory_mb
        );
        if let Some(init) = init_duration {
            report.push_str(&format!("\tInit Duration: {} ms", millis(init)));
        }
        match (&outcome, status) {
            (_, Status::Timeout) => report.push_str("\tStatus: timeout"),
            (Outcome::Failed(error), _) if error.error_type.starts_with("Runtime.") => {
                report.push_str(&format!(
                    "\tStatus: error\tError Type: {}",
                    error.error_type
                ));
            }
            _ => {}
        }
        if let Outcome::Failed(error) = &outcome {
            Counters::bump(&self.counters.errors);
            if status == Status::Timeout || error.error_type.starts_with("Runtime.") {
                // Lambda logs its own errors in the function's log.
                if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&error.body)
                    && let Some(message) = body.get("errorMessage").and_then(|m| m.as_str())
                {
                    self.log(message);
                }
            }
        }
        self.log(&format!("END RequestId: {request_id}"));
        self.log(&report);
        outcome
    }

    fn log(&self, line: &str) {
        logs::line(&self.spec.log_prefix, line.as_bytes());
    }
}
