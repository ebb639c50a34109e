//! Bedrock error types and how they go on the wire: HTTP error responses before a stream starts,
//! exception frames inside one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The Bedrock Runtime error shapes the emulator can answer with.
///
/// In a scripted file they are written by name, e.g. `"ThrottlingException"`; the lower-camel
/// event-stream spelling (`"throttlingException"`) is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum ErrorKind {
    /// 400: the request is invalid.
    #[serde(alias = "validationException")]
    ValidationException,
    /// 403: the caller may not use the model.
    #[serde(alias = "accessDeniedException")]
    AccessDeniedException,
    /// 404: the model is not served.
    #[serde(alias = "resourceNotFoundException")]
    ResourceNotFoundException,
    /// 408: the model took too long.
    #[serde(alias = "modelTimeoutException")]
    ModelTimeoutException,
    /// 424: the model failed while processing the request.
    #[serde(alias = "modelErrorException")]
    ModelErrorException,
    /// 424: the model failed while streaming (stream-only shape).
    #[serde(alias = "modelStreamErrorException")]
    ModelStreamErrorException,
    /// 429: too many requests.
    #[serde(alias = "throttlingException")]
    ThrottlingException,
    /// 429: the model is not ready yet.
    #[serde(alias = "modelNotReadyException")]
    ModelNotReadyException,
    /// 400: an account quota was exceeded.
    #[serde(alias = "serviceQuotaExceededException")]
    ServiceQuotaExceededException,
    /// 500: an internal failure.
    #[serde(alias = "internalServerException")]
    InternalServerException,
    /// 503: the service is unavailable.
    #[serde(alias = "serviceUnavailableException")]
    ServiceUnavailableException,
    /// 404: no such operation (unknown path or method).
    #[serde(alias = "unknownOperationException")]
    UnknownOperationException,
}

impl ErrorKind {
    /// The shape name, as sent in `x-amzn-errortype`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ValidationException => "ValidationException",
            Self::AccessDeniedException => "AccessDeniedException",
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::ModelTimeoutException => "ModelTimeoutException",
            Self::ModelErrorException => "ModelErrorException",
            Self::ModelStreamErrorException => "ModelStreamErrorException",
            Self::ThrottlingException => "ThrottlingException",
            Self::ModelNotReadyException => "ModelNotReadyException",
            Self::ServiceQuotaExceededException => "ServiceQuotaExceededException",
            Self::InternalServerException => "InternalServerException",
            Self::ServiceUnavailableException => "ServiceUnavailableException",
            Self::UnknownOperationException => "UnknownOperationException",
        }
    }

    /// The HTTP status Bedrock uses for this error.
    pub fn status(self) -> StatusCode {
        match self {
            Self::ValidationException | Self::ServiceQuotaExceededException => {
                StatusCode::BAD_REQUEST
            }
            Self::AccessDeniedException => StatusCode::FORBIDDEN,
            Self::ResourceNotFoundException | Self::UnknownOperationException => {
                StatusCode::NOT_FOUND
            }
            Self::ModelTimeoutException => StatusCode::REQUEST_TIMEOUT,
            Self::ModelErrorException | Self::ModelStreamErrorException => {
                StatusCode::FAILED_DEPENDENCY
            }
            Self::ThrottlingException | Self::ModelNotReadyException => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::InternalServerException => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailableException => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `:exception-type` of this error inside a response stream. Kinds the stream cannot
    /// carry become `modelStreamErrorException`.
    pub fn stream_name(self) -> &'static str {
        match self {
            Self::ThrottlingException => "throttlingException",
            Self::ModelTimeoutException => "modelTimeoutException",
            Self::ServiceUnavailableException => "serviceUnavailableException",
            Self::InternalServerException => "internalServerException",
            Self::ValidationException => "validationException",
            _ => "modelStreamErrorException",
        }
    }

    /// The kind to answer with as an HTTP error: the stream-only `ModelStreamErrorException`
    /// becomes `ModelErrorException`, which InvokeModel declares.
    pub fn http_kind(self) -> Self {
        match self {
            Self::ModelStreamErrorException => Self::ModelErrorException,
            other => other,
        }
    }

    /// Bedrock's usual message for this error.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::ValidationException => {
                "Malformed input request, please reformat your input and try again."
            }
            Self::AccessDeniedException => {
                "You don't have access to the model with the specified model ID."
            }
            Self::ResourceNotFoundException => "The requested resource could not be found.",
            Self::ModelTimeoutException => {
                "Model has timed out in processing the request. Try your request again."
            }
            Self::ModelErrorException => {
                "The model returned an error while processing the request."
            }
            Self::ModelStreamErrorException => {
                "The model returned an error while streaming the response."
            }
            Self::ThrottlingException => "Too many requests, please wait before trying again.",
            Self::ModelNotReadyException => {
                "Model is not ready to serve inference requests. Try your request again."
            }
            Self::ServiceQuotaExceededException => "Your request exceeded a service quota.",
            Self::InternalServerException => {
                "The server encountered an internal error while processing the request."
            }
            Self::ServiceUnavailableException => "Bedrock is unable to process your request.",
            Self::UnknownOperationException => {
                "The requested operation is not recognized by the service."
            }
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Bedrock error: its shape and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct BedrockError {
    /// The error shape.
    pub kind: ErrorKind,
    /// The message sent in the body.
    pub message: String,
}

impl BedrockError {
    /// An error with a custom message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An error with Bedrock's usual message for `kind`.
    pub fn of(kind: ErrorKind) -> Self {
        Self::new(kind, kind.default_message())
    }

    /// A `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ValidationException, message)
    }

    /// The JSON body sent for this error: `{"message": "..."}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::json!({ "message": self.message })
            .to_string()
            .into_bytes()
    }
}

impl IntoResponse for BedrockError {
    fn into_response(self) -> Response {
        let kind = self.kind.http_kind();
        let mut response = (kind.status(), self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("x-amzn-errortype", HeaderValue::from_static(kind.name()));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_carries_type_status_and_message() {
        let response =
            BedrockError::new(ErrorKind::ThrottlingException, "slow down").into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "ThrottlingException"
        );
        assert_eq!(response.headers()["content-type"], "application/json");
    }

    #[test]
    fn stream_only_kind_maps_to_model_error_over_http() {
        let response = BedrockError::of(ErrorKind::ModelStreamErrorException).into_response();
        assert_eq!(response.status(), StatusCode::FAILED_DEPENDENCY);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "ModelErrorException"
        );
    }

    #[test]
    fn both_spellings_deserialize() {
        let a: ErrorKind = serde_json::from_str("\"ThrottlingException\"").unwrap();
        let b: ErrorKind = serde_json::from_str("\"throttlingException\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.stream_name(), "throttlingException");
        assert_eq!(
            ErrorKind::AccessDeniedException.stream_name(),
            "modelStreamErrorException"
        );
    }
}
