//! The ticket a caller sends, checked field by field with messages that name the problem.

use std::fmt;
use std::str::FromStr;

use lambda_kit::TaskError;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Limits;

/// The fields a ticket may have.
pub const FIELDS: [&str; 5] = ["subject", "body", "channel", "customer_tier", "metadata"];

/// Unknown fields named in an error message; the rest are counted.
const MAX_NAMED_UNKNOWN: usize = 10;

/// Most keys a `metadata` object may have.
pub const MAX_METADATA_KEYS: usize = 50;

/// Where the ticket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// `email`
    Email,
    /// `web` (a web form)
    Web,
    /// `chat`
    Chat,
    /// `phone` (a transcript or agent notes)
    Phone,
    /// `social` (social media)
    Social,
    /// `api` (created by another system)
    Api,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Self; 6] = [
        Self::Email,
        Self::Web,
        Self::Chat,
        Self::Phone,
        Self::Social,
        Self::Api,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Web => "web",
            Self::Chat => "chat",
            Self::Phone => "phone",
            Self::Social => "social",
            Self::Api => "api",
        }
    }
}

/// The customer's support tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerTier {
    /// `free`
    Free,
    /// `standard`
    Standard,
    /// `premium`
    Premium,
    /// `enterprise`
    Enterprise,
}

impl CustomerTier {
    /// Every tier.
    pub const ALL: [Self; 4] = [Self::Free, Self::Standard, Self::Premium, Self::Enterprise];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Standard => "standard",
            Self::Premium => "premium",
            Self::Enterprise => "enterprise",
        }
    }
}

