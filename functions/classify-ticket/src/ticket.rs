//! The ticket a caller sends: decoded by serde (unknown fields, wrong types and unknown
//! `channel`/`customer_tier` values refused, each message naming the field), then checked
//! against the size limits.

use std::fmt;

use lambda_kit::TaskError;
use serde::de::{Deserializer, Error as _, IntoDeserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Limits;

/// The fields a ticket may have.
pub const FIELDS: [&str; 5] = ["subject", "body", "channel", "customer_tier", "metadata"];

/// Most keys a `metadata` object may have.
pub const MAX_METADATA_KEYS: usize = 50;

/// Unknown fields named in an error message; the rest are counted.
const MAX_NAMED_UNKNOWN: usize = 10;

/// Longest caller value (unknown field, enum value) echoed in an error message.
const ECHO_CHARS: usize = 40;

/// Where the ticket came from; accepted in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    /// `web` (a web form)
    Web,
    Chat,
    /// `phone` (a transcript or agent notes)
    Phone,
    /// `social` (social media)
    Social,
    /// `api` (created by another system)
    Api,
}

/// The customer's support tier; accepted in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerTier {
    Free,
    Standard,
    Premium,
    Enterprise,
}

/// The wire name (serde's `Serialize` writes a unit variant's renamed name to a formatter).
impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
    }
}

/// The wire name.
impl fmt::Display for CustomerTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
    }
}

/// A ticket. `null` counts as an absent field; [`Ticket::from_json`] decodes and checks one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    /// The subject line (may be empty when the body is not).
    #[serde(default, deserialize_with = "subject")]
    pub subject: String,
    /// The message (may be empty when the subject is not).
    #[serde(default, deserialize_with = "body")]
    pub body: String,
    /// Where it came from.
    #[serde(default, deserialize_with = "channel")]
    pub channel: Option<Channel>,
    /// The customer's tier.
    #[serde(default, deserialize_with = "customer_tier")]
    pub customer_tier: Option<CustomerTier>,
    /// The caller's own data, returned unchanged and never shown to the model.
    #[serde(default, deserialize_with = "metadata")]
    pub metadata: Option<Map<String, Value>>,
}

impl Ticket {
    /// Decodes a JSON ticket and checks it against `limits`: 400 `InvalidInput` for a wrong
    /// shape, unknown fields (all of them named), a wrong type or value, or an empty ticket;
    /// 413 `InputTooLarge` for a field over its limit.
    pub fn from_json(input: Value, limits: &Limits) -> Result<Self, TaskError> {
        let Some(object) = input.as_object() else {
            return Err(invalid(format!(
                "the ticket must be a JSON object with fields {}",
                FIELDS.join(", ")
            )));
        };
        let unknown: Vec<String> = object
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .map(|k| format!("`{}`", shorten(k, ECHO_CHARS)))
            .collect();
        if !unknown.is_empty() {
            let s = if unknown.len() == 1 { "" } else { "s" };
            let named = unknown[..unknown.len().min(MAX_NAMED_UNKNOWN)].join(", ");
            let more = match unknown.len().saturating_sub(MAX_NAMED_UNKNOWN) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            let allowed = FIELDS.join(", ");
            return Err(invalid(format!(
                "unknown field{s} {named}{more}; allowed: {allowed}"
            )));
        }
        let ticket: Self =
            serde_json::from_value(input).map_err(|e| invalid(format!("invalid ticket: {e}")))?;
        ticket.validate(limits)?;
        Ok(ticket)
    }

    /// Checks the rules serde does not: `subject` and `body` not both empty (or whitespace),
    /// and every size limit.
    pub fn validate(&self, limits: &Limits) -> Result<(), TaskError> {
        for (name, text, max) in [
            ("subject", &self.subject, limits.max_subject_chars),
            ("body", &self.body, limits.max_body_chars),
        ] {
            let chars = text.chars().count();
            if chars > max {
                return Err(TaskError::InputTooLarge(format!(
                    "`{name}` is {chars} characters; the limit is {max}"
                )));
            }
        }
        if self.subject.trim().is_empty() && self.body.trim().is_empty() {
            return Err(invalid(
                "`subject` and `body` are both empty; send at least one of them".into(),
            ));
        }
        if let Some(map) = &self.metadata {
            let bytes = serde_json::to_vec(map).map_or(usize::MAX, |b| b.len());
            let max = limits.max_metadata_bytes;
            if bytes > max {
                return Err(TaskError::InputTooLarge(format!(
                    "`metadata` is {bytes} bytes as JSON; the limit is {max}"
                )));
            }
            if map.len() > MAX_METADATA_KEYS {
                return Err(TaskError::InputTooLarge(format!(
                    "`metadata` has {} keys; the limit is {MAX_METADATA_KEYS}",
                    map.len()
                )));
            }
        }
        Ok(())
    }

