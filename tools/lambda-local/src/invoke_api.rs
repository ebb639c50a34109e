//! The Lambda Invoke API, `POST /2015-03-31/functions/{FunctionName}/invocations`, as the
//! AWS SDKs and boto3 call it: `RequestResponse`, `Event` and `DryRun`, function errors as
//! `200` + `X-Amz-Function-Error`, service errors typed by `x-amzn-ErrorType`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use percent_encoding::percent_decode_str;

use crate::api_error::ApiError;
use crate::body::{BodyError, read_limited};
use crate::event_invoke;
use crate::function_ref::{FunctionRef, valid_qualifier};
use crate::functions::{Functions, MAX_EVENT_PAYLOAD, MAX_SYNC_PAYLOAD};
use crate::invocation::{Invocation, Outcome};

/// Longest `X-Amz-Client-Context` Lambda accepts (base64).
const MAX_CLIENT_CONTEXT: usize = 3583;

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
    DryRun,
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
    let target = resolve(&functions, function_name, query)?;
    let invocation_type = invocation_type(headers)?;
    let tail = match header_str(headers, "x-amz-log-type")? {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "Unsupported log type: {other}"
            )));
        }
    };
    let client_context = client_context(headers)?;
    let (limit, operation) = match invocation_type {
        InvocationType::Event => (MAX_EVENT_PAYLOAD, "InvokeAsync"),
        _ => (MAX_SYNC_PAYLOAD, "Invoke"),
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
    let mut invocation = Invocation::new(payload, target.invoked_arn);
    invocation.client_context = client_context;
    let request_id = invocation.request_id.clone();
    match invocation_type {
        InvocationType::DryRun => Ok(empty(StatusCode::NO_CONTENT, &request_id)),
        InvocationType::Event => {
            event_invoke::spawn(functions, target.name, invocation);
            Ok(empty(StatusCode::ACCEPTED, &request_id))
        }
        InvocationType::RequestResponse => {
            let Some(pool) = functions.pools.get(&target.name) else {
                return Err(ApiError::not_found(&target.name));
            };
            let completion = pool.invoke(invocation).await;
            let (body, function_error) = match completion.outcome {
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
            if tail {
                set(
                    response_headers,
                    "x-amz-log-result",
                    &BASE64.encode(&completion.log_tail),
                );
            }
            Ok(response)
        }
    }
}

/// The function an Invoke call names.
struct Target {
    name: String,
    invoked_arn: String,
}

fn resolve(
    functions: &Functions,
    function_name: &str,
    query: Option<&str>,
) -> Result<Target, ApiError> {
    let reference = FunctionRef::parse(function_name)
        .map_err(|error| ApiError::validation(error.to_string()))?;
    let query_qualifier = query_param(query, "Qualifier").filter(|q| !q.is_empty());
    if let Some(qualifier) = &query_qualifier
        && !valid_qualifier(qualifier)
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{qualifier}' at 'qualifier' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
        )));
    }
    let qualifier = match (reference.qualifier, query_qualifier) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid_parameter(
                "The derived qualifier from the function name does not match the specified qualifier.",
            ));
        }
        (a, b) => a.or(b),
    };
    let invoked_arn = functions.arn(&reference.name, qualifier.as_deref());
    if !functions.pools.contains_key(&reference.name) {
        return Err(ApiError::not_found(&invoked_arn));
    }
    Ok(Target {
        name: reference.name,
        invoked_arn,
    })
}

fn invocation_type(headers: &HeaderMap) -> Result<InvocationType, ApiError> {
    match header_str(headers, "x-amz-invocation-type")? {
        None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
        Some("Event") => Ok(InvocationType::Event),
        Some("DryRun") => Ok(InvocationType::DryRun),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy \
             constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
        ))),
    }
}

/// Decodes `X-Amz-Client-Context` (base64 JSON) into compact JSON for the runtime.
fn client_context(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(encoded) = header_str(headers, "x-amz-client-context")? else {
        return Ok(None);
    };
    let invalid =
        || ApiError::invalid_content("Client context must be a valid Base64-encoded JSON object.");
    if encoded.len() > MAX_CLIENT_CONTEXT {
        return Err(ApiError::invalid_parameter(format!(
            "Client context must be at most {MAX_CLIENT_CONTEXT} bytes"
        )));
    }
    let decoded = BASE64.decode(encoded.trim()).map_err(|_| invalid())?;
    let value: serde_json::Value = serde_json::from_slice(&decoded).map_err(|_| invalid())?;
    if !value.is_object() {
        return Err(invalid());
    }
    Ok(Some(value.to_string()))
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

fn empty(status: StatusCode, request_id: &str) -> Response {
    let mut response = status.into_response();
    set(response.headers_mut(), "x-amzn-requestid", request_id);
    response
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

    #[test]
    fn decodes_client_context() {
        let mut headers = HeaderMap::new();
        let encoded = BASE64.encode(br#"{"custom": {"a": 1}}"#);
        headers.insert(
            "x-amz-client-context",
            HeaderValue::from_str(&encoded).expect("ascii"),
        );
        assert_eq!(
            client_context(&headers).expect("valid").as_deref(),
            Some(r#"{"custom":{"a":1}}"#)
        );
        headers.insert("x-amz-client-context", HeaderValue::from_static("!!"));
        assert!(client_context(&headers).is_err());
    }
}
