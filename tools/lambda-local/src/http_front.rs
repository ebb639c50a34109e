//! A local API Gateway HTTP API: routes requests to functions with payload format 2.0 and
//! answers as API Gateway does (`404 {"message":"Not Found"}`, `500 {"message":"Internal
//! Server Error"}` on a function error, `503` past the integration timeout, `413` over 10 MB).
//!
//! It also serves function URLs under configured paths: the same payload format with route
//! `$default`, no integration timeout (the function's own applies), `502` on a function
//! error, and response streaming: a streamed response (the HTTP integration prelude, JSON
//! `{statusCode, headers, cookies}` then 8 NUL bytes, then the body) is relayed chunk by
//! chunk as the function writes it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::body::{BodyError, read_limited};
use crate::config::{FunctionUrl, HttpRoute};
use crate::functions::{Functions, MAX_SYNC_PAYLOAD};
use crate::invocation::{Invocation, Outcome};
use crate::payload_v2::{self, HttpRequest};

/// API Gateway's HTTP API request size limit.
pub const MAX_HTTP_REQUEST: usize = 10 * 1024 * 1024;

/// Largest HTTP integration prelude accepted from a streaming function.
const MAX_PRELUDE: usize = 64 * 1024;

/// Chunks of a streamed response buffered between the function and the caller.
const STREAM_BUFFER: usize = 16;

/// The HTTP front's routes and settings.
#[derive(Debug)]
pub(crate) struct HttpFront {
    pub(crate) functions: Arc<Functions>,
    pub(crate) routes: Vec<HttpRoute>,
    pub(crate) function_urls: Vec<FunctionUrl>,
    pub(crate) integration_timeout: Duration,
    pub(crate) port: u16,
}

/// The HTTP front router: every path goes through the route table.
pub(crate) fn router(front: Arc<HttpFront>) -> Router {
    Router::new().fallback(handle).with_state(front)
}

