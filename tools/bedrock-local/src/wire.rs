//! The Meta Llama request and response bodies: parsing and validating what clients send, and the
//! JSON the emulator answers with.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::errors::BedrockError;

/// The largest `max_gen_len` Bedrock accepts for Llama models.
pub const MAX_GEN_LEN_LIMIT: u32 = 2048;

/// A validated Llama request body.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaRequest {
    /// The prompt, usually in Llama 3 chat format.
    pub prompt: String,
    /// Sampling temperature, 0 to 1 (default 0.5); 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling mass, 0 to 1 (default 0.9).
    pub top_p: f32,
    /// Most tokens to generate, 1 to 2048 (default 512).
    pub max_gen_len: u32,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// The model produced its end-of-generation token.
    Stop,
    /// `max_gen_len` tokens were generated.
    Length,
}

/// The InvokeModel response body.
#[derive(Debug, Serialize)]
pub(crate) struct InvokeResponse<'a> {
    pub generation: &'a str,
    pub prompt_token_count: u32,
    pub generation_token_count: u32,
    pub stop_reason: StopReason,
    /// `INTERVENED` or `NONE`, only when the request carried a guardrail.
    #[serde(
        rename = "amazon-bedrock-guardrailAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub guardrail_action: Option<&'static str>,
}

/// The JSON carried (base64-encoded) in one stream chunk.
#[derive(Debug, Serialize)]
pub(crate) struct ChunkBody<'a> {
    pub generation: &'a str,
    pub prompt_token_count: Option<u32>,
    pub generation_token_count: u32,
    pub stop_reason: Option<StopReason>,
    #[serde(
        rename = "amazon-bedrock-invocationMetrics",
        skip_serializing_if = "Option::is_none"
    )]
    pub metrics: Option<InvocationMetrics>,
    /// `INTERVENED` or `NONE` on the last chunk, only when the request carried a guardrail.
    #[serde(
        rename = "amazon-bedrock-guardrailAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub guardrail_action: Option<&'static str>,
}

/// The usage and timing summary on the last stream chunk.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvocationMetrics {
    pub input_token_count: u32,
    pub output_token_count: u32,
    pub invocation_latency: u64,
    pub first_byte_latency: u64,
}

/// A body that is deliberately not valid JSON (fault injection).
pub(crate) const MALFORMED_BODY: &[u8] = b"{\"generation\": \"\\u00";

fn malformed(detail: impl std::fmt::Display) -> BedrockError {
    BedrockError::validation(format!(
        "Malformed input request: {detail}, please reformat your input and try again."
    ))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_f64() => "BigDecimal",
        Value::Number(_) => "Integer",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

fn wrong_type(key: &str, expected: &str, found: &Value) -> BedrockError {
    malformed(format!(
        "#/{key}: expected type: {expected}, found: {}",
        type_name(found)
    ))
}

/// Reads an optional number in `[0, 1]`.
fn unit_interval(body: &Map<String, Value>, key: &str, default: f32) -> Result<f32, BedrockError> {
    let Some(value) = body.get(key) else {
        return Ok(default);
    };
    let Value::Number(number) = value else {
        return Err(wrong_type(key, "Number", value));
    };
    let x = number.as_f64().unwrap_or(f64::NAN);
    range_check(key, number, x, 0.0, 1.0)?;
    Ok(x as f32)
}

fn range_check(key: &str, shown: &Number, x: f64, min: f64, max: f64) -> Result<(), BedrockError> {
    if x < min || x.is_nan() {
        let min = Number::from_f64(min).map_or_else(String::new, |n| trim_float(&n));
        return Err(malformed(format!(
            "#/{key}: {shown} is not greater or equal to {min}"
        )));
    }
    if x > max {
        let max = Number::from_f64(max).map_or_else(String::new, |n| trim_float(&n));
        return Err(malformed(format!(
            "#/{key}: {shown} is not less or equal to {max}"
        )));
    }
    Ok(())
}

/// Prints `1.0` as `1`, the way Bedrock's schema messages show limits.
fn trim_float(n: &Number) -> String {
    let s = n.to_string();
    s.strip_suffix(".0")
        .map_or_else(|| s.clone(), str::to_owned)
}

/// Parses and validates a Llama request body the way Bedrock does.
pub fn parse_request(body: &[u8]) -> Result<LlamaRequest, BedrockError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("body is not valid JSON ({e})")))?;
    let Value::Object(body) = value else {
        return Err(malformed(format!(
            "#: expected type: JSONObject, found: {}",
            type_name(&value)
        )));
    };
    if let Some(key) = body.keys().find(|k| {
        !matches!(
            k.as_str(),
            "prompt" | "temperature" | "top_p" | "max_gen_len"
        )
    }) {
        return Err(malformed(format!(
            "#: extraneous key [{key}] is not permitted"
        )));
    }
    let prompt = match body.get("prompt") {
        None => return Err(malformed("#: required key [prompt] not found")),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(malformed("#/prompt: expected minLength: 1, actual: 0"));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(wrong_type("prompt", "String", other)),
    };
    let temperature = unit_interval(&body, "temperature", 0.5)?;
    let top_p = unit_interval(&body, "top_p", 0.9)?;
    let max_gen_len = match body.get("max_gen_len") {
        None => 512,
        Some(Value::Number(n)) => {
            // Integers too large for i64 arrive as floats; whole floats count as integers.
            let Some(x) = n.as_f64().filter(|x| x.fract() == 0.0) else {
                return Err(wrong_type(
                    "max_gen_len",
                    "Integer",
                    &Value::Number(n.clone()),
                ));
            };
            range_check("max_gen_len", n, x, 1.0, f64::from(MAX_GEN_LEN_LIMIT))?;
            // In range, so the conversion is exact.
            x as u32
        }
        Some(other) => return Err(wrong_type("max_gen_len", "Integer", other)),
    };
    Ok(LlamaRequest {
        prompt,
        temperature,
        top_p,
        max_gen_len,
    })
}

