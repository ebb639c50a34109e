//! The `bedrock-local` binary: prints its address first, serves the SDK, stops on SIGTERM.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{MODEL, body};

#[tokio::test]
async fn binary_prints_its_address_and_stops_on_sigterm() {
    let script =
        std::env::temp_dir().join(format!("bedrock-local-cli-{}.json", std::process::id()));
    std::fs::write(&script, r#"{"rules": [{"generation": "from the binary"}]}"#).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bedrock-local"))
        .args(["--listen", "127.0.0.1:0", "--max-queue", "0", "--scripted"])
        .arg(&script)
        .args(["--requests-per-minute", "50"])
        .env_remove("BEDROCK_LOCAL_MODEL")
        .env("BEDROCK_LOCAL_TOKENS_PER_MINUTE", "1000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let endpoint = first_line.trim().to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let addr = endpoint.trim_start_matches("http://").parse().unwrap();

    let health = common::raw(addr, "GET", "/health", b"").await;
    assert_eq!(health.status, 200);

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_bedrockruntime::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let client = aws_sdk_bedrockruntime::Client::new(&config);
    let reply = common::invoke(&client, MODEL, body("hi", 10)).await;
    assert_eq!(reply["generation"], "from the binary");
    let stats = common::raw(addr, "GET", "/_local/stats", b"").await.json();
    assert_eq!(
        (&stats["requests"], &stats["completed"]),
        (&1.into(), &1.into())
    );
    assert_eq!(stats["tokens_per_minute_limit"], 1000);
    assert_eq!(stats["requests_per_minute_limit"], 50);
    assert_eq!(stats["max_queue"], 0);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..100 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_file(&script);
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("server did not stop on SIGTERM")
    });
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_options_fail_fast() {
    let output = Command::new(env!("CARGO_BIN_EXE_bedrock-local"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--scripted",
            "/nonexistent/rules.json",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
}
