//! The crate's one error type and the stable names callers match on.

use std::time::Duration;

use tokens::{BudgetError, Overflow};

/// Every way a model call can fail, one variant per different handling.
///
/// [`BedrockError::error_type`] gives the stable name used as a Lambda `Diagnostic`
/// `error_type` and matched by Step Functions `Retry`/`Catch`:
///
/// | variant | `error_type()` | retryable |
/// |---|---|---|
/// | `Throttled` | `ModelThrottled` | yes |
/// | `ModelTimeout` | `ModelTimeout` | yes |
/// | `ModelNotReady` | `ModelNotReady` | yes |
/// | `ServiceUnavailable` | `ModelUnavailable` | yes |
/// | `Validation` | `ModelValidation` | no |
/// | `AccessDenied` | `ModelAccessDenied` | no |
/// | `ModelNotFound` | `ModelNotFound` | no |
/// | `ContextOverflow` | `ContextOverflow` | no |
/// | `InvalidParameter` | `InvalidParameter` | no |
/// | `MalformedResponse` | `MalformedModelResponse` | no |
/// | `ContentBlocked` | `ContentBlocked` | no (the guardrail blocked the input or output) |
/// | `DeadlineExceeded` | `DeadlineExceeded` | no (no time left in this invocation) |
/// | `ModelFailed` | `ModelError` | once per call (ModelErrorException) |
/// | `Other` | `ModelError` | no |
///
/// When every model fails, the call ends with the most retryable of the errors seen
/// (throttling over a denied fallback). When the deadline stops the retries, it ends with
/// the retryable error that caused them; `DeadlineExceeded` only when none came before
/// (nothing could be sent, or the only attempts ran into the deadline).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BedrockError {
    /// Bedrock refused the call for quota or rate reasons (ThrottlingException,
    /// ServiceQuotaExceededException).
    #[error("model call throttled: {message}")]
    Throttled {
        /// What the service said.
        message: String,
    },
    /// The model took longer than Bedrock's limit (ModelTimeoutException) or the HTTP
    /// call timed out.
    #[error("model timed out: {message}")]
    ModelTimeout {
        /// What the service said.
        message: String,
    },
    /// The model is not ready to serve yet (ModelNotReadyException).
    #[error("model not ready: {message}")]
    ModelNotReady {
        /// What the service said.
        message: String,
    },
    /// Bedrock is unavailable or failed internally (ServiceUnavailableException,
    /// InternalServerException, ModelStreamErrorException, connection failures).
    #[error("model service unavailable: {message}")]
    ServiceUnavailable {
        /// What the service said.
        message: String,
    },
    /// Bedrock rejected the request (ValidationException).
    #[error("request rejected by Bedrock: {message}")]
    Validation {
        /// What the service said.
        message: String,
    },
    /// The caller may not invoke this model (AccessDeniedException).
    #[error("access denied to model: {message}")]
    AccessDenied {
        /// What the service said.
        message: String,
    },
    /// The model or inference profile does not exist (ResourceNotFoundException).
    #[error("model not found: {message}")]
    ModelNotFound {
        /// What the service said.
        message: String,
    },
    /// The prompt plus `max_gen_len` cannot fit in the model's context window.
    #[error(transparent)]
    ContextOverflow(#[from] Overflow),
    /// A request parameter or setting is outside its allowed range.
    #[error("invalid {field}: {value} (allowed: {allowed})")]
    InvalidParameter {
        /// The parameter or setting name.
        field: &'static str,
        /// The rejected value, rendered.
        value: String,
        /// The allowed range or form.
        allowed: &'static str,
    },
    /// The model's answer could not be understood.
    #[error("malformed model response: {message}")]
    MalformedResponse {
        /// What was wrong with it.
        message: String,
    },
    /// The guardrail intervened: Bedrock answered with the guardrail's block message
    /// (`amazon-bedrock-guardrailAction: INTERVENED`) instead of a generation. The
    /// message is not kept: it is not the model's answer.
    #[error("content blocked by the guardrail: {message}")]
    ContentBlocked {
        /// Where the intervention was seen.
        message: String,
    },
    /// No attempt could finish before the invocation deadline.
    #[error("deadline exceeded after {attempts} attempt(s): {remaining:?} left, {message}")]
    DeadlineExceeded {
        /// Attempts made before giving up.
        attempts: u32,
        /// Time that was left when giving up.
        remaining: Duration,
        /// Why the call stopped.
        message: String,
    },
    /// The model failed on this request (ModelErrorException); the client tries once more.
    #[error("model failed: {message}")]
    ModelFailed {
        /// What the service said.
        message: String,
    },
    /// Anything else (unknown service errors).
    #[error("model call failed: {message}")]
    Other {
        /// What happened.
        message: String,
    },
}