/// The error for a prompt that does not fit the context window with `max_gen_len`.
pub(crate) fn context_overflow(window: u32) -> BedrockError {
    BedrockError::validation(format!(
        "This model's maximum context length is {window} tokens. Please reduce the length of the prompt."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        parse_request(body.as_bytes()).unwrap_err().message
    }

    #[test]
    fn defaults_apply() {
        let r = parse_request(br#"{"prompt":"hi"}"#).unwrap();
        assert_eq!(r.temperature, 0.5);
        assert_eq!(r.top_p, 0.9);
        assert_eq!(r.max_gen_len, 512);
    }

    #[test]
    fn bounds_are_inclusive() {
        let r = parse_request(br#"{"prompt":"hi","temperature":0,"top_p":1,"max_gen_len":2048}"#)
            .unwrap();
        assert_eq!((r.temperature, r.top_p, r.max_gen_len), (0.0, 1.0, 2048));
        assert!(parse_request(br#"{"prompt":"hi","max_gen_len":1,"temperature":1.0}"#).is_ok());
    }

    #[test]
    fn messages_follow_bedrock() {
        assert_eq!(
            message(r#"{"prompt":"hi","foo":1}"#),
            "Malformed input request: #: extraneous key [foo] is not permitted, please reformat your input and try again."
        );
        assert!(message(r#"{}"#).contains("#: required key [prompt] not found"));
        assert!(
            message(r#"{"prompt":"hi","temperature":1.5}"#)
                .contains("#/temperature: 1.5 is not less or equal to 1,")
        );
        assert!(
            message(r#"{"prompt":"hi","top_p":-0.1}"#)
                .contains("#/top_p: -0.1 is not greater or equal to 0,")
        );
        assert!(
            message(r#"{"prompt":"hi","max_gen_len":0}"#)
                .contains("#/max_gen_len: 0 is not greater or equal to 1")
        );
        assert!(
            message(r#"{"prompt":"hi","max_gen_len":2049}"#)
                .contains("#/max_gen_len: 2049 is not less or equal to 2048")
        );
        assert!(
            message(r#"{"prompt":"hi","max_gen_len":99999999999999999999}"#)
                .contains("is not less or equal to 2048")
        );
        assert!(
            message(r#"{"prompt":"hi","max_gen_len":1.5}"#)
                .contains("#/max_gen_len: expected type: Integer, found: BigDecimal")
        );
        assert!(
            message(r#"{"prompt":7}"#).contains("#/prompt: expected type: String, found: Integer")
        );
        assert!(message(r#"[1]"#).contains("#: expected type: JSONObject, found: JSONArray"));
        assert!(message("{not json").contains("body is not valid JSON"));
        assert!(message("").contains("body is not valid JSON"));
        assert!(message(r#"{"prompt":""}"#).contains("minLength"));
    }
}
