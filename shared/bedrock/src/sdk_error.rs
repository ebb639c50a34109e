//! Conversion of AWS SDK errors into [`BedrockError`].

use std::error::Error;
use std::fmt::Debug;

use aws_sdk_bedrockruntime::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::error::ResponseStreamError;

use crate::BedrockError;

/// Maps any Bedrock Runtime SDK error (operation or stream) to the crate's error.
pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> BedrockError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    R: Debug,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            BedrockError::from_service_code(ctx.err().code(), ctx.err().message())
        }
        SdkError::TimeoutError(_) => BedrockError::ModelTimeout {
            message: "the HTTP call to Bedrock timed out".into(),
        },
        SdkError::DispatchFailure(failure) if failure.is_timeout() => BedrockError::ModelTimeout {
            message: format!("{}", DisplayErrorContext(&err)),
        },
        SdkError::DispatchFailure(_) => BedrockError::ServiceUnavailable {
            message: format!("could not reach Bedrock: {}", DisplayErrorContext(&err)),
        },
        SdkError::ResponseError(_) => BedrockError::MalformedResponse {
            message: format!("{}", DisplayErrorContext(&err)),
        },
        _ => BedrockError::Other {
            message: format!("{}", DisplayErrorContext(&err)),
        },
    }
}

/// Maps an error from inside a response stream. Exception frames carry their type in
/// the `:exception-type` header, which the SDK turns into the variant, not the code.
pub(crate) fn from_stream<R: Debug>(err: SdkError<ResponseStreamError, R>) -> BedrockError {
    let SdkError::ServiceError(ctx) = &err else {
        return from_sdk(err);
    };
    let stream_err = ctx.err();
    let code = match stream_err {
        ResponseStreamError::ThrottlingException(_) => "ThrottlingException",
        ResponseStreamError::ModelTimeoutException(_) => "ModelTimeoutException",
        ResponseStreamError::ModelStreamErrorException(_) => "ModelStreamErrorException",
        ResponseStreamError::ServiceUnavailableException(_) => "ServiceUnavailableException",
        ResponseStreamError::InternalServerException(_) => "InternalServerException",
        ResponseStreamError::ValidationException(_) => "ValidationException",
        _ => return from_sdk(err),
    };
    BedrockError::from_service_code(Some(code), stream_err.message())
}
