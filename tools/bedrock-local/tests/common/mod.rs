//! Helpers shared by the integration tests: an in-process server, an AWS SDK client pointed at
//! it, and a bare HTTP/1.1 client for what the SDK hides. Each test binary uses a subset.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{Credentials, Region};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ResponseStream;
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;
use bedrock_local::{Backend, Config, Rule, Script, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const MODEL: &str = "us.meta.llama3-2-3b-instruct-v1:0";

/// Starts a scripted server with these rules.
pub async fn scripted(rules: Vec<Rule>) -> Server {
    start(Config {
        backend: Backend::Scripted(Script::new(rules)),
        ..Config::default()
    })
    .await
}

pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

/// An SDK client for `server`, with retries off so every error surfaces.
pub async fn client(server: &Server) -> Client {
    client_with(server, RetryConfig::disabled()).await
}

pub async fn client_with(server: &Server, retry: RetryConfig) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(server.endpoint())
        .retry_config(retry)
        .load()
        .await;
    Client::new(&config)
}

/// A Llama 3 chat prompt with one user message and an open assistant turn.
pub fn llama_prompt(user: &str) -> String {
    format!(
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    )
}

pub fn body(prompt: &str, max_gen_len: u32) -> Blob {
    Blob::new(
        json!({"prompt": prompt, "max_gen_len": max_gen_len, "temperature": 0.0})
            .to_string()
            .into_bytes(),
    )
}

/// InvokeModel; the response body as JSON.
pub async fn invoke(client: &Client, model: &str, body: Blob) -> Value {
    let output = client
        .invoke_model()
        .model_id(model)
        .body(body)
        .send()
        .await
        .expect("invoke succeeds");
    assert_eq!(output.content_type(), "application/json");
    serde_json::from_slice(output.body().as_ref()).expect("JSON body")
}

/// What a response stream delivered: the model bytes of each chunk, then the error if it failed.
#[derive(Debug)]
pub struct Streamed {
    pub raw_chunks: Vec<Vec<u8>>,
    pub error: Option<ResponseStreamError>,
}

impl Streamed {
    /// The chunks as JSON.
    pub fn chunks(&self) -> Vec<Value> {
        self.raw_chunks
            .iter()
            .map(|bytes| serde_json::from_slice(bytes).expect("chunk is JSON"))
            .collect()
    }

    /// The generated text, all chunks joined.
    pub fn text(&self) -> String {
        self.chunks()
            .iter()
            .map(|c| c["generation"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// InvokeModelWithResponseStream to the end of the stream.
pub async fn stream(client: &Client, model: &str, body: Blob) -> Streamed {
    let mut output = client
        .invoke_model_with_response_stream()
        .model_id(model)
        .body(body)
        .send()
        .await
        .expect("stream starts");
    let mut raw_chunks = Vec::new();
    loop {
        match output.body.recv().await {
            Ok(Some(ResponseStream::Chunk(part))) => {
                raw_chunks.push(part.bytes().expect("chunk has bytes").as_ref().to_vec());
            }
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => {
                return Streamed {
                    raw_chunks,
                    error: None,
                };
            }
            Err(error) => {
                return Streamed {
                    raw_chunks,
                    error: Some(error.into_service_error()),
                };
            }
        }
    }
}

/// A response read by [`raw`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A bare HTTP/1.1 request with no signature, no Content-Type and no Accept header.
pub async fn raw(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> RawResponse {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    socket.write_all(body).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: response[split + 4..].to_vec(),
    }
}

/// Longest real time to wait for something that needs no timer; only a hang reaches it.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Awaits `future` without letting tokio's paused clock move: this task yields between polls
/// instead of waiting, so the runtime always has work and never auto-advances the clock,
/// however long the socket I/O takes. For futures that need no timer to fire.
pub async fn still<F: Future>(what: &str, future: F) -> F::Output {
    let guard = std::time::Instant::now();
    let mut future = std::pin::pin!(future);
    loop {
        let polled = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        if let Poll::Ready(output) = polled {
            return output;
        }
        assert!(
            guard.elapsed() < HANG_GUARD,
            "waited {HANG_GUARD:?} for {what}"
        );
        tokio::task::yield_now().await;
    }
}
