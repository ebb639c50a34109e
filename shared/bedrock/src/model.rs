//! Which model answers: a bare model id, an inference profile id or an ARN, plus an
//! ordered list of fallbacks.

use std::fmt;

use crate::BedrockError;

/// Default model: the US cross-region inference profile for Llama 3.2 3B Instruct.
pub const DEFAULT_MODEL_ID: &str = "us.meta.llama3-2-3b-instruct-v1:0";

/// How a [`ModelId`] names its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelIdKind {
    /// A foundation model id such as `meta.llama3-2-3b-instruct-v1:0`.
    FoundationModel,
    /// A cross-region inference profile id such as `us.meta.llama3-2-3b-instruct-v1:0`.
    InferenceProfile,
    /// A full ARN (foundation model, inference profile or provisioned throughput).
    Arn,
}

/// A validated model identifier, passed to Bedrock unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    id: String,
    kind: ModelIdKind,
}

/// Geography prefixes of system-defined cross-region inference profiles.
const PROFILE_PREFIXES: [&str; 6] = ["us.", "eu.", "apac.", "us-gov.", "ca.", "global."];

impl ModelId {
    /// Parses and checks a model id, profile id or ARN.
    pub fn parse(value: &str) -> Result<Self, BedrockError> {
        let id = value.trim();
        let invalid = || BedrockError::InvalidParameter {
            field: "model_id",
            value: value.to_owned(),
            allowed: "a model id (meta.llama3-2-3b-instruct-v1:0), an inference profile id \
                      (us.meta.llama3-2-3b-instruct-v1:0) or an arn:aws:bedrock ARN, up to 2048 chars",
        };
        if id.is_empty()
            || id.len() > 2048
            || id.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let kind = if let Some(rest) = id.strip_prefix("arn:") {
            // arn:<partition>:bedrock:<region>:<account>:<resource>
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() != 5 || parts[1] != "bedrock" || parts[4].is_empty() {
                return Err(invalid());
            }
            ModelIdKind::Arn
        } else if PROFILE_PREFIXES.iter().any(|p| id.starts_with(p)) {
            ModelIdKind::InferenceProfile
        } else if id.contains('.') {
            ModelIdKind::FoundationModel
        } else {
            return Err(invalid());
        };
        Ok(Self {
            id: id.to_owned(),
            kind,
        })
    }

    /// The id as sent to Bedrock.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// What kind of identifier this is.
    pub fn kind(&self) -> ModelIdKind {
        self.kind
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// The primary model and the fallbacks tried, in order, when it is unavailable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSelection {
    models: Vec<ModelId>,
}

impl Default for ModelSelection {
    fn default() -> Self {
        Self {
            models: vec![ModelId {
                id: DEFAULT_MODEL_ID.to_owned(),
                kind: ModelIdKind::InferenceProfile,
            }],
        }
    }
}

impl ModelSelection {
    /// A selection of `primary` followed by `fallbacks`.
    pub fn new(primary: ModelId, fallbacks: impl IntoIterator<Item = ModelId>) -> Self {
        let mut models = vec![primary];
        for m in fallbacks {
            if !models.contains(&m) {
                models.push(m);
            }
        }
        Self { models }
    }

    /// Parses a primary id and a comma-separated fallback list (empty items ignored).
    pub fn parse(primary: &str, fallbacks: &str) -> Result<Self, BedrockError> {
        let primary = ModelId::parse(primary)?;
        let fallbacks = fallbacks
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(ModelId::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(primary, fallbacks))
    }

    /// The primary model.
    pub fn primary(&self) -> &ModelId {
        &self.models[0]
    }

    /// All models in the order they are tried.
    pub fn models(&self) -> &[ModelId] {
        &self.models
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_each_kind() {
        let cases = [
            (
                "meta.llama3-2-3b-instruct-v1:0",
                ModelIdKind::FoundationModel,
            ),
            (
                "us.meta.llama3-2-3b-instruct-v1:0",
                ModelIdKind::InferenceProfile,
            ),
            (
                "eu.meta.llama3-2-3b-instruct-v1:0",
                ModelIdKind::InferenceProfile,
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-3b-instruct-v1:0",
                ModelIdKind::Arn,
            ),
            (
                "arn:aws:bedrock:us-west-2::foundation-model/meta.llama3-2-3b-instruct-v1:0",
                ModelIdKind::Arn,
            ),
        ];
        for (id, kind) in cases {
            let parsed = ModelId::parse(id).unwrap();
            assert_eq!(parsed.kind(), kind, "{id}");
            assert_eq!(parsed.as_str(), id);
        }
    }

    #[test]
    fn rejects_garbage_naming_the_field() {
        for bad in [
            "",
            "  ",
            "llama",
            "arn:aws:s3:::bucket",
            "arn:aws:bedrock",
            "a b.c",
            "x\ny.z",
        ] {
            let err = ModelId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("model_id"), "{bad:?}");
        }
    }

    #[test]
    fn selection_keeps_order_and_drops_duplicates() {
        let sel = ModelSelection::parse(
            "us.meta.llama3-2-3b-instruct-v1:0",
            " meta.llama3-2-3b-instruct-v1:0, ,us.meta.llama3-2-3b-instruct-v1:0,eu.meta.llama3-2-3b-instruct-v1:0",
        )
        .unwrap();
        let ids: Vec<&str> = sel.models().iter().map(ModelId::as_str).collect();
        assert_eq!(
            ids,
            [
                "us.meta.llama3-2-3b-instruct-v1:0",
                "meta.llama3-2-3b-instruct-v1:0",
                "eu.meta.llama3-2-3b-instruct-v1:0"
            ]
        );
        assert_eq!(
            ModelSelection::default().primary().as_str(),
            DEFAULT_MODEL_ID
        );
    }
}
