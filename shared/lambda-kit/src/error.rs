//! The error every function returns, its stable type names and how each maps to HTTP.

use bedrock::BedrockError;
use lambda_runtime::Diagnostic;

/// A failed task, with a stable [`TaskError::error_type`] for Lambda `Diagnostic`s and
/// Step Functions `Retry`/`Catch`.
///
/// | error type | HTTP | retryable |
/// |---|---|---|
/// | `InvalidInput` | 400 | no |
/// | `InputTooLarge` | 413 | no |
/// | `UnsupportedMediaType` | 415 | no |
/// | `UnsupportedDocument` | 422 | no |
/// | `SyncBudgetExceeded` (estimated over the synchronous HTTP time budget) | 422 | no |
/// | `ContentBlocked` (the model's guardrail intervened) | 422 | no |
/// | `DocumentNotFound` | 404 | no |
/// | `JobNotFound` | 404 | no |
/// | `IdempotencyKeyReused` (the key came with another request) | 422 | no |
/// | `RouteNotFound` | 404 | no |
/// | `MethodNotAllowed` | 405 | no |
/// | `StorageError` | 502 | yes |
/// | the model's types ([`BedrockError`]) | 429 / 502 / 503 / 504 / 413 / 400 | as the model error |
/// | `InternalError` | 500 | no |
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// The request or task input is not valid.
    #[error("{0}")]
    InvalidInput(String),
    /// The input is larger than the configured limit.
    #[error("{0}")]
    InputTooLarge(String),
    /// The HTTP body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The document's format is not supported or it holds no text.
    #[error("{0}")]
    UnsupportedDocument(String),
    /// A synchronous HTTP request whose estimated model time exceeds its time budget;
    /// refused before any model call (the message says to use the asynchronous form).
    #[error("{0}")]
    SyncBudgetExceeded(String),
    /// The S3 object does not exist.
    #[error("{0}")]
    DocumentNotFound(String),
    /// No job has this id.
    #[error("{0}")]
    JobNotFound(String),
    /// An `Idempotency-Key` sent again with a different request.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// No HTTP route of the function matches the request.
    #[error("{0}")]
    RouteNotFound(String),
    /// The path exists but not with this method; `allow` lists the methods that do.
    #[error("{message}")]
    MethodNotAllowed {
        /// What to do instead.
        message: String,
        /// The `Allow` header's value.
        allow: String,
    },
    /// Reading or writing S3 failed.
    #[error("{0}")]
    Storage(String),
    /// The model call failed.
    #[error(transparent)]
    Model(#[from] BedrockError),
    /// A bug or an impossible state.
    #[error("{0}")]
    Internal(String),
}