macro_rules! wire_enum {
    ($ty:ty, $field:literal) => {
        impl FromStr for $ty {
            type Err = String;

            /// Accepts the wire name in any case.
            fn from_str(s: &str) -> Result<Self, String> {
                let wanted = s.trim();
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| {
                        let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!(
                            "`{}` {:?} is not one of: {}",
                            $field,
                            shorten(s, 40),
                            allowed.join(", ")
                        )
                    })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(Channel, "channel");
wire_enum!(CustomerTier, "customer_tier");

/// A checked ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// The subject line (may be empty when the body is not).
    pub subject: String,
    /// The message (may be empty when the subject is not).
    pub body: String,
    /// Where it came from.
    pub channel: Option<Channel>,
    /// The customer's tier.
    pub customer_tier: Option<CustomerTier>,
    /// The caller's own data, returned unchanged and never shown to the model.
    pub metadata: Option<Map<String, Value>>,
}

impl Ticket {
    /// Checks a JSON ticket against `limits`: 400 `InvalidInput` for a wrong shape, an
    /// unknown field or an empty ticket, 413 `InputTooLarge` for a field over its limit.
    pub fn from_json(value: Value, limits: &Limits) -> Result<Self, TaskError> {
        let Value::Object(mut object) = value else {
            return Err(invalid(format!(
                "the ticket must be a JSON object with fields {}, got {}",
                FIELDS.join(", "),
                kind(&value)
            )));
        };
        let unknown: Vec<String> = object
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .map(|k| format!("`{}`", shorten(k, 40)))
            .collect();
        if !unknown.is_empty() {
            let more = unknown.len().saturating_sub(MAX_NAMED_UNKNOWN);
            return Err(invalid(format!(
                "unknown field{} {}{}; allowed: {}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown
                    .iter()
                    .take(MAX_NAMED_UNKNOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
                FIELDS.join(", ")
            )));
        }
        let subject = text_field(&mut object, "subject", limits.max_subject_chars)?;
        let body = text_field(&mut object, "body", limits.max_body_chars)?;
        if subject.trim().is_empty() && body.trim().is_empty() {
            return Err(invalid(
                "`subject` and `body` are both empty; send at least one of them".into(),
            ));
        }
        let channel = enum_field(&mut object, "channel")?;
        let customer_tier = enum_field(&mut object, "customer_tier")?;
        let metadata = metadata_field(&mut object, limits.max_metadata_bytes)?;
        Ok(Self {
            subject,
            body,
            channel,
            customer_tier,
            metadata,
        })
    }

    /// Subject and body together, for language detection.
    pub fn text(&self) -> String {
        format!("{}\n\n{}", self.subject, self.body)
    }
}

fn invalid(message: String) -> TaskError {
    TaskError::InvalidInput(message)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `text` cut to `max` characters, with `…` when cut (for echoing caller values safely).
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_owned(),
    }
}

fn text_field(
    object: &mut Map<String, Value>,
    name: &str,
    max_chars: usize,
) -> Result<String, TaskError> {
    match object.remove(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => {
            let chars = text.chars().count();
            if chars > max_chars {
                Err(TaskError::InputTooLarge(format!(
                    "`{name}` is {chars} characters; the limit is {max_chars}"
                )))
            } else {
                Ok(text)
            }
        }
        Some(other) => Err(invalid(format!(
            "`{name}` must be a string, got {}",
            kind(&other)
        ))),
    }
}

fn enum_field<T: FromStr<Err = String>>(
    object: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<T>, TaskError> {
    match object.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => text.parse().map(Some).map_err(invalid),
        Some(other) => Err(invalid(format!(
            "`{name}` must be a string, got {}",
            kind(&other)
        ))),
    }
}

fn metadata_field(
    object: &mut Map<String, Value>,
    max_bytes: usize,
) -> Result<Option<Map<String, Value>>, TaskError> {
    match object.remove("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            let bytes = serde_json::to_vec(&map).map_or(usize::MAX, |b| b.len());
            if bytes > max_bytes {
                return Err(TaskError::InputTooLarge(format!(
                    "`metadata` is {bytes} bytes as JSON; the limit is {max_bytes}"
                )));
            }
            if map.len() > MAX_METADATA_KEYS {
                return Err(TaskError::InputTooLarge(format!(
                    "`metadata` has {} keys; the limit is {MAX_METADATA_KEYS}",
                    map.len()
                )));
            }
            Ok(Some(map))
        }
        Some(other) => Err(invalid(format!(
            "`metadata` must be an object, got {}",
            kind(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Ticket, TaskError> {
        Ticket::from_json(value, &Limits::default())
    }

    #[test]
    fn full_ticket() {
        let t = parse(json!({
            "subject": "Charged twice",
            "body": "I see two charges.",
            "channel": "Email",
            "customer_tier": "enterprise",
            "metadata": {"ticket_id": "T-1", "n": 2}
        }))
        .unwrap();
        assert_eq!(t.subject, "Charged twice");
        assert_eq!(t.channel, Some(Channel::Email));
        assert_eq!(t.customer_tier, Some(CustomerTier::Enterprise));
        assert_eq!(t.metadata.unwrap()["ticket_id"], "T-1");
    }

    #[test]
    fn subject_or_body_alone_is_enough() {
        assert_eq!(parse(json!({"subject": "Help"})).unwrap().body, "");
        assert_eq!(
            parse(json!({"body": "Help", "subject": null}))
                .unwrap()
                .subject,
            ""
        );
    }

    #[test]
    fn bad_tickets_name_the_problem() {
        let cases = [
            (json!([]), 400, "must be a JSON object"),
            (json!({}), 400, "both empty"),
            (json!({"subject": "  ", "body": "\n"}), 400, "both empty"),
            (
                json!({"subject": "a", "priority": "high", "tags": []}),
                400,
                "unknown fields `priority`, `tags`",
            ),
            (json!({"subject": 5}), 400, "`subject` must be a string"),
            (
                json!({"subject": "a", "channel": "fax"}),
                400,
                "`channel` \"fax\" is not one of: email, web, chat, phone, social, api",
            ),
            (
                json!({"subject": "a", "customer_tier": "gold"}),
                400,
                "free, standard, premium, enterprise",
            ),
            (json!({"subject": "a", "channel": 1}), 400, "`channel`"),
            (
                json!({"subject": "a", "metadata": "x"}),
                400,
                "`metadata` must be an object",
            ),
            (
                json!({"subject": "s".repeat(501)}),
                413,
                "`subject` is 501 characters; the limit is 500",
            ),
            (
                json!({"body": "é".repeat(20_001)}),
                413,
                "`body` is 20001 characters",
            ),
            (
                json!({"body": "b", "metadata": {"k": "v".repeat(5000)}}),
                413,
                "`metadata` is",
            ),
        ];
        for (value, status, needle) in cases {
            let err = parse(value.clone()).unwrap_err();
            assert_eq!(err.http_status(), status, "{value}: {err}");
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn too_many_metadata_keys() {
        let map: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        let err = parse(json!({"body": "b", "metadata": map})).unwrap_err();
        assert_eq!(err.error_type(), "InputTooLarge");
    }

    #[test]
    fn shorten_respects_characters() {
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hi", 2), "hi");
    }
}