    /// Subject and body together, for language detection.
    pub fn text(&self) -> String {
        format!("{}\n\n{}", self.subject, self.body)
    }
}

fn invalid(message: String) -> TaskError {
    TaskError::InvalidInput(message)
}

/// `text` cut to `max` characters, with `…` when cut (for echoing caller values safely).
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_owned(),
    }
}

/// Decodes the field `name` (`null` counting as absent) with an error that names it.
fn field<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    name: &str,
) -> Result<Option<T>, D::Error> {
    Option::deserialize(d).map_err(|e| D::Error::custom(format_args!("`{name}`: {e}")))
}

/// Decodes the enum field `name` from a string in any case, with surrounding spaces.
fn any_case<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    name: &str,
) -> Result<Option<T>, D::Error> {
    let Some(text) = field::<D, String>(d, name)? else {
        return Ok(None);
    };
    // Shortened, so that the "unknown variant" message cannot echo a huge value.
    let wire = shorten(&text.trim().to_lowercase(), ECHO_CHARS);
    T::deserialize(IntoDeserializer::<'de, D::Error>::into_deserializer(wire))
        .map(Some)
        .map_err(|e| D::Error::custom(format_args!("`{name}`: {e}")))
}

fn subject<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(field(d, "subject")?.unwrap_or_default())
}

fn body<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(field(d, "body")?.unwrap_or_default())
}

fn channel<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Channel>, D::Error> {
    any_case(d, "channel")
}

fn customer_tier<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CustomerTier>, D::Error> {
    any_case(d, "customer_tier")
}

fn metadata<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    field(d, "metadata")
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
            "channel": " Email ",
            "customer_tier": "ENTERPRISE",
            "metadata": {"ticket_id": "T-1", "n": 2}
        }))
        .unwrap();
        assert_eq!(t.subject, "Charged twice");
        assert_eq!(t.channel, Some(Channel::Email));
        assert_eq!(t.customer_tier, Some(CustomerTier::Enterprise));
        assert_eq!(t.metadata.unwrap()["ticket_id"], "T-1");
        assert_eq!(Channel::Api.to_string(), "api");
        assert_eq!(CustomerTier::Premium.to_string(), "premium");
    }

    #[test]
    fn subject_or_body_alone_is_enough() {
        assert_eq!(parse(json!({"subject": "Help"})).unwrap().body, "");
        let t = parse(json!({"body": "Help", "subject": null, "channel": null, "metadata": null}));
        let t = t.unwrap();
        assert_eq!(
            (t.subject.as_str(), t.channel, t.metadata),
            ("", None, None)
        );
    }

    #[test]
    fn bad_tickets_name_the_problem() {
        let cases = [
            (json!([]), 400, "must be a JSON object"),
            (json!(["subject", "body"]), 400, "must be a JSON object"),
            (json!({}), 400, "both empty"),
            (json!({"subject": "  ", "body": "\n"}), 400, "both empty"),
            (
                json!({"subject": "a", "priority": "high", "tags": []}),
                400,
                "unknown fields `priority`, `tags`; allowed: subject, body,",
            ),
            (
                json!({"subject": 5}),
                400,
                "`subject`: invalid type: integer `5`, expected a string",
            ),
            (
                json!({"subject": "a", "channel": "fax"}),
                400,
                "`channel`: unknown variant `fax`, expected one of `email`, `web`, `chat`, `phone`, `social`, `api`",
            ),
            (
                json!({"subject": "a", "customer_tier": "gold"}),
                400,
                "`customer_tier`: unknown variant `gold`, expected one of `free`, `standard`, `premium`, `enterprise`",
            ),
            (
                json!({"subject": "a", "channel": "x".repeat(1000)}),
                400,
                &format!("unknown variant `{}…`", "x".repeat(40)),
            ),
            (
                json!({"subject": "a", "channel": 1}),
                400,
                "`channel`: invalid type: integer `1`",
            ),
            (
                json!({"subject": "a", "metadata": "x"}),
                400,
                "`metadata`: invalid type: string \"x\", expected a map",
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
