//! The `lambda-local` binary: endpoints on stdout's first two lines, options from flags and
//! `LAMBDA_LOCAL_*` variables, function logs on stderr, SIGTERM kills the function processes.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use common::{echo_bin, eventually, http};
use serde_json::{Value, json};

/// Longest wait for something a correct binary does at once; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(60);

struct Running {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str], env: &[(&str, &str)], lines: usize, stderr: Stdio) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-local"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("lambda-local starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut read = Vec::new();
    for _ in 0..lines {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read stdout");
        read.push(line.trim().to_owned());
    }
    Running { child, lines: read }
}

async fn sdk_invoke(endpoint: &str, function: &str, payload: Value) -> Value {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .load()
        .await;
    let output = aws_sdk_lambda::Client::new(&config)
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .expect("invoke");
    serde_json::from_slice(output.payload().map(Blob::as_ref).unwrap_or_default()).expect("JSON")
}

#[tokio::test]
async fn prints_endpoints_serves_and_stops_on_sigterm() {
    let function = format!("echo={}", echo_bin().display());
    let mut running = run(
        &[
            "--listen",
            "127.0.0.1:0",
            "--function",
            &function,
            "--env",
            "echo:GREETING=from the command line",
            "--http",
            "POST /echo=echo",
            "--http-listen",
            "127.0.0.1:0",
        ],
        &[("LAMBDA_LOCAL_TIMEOUTS", "echo=2")],
        2,
        Stdio::null(),
    );
    let endpoint = running.lines[0].clone();
    let http_endpoint = running.lines[1].clone();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert!(
        http_endpoint.starts_with("http://127.0.0.1:"),
        "{http_endpoint}"
    );
    let body = sdk_invoke(&endpoint, "echo", json!({"env": "GREETING"})).await;
    assert_eq!(body["env"], "from the command line");
    // The timeout from LAMBDA_LOCAL_TIMEOUTS ends a call that would sleep for ten minutes.
    let timed_out = sdk_invoke(&endpoint, "echo", json!({"sleep_ms": 600_000})).await;
    assert_eq!(timed_out["errorType"], "Sandbox.Timedout", "{timed_out}");
    let message = timed_out["errorMessage"].as_str().expect("message");
    assert!(
        message.ends_with("Task timed out after 2.00 seconds"),
        "{message}"
    );

    let addr: SocketAddr = http_endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let response = http(addr, "POST", "/echo", &[], b"{}").await;
    assert_eq!(response.status, 200);
    let pid = response.json()["pid"].as_u64().expect("pid");

    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut exit = None;
    let stopped = eventually(HANG_GUARD, || {
        exit = running.child.try_wait().expect("try_wait");
        exit.is_some()
    })
    .await;
    assert!(
        stopped,
        "lambda-local still running {HANG_GUARD:?} after SIGTERM"
    );
    let exit = exit.expect("exit status");
    assert!(exit.success(), "{exit:?}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "function process {pid} survived"
    );
}

/// The benches and the local stack read these lines from lambda-local's stderr.
#[tokio::test]
async fn function_output_and_report_lines_go_to_stderr() {
    let log = tempfile::NamedTempFile::new().expect("temp file");
    let function = format!("echo={}", echo_bin().display());
    let running = run(
        &["--listen", "127.0.0.1:0", "--function", &function],
        &[],
        1,
        Stdio::from(log.reopen().expect("log file")),
    );
    let body = sdk_invoke(
        &running.lines[0],
        "echo",
        json!({"log": "a line from the function"}),
    )
    .await;
    let request_id = body["request_id"].as_str().expect("request id");
    let read = || std::fs::read_to_string(log.path()).expect("read log");
    let end = format!("[echo] END RequestId: {request_id}");
    let function_line = "[echo] a line from the function";
    eventually(HANG_GUARD, || {
        let text = read();
        text.contains(&end) && text.contains(function_line)
    })
    .await;
    let text = read();
    assert!(
        text.contains(&format!(
            "[echo] START RequestId: {request_id} Version: $LATEST"
        )),
        "{text}"
    );
    assert!(text.contains(function_line), "{text}");
    assert!(text.contains(&end), "{text}");
    let report = text
        .lines()
        .find(|line| {
            line.starts_with(&format!(
                "[echo] REPORT RequestId: {request_id}\tDuration: "
            ))
        })
        .unwrap_or_else(|| panic!("no REPORT line in {text}"));
    assert!(report.contains("\tInit Duration: "), "{report}");
}

#[test]
fn bad_options_fail_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_lambda-local"))
        .args(["--listen", "127.0.0.1:0", "--function", "x=/no/such/file"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/no/such/file"), "{stderr}");
    assert!(output.stdout.is_empty());
}
