//! Function URLs on the HTTP front: function-URL events, buffered answers, and streamed
//! responses relayed chunk by chunk while the function is still writing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{config, echo, http, start};
use lambda_local::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start_url() -> (Server, SocketAddr) {
    // Long enough for a slow machine: the streaming test holds the function at its gate.
    let mut config = config(vec![echo("echo").timeout(Duration::from_secs(120))]);
    config.http_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.function_urls = vec!["echo=/urls/echo".parse().expect("function URL")];
    let server = start(config).await;
    let addr = server.http_addr().expect("HTTP front");
    (server, addr)
}

/// Reads from `stream` into `seen` until it contains `needle`; a safety bound turns a
/// relay that holds chunks back into a failure instead of a hang.
async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(seen).contains(needle) {
            let n = stream.read(&mut buffer).await.expect("read");
            assert!(n > 0, "connection closed before {needle:?}");
            seen.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{needle:?} never arrived: {}",
        String::from_utf8_lossy(seen)
    );
}

#[tokio::test]
async fn a_streamed_response_is_relayed_before_the_function_ends() {
    let (server, addr) = start_url().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = dir.path().join("gate");
    let body = serde_json::json!({
        "stream": ["first-chunk\n", "second-chunk\n", "last-chunk\n"],
        "gate": gate,
    })
    .to_string();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /urls/echo HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "first-chunk").await;
    let head = String::from_utf8_lossy(&seen).into_owned();
    assert!(head.starts_with("HTTP/1.1 202"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    assert!(
        !head.contains("second-chunk"),
        "the function is held at its gate"
    );
    std::fs::write(&gate, b"go").expect("open the gate");
    read_until(&mut stream, &mut seen, "last-chunk").await;
    let all = String::from_utf8_lossy(&seen).into_owned();
    let first = all.find("first-chunk").expect("first");
    let second = all.find("second-chunk").expect("second");
    assert!(first < second && second < all.find("last-chunk").expect("last"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_buffered_answer_is_a_payload_v2_response_and_errors_are_502() {
    let (server, addr) = start_url().await;
    let response = http(
        addr,
        "POST",
        "/urls/echo/sub?x=1",
        &[("Content-Type", "application/json")],
        br#"{"status": 201}"#,
    )
    .await;
    assert_eq!(response.status, 201);
    let event = &response.json()["echo"];
    assert_eq!(event["routeKey"], "$default");
    assert_eq!(event["rawPath"], "/sub");
    assert_eq!(event["rawQueryString"], "x=1");
    let failed = http(
        addr,
        "POST",
        "/urls/echo",
        &[("Content-Type", "application/json")],
        br#"{"fail": "Boom"}"#,
    )
    .await;
    assert_eq!(failed.status, 502);
    let other = http(addr, "POST", "/urls/echoes", &[], b"").await;
    assert_eq!(other.status, 404);
    server.shutdown().await;
}
