//! Helpers shared by the integration tests: a server serving the echo fixture, a real AWS
//! SDK Lambda client pointed at it, and a bare HTTP/1.1 client for the HTTP front.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::primitives::Blob;
use lambda_local::{Config, FunctionConfig, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The echo fixture binary (`src/bin/echo_fn.rs`).
pub fn echo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lambda-local-echo-fn"))
}

/// The echo fixture as a function named `name`.
pub fn echo(name: &str) -> FunctionConfig {
    FunctionConfig::new(name, echo_bin())
}

/// A config serving `functions`, with fast async retries.
pub fn config(functions: Vec<FunctionConfig>) -> Config {
    Config {
        functions,
        async_retry_delay: Duration::from_millis(50),
        ..Config::default()
    }
}

pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

/// A server serving the echo fixture as `echo`.
pub async fn start_echo() -> Server {
    start(config(vec![echo("echo")])).await
}

/// A real SDK client for `server`, retries off so every error surfaces.
pub async fn client(server: &Server) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(server.endpoint())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    Client::new(&config)
}

/// A synchronous invoke of `function` with `payload`.
pub async fn invoke(client: &Client, function: &str, payload: Value) -> InvokeOutput {
    client
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .expect("invoke call succeeds")
}

/// The response payload as JSON.
pub fn payload(output: &InvokeOutput) -> Value {
    let bytes = output.payload().map(Blob::as_ref).unwrap_or_default();
    serde_json::from_slice(bytes).expect("payload is JSON")
}

/// Waits up to `limit` for `check` to hold.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// Lines of a marker file written by the echo fixture.
pub fn marker_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A response from the bare HTTP client.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`) and reads the whole response.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    // The server may answer (413) before reading everything; ignore a reset mid-body.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}
