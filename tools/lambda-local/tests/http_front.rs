//! The HTTP API front: payload 2.0 events that `aws_lambda_events` parses, responses
//! converted back, API Gateway's 404 / 500 / 413 answers.

mod common;

use std::net::SocketAddr;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use common::{config, echo, http, start};
use lambda_local::Server;
use serde_json::{Value, json};

async fn start_front() -> (Server, SocketAddr) {
    let mut config = config(vec![echo("echo")]);
    config.http_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.http_routes = vec![
        "POST /tickets/classify=echo".parse().expect("route"),
        "GET /tickets/{id}=echo".parse().expect("route"),
        "ANY /files/{proxy+}=echo".parse().expect("route"),
    ];
    let server = start(config).await;
    let addr = server.http_addr().expect("HTTP front");
    assert_eq!(server.http_endpoint(), Some(format!("http://{addr}")));
    (server, addr)
}

/// The event the function received, from the echoed body.
fn received(body: &Value) -> (Value, ApiGatewayV2httpRequest) {
    let event = body["echo"].clone();
    let parsed = serde_json::from_value(event.clone()).expect("a valid payload 2.0 event");
    (event, parsed)
}

#[tokio::test]
async fn route_invokes_the_function_with_a_payload_v2_event() {
    let (server, addr) = start_front().await;
    let response = http(
        addr,
        "POST",
        "/tickets/classify?lang=en&tag=a&tag=b",
        &[
            ("Content-Type", "application/json"),
            ("Cookie", "session=abc; theme=dark"),
            ("User-Agent", "test-agent"),
        ],
        br#"{"subject":"printer on fire"}"#,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("x-echo"), Some("yes"));
    assert_eq!(response.headers_named("set-cookie").len(), 2);
    assert!(response.header("apigw-requestid").is_some());
    let (event, parsed) = received(&response.json());
    assert_eq!(event["version"], "2.0");
    assert_eq!(parsed.route_key.as_deref(), Some("POST /tickets/classify"));
    assert_eq!(parsed.raw_path.as_deref(), Some("/tickets/classify"));
    assert_eq!(
        parsed.raw_query_string.as_deref(),
        Some("lang=en&tag=a&tag=b")
    );
    assert_eq!(event["queryStringParameters"]["tag"], "a,b");
    assert_eq!(
        parsed.cookies,
        Some(vec!["session=abc".to_owned(), "theme=dark".to_owned()])
    );
    assert_eq!(event["headers"]["content-type"], "application/json");
    assert!(event["headers"].get("cookie").is_none());
    assert_eq!(parsed.request_context.http.method.as_str(), "POST");
    assert_eq!(
        parsed.request_context.http.user_agent.as_deref(),
        Some("test-agent")
    );
    assert_eq!(
        parsed.request_context.http.source_ip.as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(parsed.request_context.stage.as_deref(), Some("$default"));
    assert_eq!(
        parsed.request_context.request_id.as_deref(),
        response.header("apigw-requestid")
    );
    assert!(parsed.request_context.time_epoch > 0);
    assert_eq!(
        parsed.body.as_deref(),
        Some(r#"{"subject":"printer on fire"}"#)
    );
    assert!(!parsed.is_base64_encoded);
    server.shutdown().await;
}

#[tokio::test]
async fn path_parameters_and_binary_bodies() {
    let (server, addr) = start_front().await;
    let response = http(addr, "GET", "/tickets/T%2042", &[], b"").await;
    assert_eq!(response.status, 200);
    let (event, parsed) = received(&response.json());
    assert_eq!(
        parsed.path_parameters.get("id").map(String::as_str),
        Some("T 42")
    );
    assert!(event.get("body").is_none());
    let response = http(
        addr,
        "PUT",
        "/files/a/b.png",
        &[("Content-Type", "image/png")],
        b"\x89PNG\r\n\x1a\n\xff",
    )
    .await;
    assert_eq!(response.status, 200);
    let (event, parsed) = received(&response.json());
    assert_eq!(event["routeKey"], "ANY /files/{proxy+}");
    assert_eq!(
        parsed.path_parameters.get("proxy").map(String::as_str),
        Some("a/b.png")
    );
    assert!(parsed.is_base64_encoded);
    assert_eq!(parsed.body.as_deref(), Some("iVBORw0KGgr/"));
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_route_is_404_not_found() {
    let (server, addr) = start_front().await;
    for (method, path) in [
        ("GET", "/nope"),
        ("DELETE", "/tickets/classify"),
        ("GET", "/files"),
    ] {
        let response = http(addr, method, path, &[], b"").await;
        assert_eq!(response.status, 404, "{method} {path}");
        assert_eq!(response.json(), json!({"message": "Not Found"}));
    }
    assert_eq!(server.stats("echo").expect("stats").invocations, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn function_error_is_500_internal_server_error() {
    let (server, addr) = start_front().await;
    let response = http(
        addr,
        "POST",
        "/tickets/classify",
        &[("Content-Type", "application/json")],
        br#"{"fail":"Boom"}"#,
    )
    .await;
    assert_eq!(response.status, 500);
    assert_eq!(response.json(), json!({"message": "Internal Server Error"}));
    // A status chosen by the function passes through.
    let response = http(
        addr,
        "POST",
        "/tickets/classify",
        &[("Content-Type", "application/json")],
        br#"{"status":422}"#,
    )
    .await;
    assert_eq!(response.status, 422);
    server.shutdown().await;
}

#[tokio::test]
async fn request_over_10_mb_is_413() {
    let (server, addr) = start_front().await;
    let body = vec![b'a'; lambda_local::MAX_HTTP_REQUEST + 1];
    let response = http(
        addr,
        "POST",
        "/tickets/classify",
        &[("Content-Type", "text/plain")],
        &body,
    )
    .await;
    assert_eq!(response.status, 413);
    assert_eq!(
        response.json(),
        json!({"message": "Request Entity Too Large"})
    );
    assert_eq!(server.stats("echo").expect("stats").invocations, 0);
    server.shutdown().await;
}