impl TaskError {
    /// The stable name of this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "InvalidInput",
            Self::InputTooLarge(_) => "InputTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::UnsupportedDocument(_) => "UnsupportedDocument",
            Self::SyncBudgetExceeded(_) => "SyncBudgetExceeded",
            Self::DocumentNotFound(_) => "DocumentNotFound",
            Self::JobNotFound(_) => "JobNotFound",
            Self::IdempotencyKeyReused(_) => "IdempotencyKeyReused",
            Self::RouteNotFound(_) => "RouteNotFound",
            Self::MethodNotAllowed { .. } => "MethodNotAllowed",
            Self::Storage(_) => "StorageError",
            Self::Model(e) => e.error_type(),
            Self::Internal(_) => "InternalError",
        }
    }

    /// Every name [`TaskError::error_type`] can return, model errors included.
    pub fn error_types() -> Vec<&'static str> {
        let mut names = vec![
            "InvalidInput",
            "InputTooLarge",
            "UnsupportedMediaType",
            "UnsupportedDocument",
            "SyncBudgetExceeded",
            "DocumentNotFound",
            "JobNotFound",
            "IdempotencyKeyReused",
            "RouteNotFound",
            "MethodNotAllowed",
            "StorageError",
            "InternalError",
        ];
        names.extend(BedrockError::ERROR_TYPES);
        names
    }

    /// Whether trying the same input again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(_) => true,
            Self::Model(e) => {
                e.is_retryable() || matches!(e, BedrockError::DeadlineExceeded { .. })
            }
            _ => false,
        }
    }

    /// The HTTP status for an API response.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidInput(_) => 400,
            Self::InputTooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::UnsupportedDocument(_) | Self::SyncBudgetExceeded(_) => 422,
            Self::DocumentNotFound(_) | Self::RouteNotFound(_) | Self::JobNotFound(_) => 404,
            Self::IdempotencyKeyReused(_) => 422,
            Self::MethodNotAllowed { .. } => 405,
            Self::Storage(_) => 502,
            Self::Internal(_) => 500,
            Self::Model(e) => match e {
                BedrockError::Throttled { .. } => 429,
                BedrockError::ModelTimeout { .. } | BedrockError::DeadlineExceeded { .. } => 504,
                BedrockError::ModelNotReady { .. } | BedrockError::ServiceUnavailable { .. } => 503,
                BedrockError::ContextOverflow(_) => 413,
                BedrockError::ContentBlocked { .. } => 422,
                BedrockError::InvalidParameter { .. } => 400,
                _ => 502,
            },
        }
    }

    /// Logs the failure once: server-side failures and throttling at ERROR with details,
    /// the caller's mistakes at INFO with the type only.
    pub fn log(&self) {
        let status = self.http_status();
        if status >= 500 || status == 429 {
            tracing::error!(error_type = self.error_type(), error = %self, status, "failed");
        } else {
            tracing::info!(error_type = self.error_type(), status, "input rejected");
        }
    }

    /// The message safe to show a caller: the full one for their own mistakes, a fixed
    /// one for server-side failures (details go to the log only).
    pub fn public_message(&self) -> String {
        match self.http_status() {
            429 => "the model is busy; retry after a short wait".into(),
            500 => "internal error".into(),
            502 if matches!(self, Self::Storage(_)) => "document storage failed".into(),
            502 => "the model failed to answer".into(),
            503 => "the model is temporarily unavailable; retry later".into(),
            504 => "the model did not answer in time".into(),
            _ => self.to_string(),
        }
    }
}

/// A document that unpacks too large is `InputTooLarge`; anything else that yields no text
/// is `UnsupportedDocument`.
impl From<text::ExtractError> for TaskError {
    fn from(e: text::ExtractError) -> Self {
        match e {
            text::ExtractError::TooLarge { .. } => Self::InputTooLarge(e.to_string()),
            other => Self::UnsupportedDocument(other.to_string()),
        }
    }
}

