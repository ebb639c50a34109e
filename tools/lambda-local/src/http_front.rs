//! A local API Gateway HTTP API: routes requests to functions with payload format 2.0 and
//! answers as API Gateway does (`404 {"message":"Not Found"}`, `500 {"message":"Internal
//! Server Error"}` on a function error, `503` past the integration timeout, `413` over 10 MB).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::json;

use crate::body::{BodyError, read_limited};
use crate::config::HttpRoute;
use crate::functions::{Functions, MAX_SYNC_PAYLOAD};
use crate::invocation::{Invocation, Outcome};
use crate::payload_v2::{self, HttpRequest};

/// API Gateway's HTTP API request size limit.
pub const MAX_HTTP_REQUEST: usize = 10 * 1024 * 1024;

/// The HTTP front's routes and settings.
#[derive(Debug)]
pub(crate) struct HttpFront {
    pub(crate) functions: Arc<Functions>,
    pub(crate) routes: Vec<HttpRoute>,
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
    let protocol = match parts.version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };
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
