//! Starting a function binary the way Lambda does, to check what its cold start does.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a cold start did.
#[derive(Debug)]
pub struct ColdStart {
    /// Whether the process exited successfully (or was still running after a minute).
    pub success: bool,
    /// Its standard error.
    pub stderr: String,
    /// The first request it sent to the Runtime API, if any (request line, headers, body).
    pub runtime_request: Option<String>,
}

/// Runs the function binary at `path` with only `vars` (and `PATH`, a region and a Runtime
/// API that records the first request and answers `202`) in its environment. A binary that
/// reads a bad setting must exit at once; one that does not is stopped after a minute (a
/// guard, not a timing assertion) and reported as a success.
pub fn run_cold_start(path: &str, vars: &[(&str, &str)]) -> ColdStart {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let (sent, received) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut socket, _)) = listener.accept() {
            let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                if complete(&request) {
                    break;
                }
            }
            let _ = socket.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
            let _ = sent.send(String::from_utf8_lossy(&request).into_owned());
        }
    });
    let mut child = Command::new(path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the function binary");
    let started = Instant::now();
    let success = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.success();
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    ColdStart {
        success,
        stderr,
        runtime_request: received.try_recv().ok(),
    }
}

/// Whether `request` holds its headers and as many body bytes as `content-length` says.
fn complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

/// Asserts that each `(variable, bad value)` alone fails the cold start of the binary at
/// `path`: the process exits with an error naming the variable, and reports it to the
/// Runtime API's `/init/error` as a `ConfigError`.
pub fn assert_bad_settings_fail_the_cold_start(path: &str, cases: &[(&str, &str)]) {
    let cases: Vec<(&str, Option<&str>)> = cases.iter().map(|&(n, v)| (n, Some(v))).collect();
    assert_settings_fail_the_cold_start(path, &[], &cases);
}

/// Like [`assert_bad_settings_fail_the_cold_start`] for a binary that needs `good`
/// settings to start: each case replaces its variable in `good` with a bad value, or
/// leaves it unset (`None`).
pub fn assert_settings_fail_the_cold_start(
    path: &str,
    good: &[(&str, &str)],
    cases: &[(&str, Option<&str>)],
) {
    for &(variable, value) in cases {
        let mut vars: Vec<(&str, &str)> = good
            .iter()
            .copied()
            .filter(|(n, _)| *n != variable)
            .collect();
        if let Some(value) = value {
            vars.push((variable, value));
        }
        let run = run_cold_start(path, &vars);
        assert!(
            !run.success,
            "{variable}={value:?} did not fail the cold start"
        );
        assert!(
            run.stderr.contains(variable) && run.stderr.contains("configuration error"),
            "{variable}={value:?}: the error does not name the variable: {}",
            run.stderr
        );
        let request = run.runtime_request.unwrap_or_default();
        assert!(
            request.starts_with("POST /2018-06-01/runtime/init/error")
                && request.contains("ConfigError")
                && request.contains(variable),
            "{variable}={value:?}: not reported to /init/error: {request}"
        );
    }
}
