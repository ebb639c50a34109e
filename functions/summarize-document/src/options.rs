//! What kind of summary the caller wants: length, format and output language.

use serde::{Deserialize, Serialize};
use text::Language;

/// How long the summary should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Length {
    /// Two or three sentences.
    Short,
    /// One solid paragraph (the default).
    #[default]
    Medium,
    /// Several paragraphs.
    Long,
}

impl Length {
    /// The instruction given to the model.
    pub fn instruction(self) -> &'static str {
        match self {
            Self::Short => "at most three sentences",
            Self::Medium => "one paragraph of five to eight sentences",
            Self::Long => "three to five paragraphs",
        }
    }

    /// Tokens the model may generate for a final summary of this length.
    pub fn max_gen_len(self) -> u32 {
        match self {
            Self::Short => 192,
            Self::Medium => 512,
            Self::Long => 1024,
        }
    }
}

/// How the summary is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Prose (the default).
    #[default]
    Paragraph,
    /// A Markdown bullet list.
    Bullets,
}

/// Summary options; every field is optional in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryOptions {
    /// Summary length.
    #[serde(default)]
    pub length: Length,
    /// Summary layout.
    #[serde(default)]
    pub format: Format,
    /// Output language; default: the document's language, else English.
    #[serde(default)]
    pub language: Option<Language>,
    /// Whether the final summary is generated with InvokeModelWithResponseStream (set by
    /// the HTTP route, which will pass the text on as it comes; not part of the JSON).
    #[serde(skip)]
    pub stream: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options_and_rejects_unknown_values() {
        let o: SummaryOptions =
            serde_json::from_str(r#"{"length":"short","format":"bullets","language":"German"}"#)
                .unwrap();
        assert_eq!(
            (o.length, o.format, o.language),
            (Length::Short, Format::Bullets, Some(Language::German))
        );
        assert_eq!(
            serde_json::from_str::<SummaryOptions>("{}").unwrap(),
            SummaryOptions::default()
        );
        for bad in [
            r#"{"length":"huge"}"#,
            r#"{"format":"table"}"#,
            r#"{"language":"ja"}"#,
            r#"{"colour":1}"#,
        ] {
            assert!(
                serde_json::from_str::<SummaryOptions>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
