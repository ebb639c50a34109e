//! Conversion of AWS SDK errors into [`BedrockError`].

use std::error::Error;
use std::fmt::Debug;

use aws_sdk_bedrockruntime::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

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
