//! The Lambda Invoke API, `POST /2015-03-31/functions/{FunctionName}/invocations`, as the
//! AWS SDKs and boto3 call it: `RequestResponse` and `Event`, function errors as `200` +
//! `X-Amz-Function-Error`, service errors typed by `x-amzn-ErrorType`. Options not served
//! here (qualifiers, `DryRun`, `LogType: Tail`, client context) are refused, not ignored.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use percent_encoding::percent_decode_str;

use crate::api_error::ApiError;
use crate::body::{BodyError, read_limited};
use crate::event_invoke;
use crate::function_ref;
use crate::functions::{Functions, MAX_EVENT_PAYLOAD, MAX_SYNC_PAYLOAD};
use crate::invocation::{Invocation, Outcome};

/// The Invoke API router.
pub(crate) fn router(functions: Arc<Functions>) -> Router {
    Router::new()
        .route(
            "/2015-03-31/functions/{function_name}/invocations",
            post(invoke),
        )
        .fallback(|| async { ApiError::unknown_operation() })
        .with_state(functions)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
}

async fn invoke(
    State(functions): State<Arc<Functions>>,
    function_name: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(Path(function_name)) = function_name else {
        return ApiError::validation("FunctionName is not valid UTF-8 once decoded")
            .into_response();
    };
    match invoke_inner(functions, &function_name, query.as_deref(), &headers, body).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!("invoke {function_name}: {error}");
            error.into_response()
        }
    }
}

async fn invoke_inner(
    functions: Arc<Functions>,
    function_name: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let name = resolve(&functions, function_name)?;
    let invocation_type = invocation_type(headers)?;
    refuse_unsupported(query, headers)?;
    let (limit, operation) = match invocation_type {
        InvocationType::Event => (MAX_EVENT_PAYLOAD, "InvokeAsync"),
        InvocationType::RequestResponse => (MAX_SYNC_PAYLOAD, "Invoke"),
    };
    let payload = match read_limited(body, limit).await {
        Ok(payload) => payload,
        Err(BodyError::TooLarge(limit)) => return Err(ApiError::too_large(limit, operation)),
        Err(BodyError::Read(error)) => {
            return Err(ApiError::service(format!(
                "cannot read the request: {error}"
            )));
        }
    };
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(&payload).map_err(|error| {
            ApiError::invalid_content(format!(
                "Could not parse request body into json: Could not parse payload into json: {error}"
            ))
        })?;
        payload
    };
    let invocation = Invocation::new(payload);
    let request_id = invocation.request_id.clone();
    match invocation_type {
        InvocationType::Event => {
            event_invoke::spawn(functions, name, invocation);
            let mut response = StatusCode::ACCEPTED.into_response();
            set(response.headers_mut(), "x-amzn-requestid", &request_id);
            Ok(response)
        }
        InvocationType::RequestResponse => {
            let Some(pool) = functions.pools.get(&name) else {
                return Err(ApiError::not_found(&name));
            };
            let (body, function_error) = match pool.invoke(invocation).await {
                Outcome::Success(body) => (body, false),
                Outcome::Failed(error) => (error.body, true),
                Outcome::Unavailable => {
                    return Err(ApiError::service("The server is shutting down")
                        .with_request_id(&request_id));
                }
            };
            let mut response = (StatusCode::OK, Body::from(body)).into_response();
            let response_headers = response.headers_mut();
            set(response_headers, "x-amzn-requestid", &request_id);
            set(response_headers, "x-amz-executed-version", "$LATEST");
            response_headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if function_error {
                response_headers.insert(
                    "x-amz-function-error",
                    HeaderValue::from_static("Unhandled"),
                );
            }
            Ok(response)
        }
    }
}

/// The served function that `function_name` names: by its name, or by its ARN in this
/// server's region and account (an ARN elsewhere is not found, as in AWS).
fn resolve(functions: &Functions, function_name: &str) -> Result<String, ApiError> {
    let name = function_ref::function_name(function_name)
        .map_err(|error| ApiError::validation(error.to_string()))?;
    let arn = functions.arn(name);
    let named: &str = if function_name == name {
        &arn
    } else {
        function_name
    };
    if named != arn || !functions.pools.contains_key(name) {
        return Err(ApiError::not_found(named));
    }
    Ok(name.to_owned())
}

fn invocation_type(headers: &HeaderMap) -> Result<InvocationType, ApiError> {
    match header_str(headers, "x-amz-invocation-type")? {
        None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
        Some("Event") => Ok(InvocationType::Event),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "Unsupported invocation type: {other} (lambda-local serves RequestResponse and Event)"
        ))),
    }
}

/// Refuses the Invoke options that lambda-local does not serve, rather than ignoring them.
fn refuse_unsupported(query: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(qualifier) = query_param(query, "Qualifier").filter(|q| !q.is_empty()) {
        return Err(ApiError::invalid_parameter(format!(
            "Unsupported qualifier: {qualifier} (lambda-local serves no versions or aliases)"
        )));
    }
    if let Some(log_type) = header_str(headers, "x-amz-log-type")?.filter(|t| *t != "None") {
        return Err(ApiError::invalid_parameter(format!(
            "Unsupported log type: {log_type} (lambda-local writes function logs to its stderr)"
        )));
    }
    if headers.contains_key("x-amz-client-context") {
        return Err(ApiError::invalid_parameter(
            "Unsupported client context (lambda-local passes none to functions)",
        ));
    }
    Ok(())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ApiError::invalid_parameter(format!("Header {name} is not ASCII")))
        })
        .transpose()
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode_str(value).decode_utf8_lossy().into_owned())
    })
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_query_parameters() {
        assert_eq!(
            query_param(Some("a=1&Qualifier=%24LATEST"), "Qualifier").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(
            query_param(Some("Qualifier"), "Qualifier").as_deref(),
            Some("")
        );
        assert_eq!(query_param(None, "Qualifier"), None);
    }
}