impl BedrockError {
    /// The stable name of this failure, for Lambda `Diagnostic` and Step Functions.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "ModelThrottled",
            Self::ModelTimeout { .. } => "ModelTimeout",
            Self::ModelNotReady { .. } => "ModelNotReady",
            Self::ServiceUnavailable { .. } => "ModelUnavailable",
            Self::Validation { .. } => "ModelValidation",
            Self::AccessDenied { .. } => "ModelAccessDenied",
            Self::ModelNotFound { .. } => "ModelNotFound",
            Self::ContextOverflow(_) => "ContextOverflow",
            Self::InvalidParameter { .. } => "InvalidParameter",
            Self::MalformedResponse { .. } => "MalformedModelResponse",
            Self::ContentBlocked { .. } => "ContentBlocked",
            Self::DeadlineExceeded { .. } => "DeadlineExceeded",
            Self::ModelFailed { .. } | Self::Other { .. } => "ModelError",
        }
    }

    /// Every name [`BedrockError::error_type`] can return.
    pub const ERROR_TYPES: [&'static str; 13] = [
        "ModelThrottled",
        "ModelTimeout",
        "ModelNotReady",
        "ModelUnavailable",
        "ModelValidation",
        "ModelAccessDenied",
        "ModelNotFound",
        "ContextOverflow",
        "InvalidParameter",
        "MalformedModelResponse",
        "ContentBlocked",
        "DeadlineExceeded",
        "ModelError",
    ];

    /// Whether the same call may succeed if tried again after a pause.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. }
                | Self::ModelTimeout { .. }
                | Self::ModelNotReady { .. }
                | Self::ServiceUnavailable { .. }
        )
    }

    /// How much this error says "try again later": 2 for retryable errors, 1 for a
    /// model failure, 0 otherwise. When every model fails, the highest rank wins.
    pub(crate) fn retry_rank(&self) -> u8 {
        if self.is_retryable() {
            2
        } else if matches!(self, Self::ModelFailed { .. }) {
            1
        } else {
            0
        }
    }

    /// Whether the error is about the request (its content, size or parameters), so any
    /// model would answer the same.
    pub fn is_about_the_request(&self) -> bool {
        matches!(
            self,
            Self::Validation { .. }
                | Self::ContextOverflow(_)
                | Self::InvalidParameter { .. }
                | Self::ContentBlocked { .. }
        )
    }

    /// Whether another model in the fallback list should be tried: the model is
    /// unavailable to us (denied, missing) or still failing transiently after retries.
    pub fn warrants_fallback(&self) -> bool {
        matches!(
            self,
            Self::AccessDenied { .. }
                | Self::ModelNotFound { .. }
                | Self::Throttled { .. }
                | Self::ModelNotReady { .. }
                | Self::ServiceUnavailable { .. }
        )
    }

    /// Maps a Bedrock error code (`ThrottlingException`, or the lower-camel form used
    /// inside event streams) to a variant.
    pub fn from_service_code(code: Option<&str>, message: Option<&str>) -> Self {
        let message = message.unwrap_or("no message").to_owned();
        let code = code.unwrap_or("");
        let normalized = code.to_ascii_lowercase();
        match normalized.as_str() {
            "throttlingexception" | "servicequotaexceededexception" => Self::Throttled { message },
            "modeltimeoutexception" => Self::ModelTimeout { message },
            "modelnotreadyexception" => Self::ModelNotReady { message },
            "serviceunavailableexception"
            | "internalserverexception"
            | "modelstreamerrorexception" => Self::ServiceUnavailable { message },
            "validationexception" => Self::Validation { message },
            "accessdeniedexception" => Self::AccessDenied { message },
            "resourcenotfoundexception" => Self::ModelNotFound { message },
            "modelerrorexception" => Self::ModelFailed { message },
            "" => Self::Other { message },
            _ => Self::Other {
                message: format!("{code}: {message}"),
            },
        }
    }
}

