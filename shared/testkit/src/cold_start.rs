//! Starting a function binary the way Lambda does, to check what its cold start does.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the function binary at `path` with only `vars` (and `PATH`) in its environment and
/// no Lambda Runtime API to reach; returns its exit success and standard error. A binary
/// that reads a bad setting must exit at once; one that does not is stopped after a minute
/// (a guard, not a timing assertion) and reported as not having failed.
pub fn run_cold_start(path: &str, vars: &[(&str, &str)]) -> (bool, String) {
    let mut child = Command::new(path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
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
    (success, stderr)
}

/// Asserts that each `(variable, bad value)` alone fails the cold start of the binary at
/// `path` with a message naming the variable.
pub fn assert_bad_settings_fail_the_cold_start(path: &str, cases: &[(&str, &str)]) {
    for (variable, value) in cases {
        let (success, stderr) = run_cold_start(path, &[(variable, value)]);
        assert!(!success, "{variable}={value:?} did not fail the cold start");
        assert!(
            stderr.contains(variable) && stderr.contains("configuration error"),
            "{variable}={value:?}: the error does not name the variable: {stderr}"
        );
    }
}
