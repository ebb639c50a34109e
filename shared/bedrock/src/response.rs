//! Llama 3.2 InvokeModel response types and parsing.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::BedrockError;
use crate::pricing::Cost;

/// Why generation ended. Values Bedrock adds later are kept, not rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The model finished its turn.
    Stop,
    /// `max_gen_len` was reached.
    Length,
    /// Any other reason Bedrock reports, verbatim.
    Other(String),
}

impl StopReason {
    /// The wire form of the reason.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Other(s) => s,
        }
    }
}

impl From<&str> for StopReason {
    fn from(value: &str) -> Self {
        match value {
            "stop" => Self::Stop,
            "length" => Self::Length,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for StopReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Self::from(s.as_str()))
    }
}

/// The InvokeModel response body for Meta Llama models.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LlamaResponseBody {
    /// The generated text.
    pub generation: String,
    /// Tokens in the prompt.
    pub prompt_token_count: u32,
    /// Tokens generated.
    pub generation_token_count: u32,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// `INTERVENED` or `NONE` when the call carried a guardrail
    /// (`amazon-bedrock-guardrailAction`).
    #[serde(rename = "amazon-bedrock-guardrailAction", default)]
    pub guardrail_action: Option<String>,
}

impl LlamaResponseBody {
    /// Parses a response body, naming what is wrong when it does not fit. A body the
    /// guardrail answered instead of the model is [`BedrockError::ContentBlocked`].
    pub fn parse(bytes: &[u8]) -> Result<Self, BedrockError> {
        let body: Self =
            serde_json::from_slice(bytes).map_err(|e| BedrockError::MalformedResponse {
                message: format!("InvokeModel body is not a Llama response: {e}"),
            })?;
        check_guardrail(body.guardrail_action.as_deref(), &body.stop_reason)?;
        Ok(body)
    }
}

/// The stop reason some models report when a guardrail intervened.
const GUARDRAIL_STOP_REASON: &str = "guardrail_intervened";

/// Fails with [`BedrockError::ContentBlocked`] when Bedrock says the guardrail intervened:
/// the body's (or stream chunk's) `amazon-bedrock-guardrailAction` is `INTERVENED`, or the
/// stop reason is `guardrail_intervened`. Bedrock still answers 200 then, with the
/// guardrail's block message as the generation.
pub(crate) fn check_guardrail(
    action: Option<&str>,
    stop_reason: &StopReason,
) -> Result<(), BedrockError> {
    let by_action = action.is_some_and(|a| a.eq_ignore_ascii_case("INTERVENED"));
    let by_stop = stop_reason.as_str() == GUARDRAIL_STOP_REASON;
    if by_action || by_stop {
        let seen = if by_action {
            "amazon-bedrock-guardrailAction is INTERVENED"
        } else {
            "stop_reason is guardrail_intervened"
        };
        return Err(BedrockError::ContentBlocked {
            message: format!("{seen}; the guardrail's message replaced the generation"),
        });
    }
    Ok(())
}

/// Bedrock's own measurements of one invocation (`amazon-bedrock-invocationMetrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationMetrics {
    /// Prompt tokens billed.
    pub input_token_count: u32,
    /// Generated tokens billed.
    pub output_token_count: u32,
    /// Total model latency in milliseconds.
    pub invocation_latency: u64,
    /// Time to the first byte in milliseconds.
    pub first_byte_latency: u64,
}

/// Token usage and stop reason of a finished call.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub generation_tokens: u32,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Bedrock's invocation metrics, when it sent them (streaming).
    pub invocation_metrics: Option<InvocationMetrics>,
    /// What the tokens cost at the answering model's price.
    pub cost: Cost,
}

/// A finished, successful model call.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The generated text (without any assistant prefill).
    pub generation: String,
    /// Tokens and stop reason.
    pub usage: Usage,
    /// The model id (or profile/ARN) that answered, from the configured list.
    pub model_id: String,
    /// Attempts made across all models, including the successful one.
    pub attempts: u32,
    /// Wall time of the whole call, retries included.
    pub latency: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_bedrock_body() {
        let body = br#"{"generation":" Hello","prompt_token_count":12,"generation_token_count":2,"stop_reason":"stop"}"#;
        let parsed = LlamaResponseBody::parse(body).unwrap();
        assert_eq!(parsed.generation, " Hello");
        assert_eq!(parsed.prompt_token_count, 12);
        assert_eq!(parsed.generation_token_count, 2);
        assert_eq!(parsed.stop_reason, StopReason::Stop);
    }

    #[test]
    fn unknown_stop_reason_is_kept() {
        let body = br#"{"generation":"","prompt_token_count":1,"generation_token_count":0,"stop_reason":"content_filtered"}"#;
        let parsed = LlamaResponseBody::parse(body).unwrap();
        assert_eq!(
            parsed.stop_reason,
            StopReason::Other("content_filtered".into())
        );
        assert_eq!(parsed.stop_reason.as_str(), "content_filtered");
        assert_eq!(StopReason::from("length"), StopReason::Length);
    }

    #[test]
    fn a_guardrail_intervention_is_content_blocked_not_a_generation() {
        let intervened = br#"{"generation":"Sorry, the model cannot answer this question.","prompt_token_count":9,"generation_token_count":0,"stop_reason":"stop","amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let by_stop = br#"{"generation":"Blocked.","prompt_token_count":9,"generation_token_count":0,"stop_reason":"guardrail_intervened"}"#;
        for body in [&intervened[..], &by_stop[..]] {
            let err = LlamaResponseBody::parse(body).unwrap_err();
            assert_eq!(err.error_type(), "ContentBlocked");
            assert!(!err.is_retryable() && !err.warrants_fallback());
            assert!(!err.to_string().contains("Sorry"), "{err}");
        }
        let passed = br#"{"generation":"Fine.","prompt_token_count":9,"generation_token_count":1,"stop_reason":"stop","amazon-bedrock-guardrailAction":"NONE"}"#;
        let parsed = LlamaResponseBody::parse(passed).unwrap();
        assert_eq!(parsed.generation, "Fine.");
        assert_eq!(parsed.guardrail_action.as_deref(), Some("NONE"));
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        for body in [&b"not json"[..], br#"{"generation": 5}"#, br#"{}"#, b""] {
            let err = LlamaResponseBody::parse(body).unwrap_err();
            assert_eq!(err.error_type(), "MalformedModelResponse");
        }
    }

    #[test]
    fn invocation_metrics_use_bedrock_names() {
        let m: InvocationMetrics = serde_json::from_str(
            r#"{"inputTokenCount":3,"outputTokenCount":4,"invocationLatency":50,"firstByteLatency":7}"#,
        )
        .unwrap();
        assert_eq!(m.input_token_count, 3);
        assert_eq!(m.first_byte_latency, 7);
    }
}