/// The budget's refusals keep the names and messages they had when the budget lived here:
/// `InvalidParameter` for a window under 256 tokens, `ContextOverflow` for a prompt.
impl From<BudgetError> for BedrockError {
    fn from(err: BudgetError) -> Self {
        match err {
            BudgetError::InvalidWindow { context_window } => Self::InvalidParameter {
                field: "context_window",
                value: context_window.to_string(),
                allowed: "at least 256 tokens",
            },
            BudgetError::Overflow(overflow) => Self::ContextOverflow(overflow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{ContextBudget, MIN_CONTEXT_WINDOW};

    #[test]
    fn budget_refusals_keep_their_names_and_messages() {
        assert_eq!(
            MIN_CONTEXT_WINDOW, 256,
            "the InvalidParameter text says 256"
        );
        let err = BedrockError::from(ContextBudget::new(10).unwrap_err());
        assert_eq!(
            err,
            BedrockError::InvalidParameter {
                field: "context_window",
                value: "10".into(),
                allowed: "at least 256 tokens",
            }
        );
        assert_eq!(err.error_type(), "InvalidParameter");
        assert_eq!(
            err.to_string(),
            "invalid context_window: 10 (allowed: at least 256 tokens)"
        );

        let budget = ContextBudget::new(1000).unwrap();
        let text = "word ".repeat(900);
        let budget_err = budget.check(&text, 1000).unwrap_err();
        let err = BedrockError::from(budget_err.clone());
        assert_eq!(err.error_type(), "ContextOverflow");
        assert_eq!(err.to_string(), budget_err.to_string());
        assert!(matches!(
            err,
            BedrockError::ContextOverflow(Overflow {
                max_gen_len: 1000,
                context_window: 1000,
                ..
            })
        ));
        assert!(err.to_string().contains("1000-token context window"));
    }

    #[test]
    fn service_codes_map_to_variants_in_both_casings() {
        let cases = [
            ("ThrottlingException", "ModelThrottled"),
            ("throttlingException", "ModelThrottled"),
            ("ServiceQuotaExceededException", "ModelThrottled"),
            ("ModelTimeoutException", "ModelTimeout"),
            ("modelTimeoutException", "ModelTimeout"),
            ("ModelNotReadyException", "ModelNotReady"),
            ("ServiceUnavailableException", "ModelUnavailable"),
            ("internalServerException", "ModelUnavailable"),
            ("modelStreamErrorException", "ModelUnavailable"),
            ("ValidationException", "ModelValidation"),
            ("AccessDeniedException", "ModelAccessDenied"),
            ("ResourceNotFoundException", "ModelNotFound"),
            ("ModelErrorException", "ModelError"),
        ];
        for (code, expected) in cases {
            let err = BedrockError::from_service_code(Some(code), Some("m"));
            assert_eq!(err.error_type(), expected, "{code}");
        }
    }

    #[test]
    fn unknown_code_is_kept_in_message() {
        let err = BedrockError::from_service_code(Some("NewException"), Some("boom"));
        assert_eq!(err.error_type(), "ModelError");
        assert!(err.to_string().contains("NewException: boom"));
        assert!(!err.is_retryable());
    }

    #[test]
    fn retryable_and_fallback_sets() {
        let throttled = BedrockError::from_service_code(Some("ThrottlingException"), None);
        assert!(throttled.is_retryable() && throttled.warrants_fallback());
        let denied = BedrockError::from_service_code(Some("AccessDeniedException"), None);
        assert!(!denied.is_retryable() && denied.warrants_fallback());
        let invalid = BedrockError::from_service_code(Some("ValidationException"), None);
        assert!(!invalid.is_retryable() && !invalid.warrants_fallback());
    }

    #[test]
    fn error_types_list_is_complete_and_unique() {
        let mut names = BedrockError::ERROR_TYPES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BedrockError::ERROR_TYPES.len());
    }
}