impl From<TaskError> for Diagnostic {
    fn from(err: TaskError) -> Self {
        Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_errors_keep_their_names_and_map_to_statuses() {
        let cases = [
            (
                BedrockError::Throttled {
                    message: "x".into(),
                },
                429,
                "ModelThrottled",
            ),
            (
                BedrockError::ModelTimeout {
                    message: "x".into(),
                },
                504,
                "ModelTimeout",
            ),
            (
                BedrockError::ServiceUnavailable {
                    message: "x".into(),
                },
                503,
                "ModelUnavailable",
            ),
            (
                BedrockError::AccessDenied {
                    message: "x".into(),
                },
                502,
                "ModelAccessDenied",
            ),
            (
                BedrockError::ContextOverflow(bedrock::budget::Overflow {
                    prompt_tokens: 1,
                    max_gen_len: 1,
                    context_window: 1,
                }),
                413,
                "ContextOverflow",
            ),
        ];
        for (model_err, status, name) in cases {
            let err = TaskError::from(model_err);
            assert_eq!(err.http_status(), status);
            assert_eq!(err.error_type(), name);
            let diag = Diagnostic::from(err);
            assert_eq!(diag.error_type, name);
        }
    }

    #[test]
    fn a_guardrail_block_is_a_final_content_error_not_a_result() {
        let err = TaskError::from(BedrockError::ContentBlocked {
            message: "amazon-bedrock-guardrailAction is INTERVENED".into(),
        });
        assert_eq!(err.error_type(), "ContentBlocked");
        assert_eq!(err.http_status(), 422);
        assert!(!err.is_retryable());
        assert!(err.public_message().contains("blocked by the guardrail"));
        assert_eq!(Diagnostic::from(err).error_type, "ContentBlocked");
        assert!(TaskError::error_types().contains(&"ContentBlocked"));
        let model_error = TaskError::from(BedrockError::ModelFailed {
            message: "x".into(),
        });
        assert_eq!(
            (model_error.error_type(), model_error.http_status()),
            ("ModelError", 502)
        );
    }

    #[test]
    fn server_side_messages_do_not_leak_details() {
        let err = TaskError::Model(BedrockError::AccessDenied {
            message: "arn:aws:iam::123456789012:role/secret is not authorized".into(),
        });
        assert!(!err.public_message().contains("123456789012"));
        let err = TaskError::InvalidInput("field `subject` is missing".into());
        assert_eq!(err.public_message(), "field `subject` is missing");
    }

    /// One of each variant; the `match` fails to compile when a variant is added, so the
    /// list (and with it `error_types`) cannot silently fall behind.
    fn one_of_each() -> Vec<TaskError> {
        let all = vec![
            TaskError::InvalidInput(String::new()),
            TaskError::InputTooLarge(String::new()),
            TaskError::UnsupportedMediaType(String::new()),
            TaskError::UnsupportedDocument(String::new()),
            TaskError::SyncBudgetExceeded(String::new()),
            TaskError::DocumentNotFound(String::new()),
            TaskError::JobNotFound(String::new()),
            TaskError::IdempotencyKeyReused(String::new()),
            TaskError::RouteNotFound(String::new()),
            TaskError::MethodNotAllowed {
                message: String::new(),
                allow: String::new(),
            },
            TaskError::Storage(String::new()),
            TaskError::Internal(String::new()),
        ];
        for e in &all {
            match e {
                TaskError::InvalidInput(_)
                | TaskError::InputTooLarge(_)
                | TaskError::UnsupportedMediaType(_)
                | TaskError::UnsupportedDocument(_)
                | TaskError::SyncBudgetExceeded(_)
                | TaskError::DocumentNotFound(_)
                | TaskError::JobNotFound(_)
                | TaskError::IdempotencyKeyReused(_)
                | TaskError::RouteNotFound(_)
                | TaskError::MethodNotAllowed { .. }
                | TaskError::Storage(_)
                | TaskError::Internal(_)
                | TaskError::Model(_) => {}
            }
        }
        all
    }

    #[test]
    fn error_types_lists_every_name_once() {
        let mut names: Vec<&str> = one_of_each().iter().map(TaskError::error_type).collect();
        names.extend(BedrockError::ERROR_TYPES);
        names.sort_unstable();
        let mut listed = TaskError::error_types();
        listed.sort_unstable();
        assert_eq!(names, listed);
    }

    #[test]
    fn extraction_errors_are_final_content_errors() {
        let timed_out = TaskError::from(text::ExtractError::TimedOut {
            format: "pdf",
            limit: std::time::Duration::from_secs(60),
        });
        assert_eq!(timed_out.error_type(), "UnsupportedDocument");
        assert!(!timed_out.is_retryable());
        let too_large = TaskError::from(text::ExtractError::TooLarge {
            format: "pdf",
            limit_bytes: 1,
        });
        assert_eq!(too_large.error_type(), "InputTooLarge");
        assert!(!too_large.is_retryable());
    }

    #[test]
    fn retryable_set() {
        assert!(TaskError::Storage("s".into()).is_retryable());
        assert!(
            TaskError::Model(BedrockError::Throttled {
                message: "t".into()
            })
            .is_retryable()
        );
        assert!(!TaskError::InvalidInput("i".into()).is_retryable());
        assert!(!TaskError::UnsupportedDocument("u".into()).is_retryable());
    }
}