fn message(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// An API Gateway style request id (`apigw-requestid`), e.g. `JKJaXmPLvHcESHA=`.
fn request_id() -> String {
    let random = uuid::Uuid::new_v4();
    let bytes = random.as_bytes();
    BASE64.encode(bytes.get(..11).unwrap_or(bytes))
}

async fn handle(
    State(front): State<Arc<HttpFront>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = request_id();
    let mut response = route(&front, peer, request, &request_id).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    response
}

async fn route(
    front: &HttpFront,
    peer: SocketAddr,
    request: Request,
    request_id: &str,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_limited(body, MAX_HTTP_REQUEST).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
        Err(BodyError::Read(_)) => return message(StatusCode::BAD_REQUEST, "Bad Request"),
    };
    let method = parts.method.as_str();
    let path = parts.uri.path();
    if let Some((url, raw_path)) = function_url(&front.function_urls, path) {
        let protocol = protocol(parts.version);
        let invocation = Invocation::new(Bytes::new());
        let event = payload_v2::event(&HttpRequest {
            method,
            path: raw_path,
            query: parts.uri.query(),
            headers: &parts.headers,
            body: &body,
            source_ip: peer.ip(),
            port: front.port,
            protocol,
            route_key: "$default",
            path_parameters: &Default::default(),
            request_id,
            trace_id: &invocation.trace_id,
            account_id: &front.functions.account_id,
            at: SystemTime::now(),
        });
        return invoke_url(front, &url.function, invocation, event).await;
    }
    let Some((route, path_parameters)) = front
        .routes
        .iter()
        .filter_map(|route| {
            route
                .route_key
                .matches(method, path)
                .map(|(params, specificity)| (route, params, specificity))
        })
        .max_by_key(|(_, _, specificity)| *specificity)
        .map(|(route, params, _)| (route, params))
    else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(pool) = front.functions.pools.get(&route.function) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let route_key = route.route_key.to_string();
    let mut invocation = Invocation::new(Bytes::new());
    let protocol = protocol(parts.version);
    let event = payload_v2::event(&HttpRequest {
        method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip(),
        port: front.port,
        protocol,
        route_key: &route_key,
        path_parameters: &path_parameters,
        request_id,
        trace_id: &invocation.trace_id,
        account_id: &front.functions.account_id,
        at: SystemTime::now(),
    });
    let payload = Bytes::from(event.to_string());
    if payload.len() > MAX_SYNC_PAYLOAD {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    invocation.payload = payload;
    match tokio::time::timeout(front.integration_timeout, pool.invoke(invocation)).await {
        Ok(Outcome::Success(output)) => match payload_v2::response(&output) {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!("{}: {error}", route.function);
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        },
        Ok(Outcome::Failed(error)) => {
            tracing::info!("{}: function error {}", route.function, error.error_type);
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Ok(Outcome::Unavailable) | Err(_) => {
            message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// The function URL serving `path`, and the path below it (`/` at its root).
fn function_url<'a>(urls: &'a [FunctionUrl], path: &'a str) -> Option<(&'a FunctionUrl, &'a str)> {
    urls.iter().find_map(|url| {
        let rest = path.strip_prefix(url.path.as_str())?;
        match rest {
            "" => Some((url, "/")),
            _ if rest.starts_with('/') => Some((url, rest)),
            _ => None,
        }
    })
}

/// Invokes a function-URL function and answers with its response: streamed as it comes
/// when the function streams, else its buffered payload 2.0 response.
async fn invoke_url(
    front: &HttpFront,
    function: &str,
    mut invocation: Invocation,
    event: serde_json::Value,
) -> Response {
    let payload = Bytes::from(event.to_string());
    if payload.len() > MAX_SYNC_PAYLOAD {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    invocation.payload = payload;
    let (sink, mut chunks) = mpsc::channel(STREAM_BUFFER);
    invocation.stream = Some(sink);
    let functions = Arc::clone(&front.functions);
    let name = function.to_owned();
    // The invocation runs to its end even if the caller leaves, as on Lambda.
    let mut outcome = tokio::spawn(async move {
        match functions.pools.get(&name) {
            Some(pool) => pool.invoke(invocation).await,
            None => Outcome::Unavailable,
        }
    });
    let mut head = BytesMut::new();
    let finished = loop {
        tokio::select! {
            chunk = chunks.recv() => match chunk {
                Some(chunk) => {
                    head.extend_from_slice(&chunk);
                    if let Some(response) = streamed(&mut head, &mut chunks) {
                        return response;
                    }
                    if head.len() > MAX_PRELUDE {
                        tracing::warn!("{function}: no response prelude in {MAX_PRELUDE} bytes");
                        return message(StatusCode::BAD_GATEWAY, "Internal Server Error");
                    }
                }
                None => break (&mut outcome).await,
            },
            finished = &mut outcome => break finished,
        }
    };
    // The invocation ended: a short stream may still be waiting in the channel.
    while let Ok(chunk) = chunks.try_recv() {
        head.extend_from_slice(&chunk);
    }
    if !head.is_empty() {
        return streamed(&mut head, &mut chunks).unwrap_or_else(|| {
            tracing::warn!("{function}: streamed response without a prelude");
            message(StatusCode::BAD_GATEWAY, "Internal Server Error")
        });
    }
    match finished {
        Ok(Outcome::Success(output)) => match payload_v2::response(&output) {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!("{function}: {error}");
                message(StatusCode::BAD_GATEWAY, "Internal Server Error")
            }
        },
        Ok(Outcome::Failed(error)) => {
            tracing::info!("{function}: function error {}", error.error_type);
            message(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }
        Ok(Outcome::Unavailable) | Err(_) => {
            message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
    }
}

/// Once `head` holds the whole prelude: the response, whose body is the rest of `head` and
/// then every chunk still to come.
fn streamed(head: &mut BytesMut, chunks: &mut mpsc::Receiver<Bytes>) -> Option<Response> {
    let (prelude, first) = split_prelude(head)?;
    let mut response = match prelude_response(&prelude) {
        Some(response) => response,
        None => return Some(message(StatusCode::BAD_GATEWAY, "Internal Server Error")),
    };
    let rest = std::mem::replace(chunks, mpsc::channel(1).1);
    let body = futures::stream::once(async move { first })
        .chain(futures::stream::unfold(rest, |mut rest| async move {
            rest.recv().await.map(|chunk| (chunk, rest))
        }))
        .map(Ok::<_, Infallible>);
    *response.body_mut() = Body::from_stream(body);
    Some(response)
}

/// Splits `head` at the 8 NUL bytes that end the prelude: (prelude, body so far).
fn split_prelude(head: &mut BytesMut) -> Option<(Bytes, Bytes)> {
    let at = head.windows(8).position(|w| w == [0u8; 8])?;
    let prelude = head.split_to(at).freeze();
    let body = head.split_off(8).freeze();
    Some((prelude, body))
}

/// The status and headers of a prelude `{"statusCode", "headers", "cookies"}`.
fn prelude_response(prelude: &[u8]) -> Option<Response> {
    let value: serde_json::Value = serde_json::from_slice(prelude).ok()?;
    let status = value
        .get("statusCode")
        .and_then(serde_json::Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(map) = value.get("headers").and_then(serde_json::Value::as_object) {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                headers.insert(name, value);
            }
        }
    }
    for cookie in value
        .get("cookies")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
    {
        if let Ok(cookie) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, cookie);
        }
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prelude_ends_at_eight_nul_bytes() {
        let mut head = BytesMut::from(&b"{\"statusCode\":201,\"headers\":{\"content-type\":\"text/event-stream\"},\"cookies\":[\"a=1\"]}\0\0\0\0\0\0\0\0event: x\n"[..]);
        let (prelude, body) = split_prelude(&mut head).expect("complete");
        assert_eq!(&body[..], b"event: x\n");
        let response = prelude_response(&prelude).expect("valid");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["set-cookie"], "a=1");
        let mut partial = BytesMut::from(&b"{\"statusCode\":200}\0\0\0"[..]);
        assert!(split_prelude(&mut partial).is_none());
    }

    #[test]
    fn function_urls_match_whole_path_segments() {
        let urls = [FunctionUrl {
            path: "/urls/s".into(),
            function: "s".into(),
        }];
        assert_eq!(function_url(&urls, "/urls/s").map(|(_, p)| p), Some("/"));
        assert_eq!(function_url(&urls, "/urls/s/x").map(|(_, p)| p), Some("/x"));
        assert!(function_url(&urls, "/urls/sx").is_none());
        assert!(function_url(&urls, "/other").is_none());
    }
}
