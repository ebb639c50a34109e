//! Llama 3.2 InvokeModel request parameters, their Bedrock ranges and the request body.

use serde::Serialize;

use crate::BedrockError;

/// Sampling and length settings for one generation, validated against Bedrock's ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationParams {
    /// Randomness, 0-1 (Bedrock default 0.5).
    pub temperature: f32,
    /// Nucleus sampling mass, 0-1 (Bedrock default 0.9).
    pub top_p: f32,
    /// Maximum tokens to generate, 1-2048 (Bedrock default 512).
    pub max_gen_len: u32,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            top_p: 0.9,
            max_gen_len: 512,
        }
    }
}

/// Largest `max_gen_len` Bedrock accepts for Llama 3.2.
pub const MAX_GEN_LEN_LIMIT: u32 = 2048;

impl GenerationParams {
    /// Sets the temperature.
    pub fn temperature(mut self, value: f32) -> Self {
        self.temperature = value;
        self
    }

    /// Sets top_p.
    pub fn top_p(mut self, value: f32) -> Self {
        self.top_p = value;
        self
    }

    /// Sets the maximum generation length.
    pub fn max_gen_len(mut self, value: u32) -> Self {
        self.max_gen_len = value;
        self
    }

    /// Checks every field against Bedrock's range; the error names the field and range.
    pub fn validate(&self) -> Result<(), BedrockError> {
        unit_interval("temperature", self.temperature)?;
        unit_interval("top_p", self.top_p)?;
        if !(1..=MAX_GEN_LEN_LIMIT).contains(&self.max_gen_len) {
            return Err(BedrockError::InvalidParameter {
                field: "max_gen_len",
                value: self.max_gen_len.to_string(),
                allowed: "an integer from 1 to 2048",
            });
        }
        Ok(())
    }
}

fn unit_interval(field: &'static str, value: f32) -> Result<(), BedrockError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(BedrockError::InvalidParameter {
            field,
            value: value.to_string(),
            allowed: "a finite number from 0 to 1",
        })
    }
}

/// The InvokeModel request body for Meta Llama models, exactly as Bedrock expects it.
#[derive(Debug, Serialize)]
pub struct LlamaRequestBody<'a> {
    /// The fully formatted prompt.
    pub prompt: &'a str,
    /// See [`GenerationParams::temperature`].
    pub temperature: f32,
    /// See [`GenerationParams::top_p`].
    pub top_p: f32,
    /// See [`GenerationParams::max_gen_len`].
    pub max_gen_len: u32,
}

impl<'a> LlamaRequestBody<'a> {
    /// Validates `params` and builds the body for `prompt`.
    pub fn new(prompt: &'a str, params: &GenerationParams) -> Result<Self, BedrockError> {
        params.validate()?;
        Ok(Self {
            prompt,
            temperature: params.temperature,
            top_p: params.top_p,
            max_gen_len: params.max_gen_len,
        })
    }

    /// The JSON bytes sent on the wire.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and finite numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bedrocks() {
        let p = GenerationParams::default();
        assert_eq!((p.temperature, p.top_p, p.max_gen_len), (0.5, 0.9, 512));
        assert!(p.validate().is_ok());
    }

    #[test]
    fn body_serializes_with_bedrock_field_names() {
        let params = GenerationParams::default().temperature(0.0).max_gen_len(64);
        let body = LlamaRequestBody::new("hi \"there\"", &params).unwrap();
        assert_eq!(
            String::from_utf8(body.to_json()).unwrap(),
            r#"{"prompt":"hi \"there\"","temperature":0.0,"top_p":0.9,"max_gen_len":64}"#
        );
    }

    #[test]
    fn out_of_range_values_name_the_field_and_range() {
        let cases = [
            (GenerationParams::default().temperature(1.01), "temperature"),
            (GenerationParams::default().temperature(-0.1), "temperature"),
            (
                GenerationParams::default().temperature(f32::NAN),
                "temperature",
            ),
            (GenerationParams::default().top_p(f32::INFINITY), "top_p"),
            (GenerationParams::default().top_p(2.0), "top_p"),
            (GenerationParams::default().max_gen_len(0), "max_gen_len"),
            (GenerationParams::default().max_gen_len(2049), "max_gen_len"),
        ];
        for (params, field) in cases {
            let err = params.validate().unwrap_err();
            match &err {
                BedrockError::InvalidParameter { field: f, .. } => assert_eq!(*f, field),
                other => panic!("unexpected {other:?}"),
            }
            assert!(err.to_string().contains(field));
            assert!(err.to_string().contains("allowed"));
        }
    }

    #[test]
    fn range_edges_are_accepted() {
        for (t, p, m) in [(0.0, 0.0, 1), (1.0, 1.0, 2048)] {
            let params = GenerationParams::default()
                .temperature(t)
                .top_p(p)
                .max_gen_len(m);
            assert!(params.validate().is_ok());
        }
    }
}
