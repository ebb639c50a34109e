//! The eight languages Llama 3.2 supports, by code or name, and offline detection.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A language Llama 3.2 officially supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// English (`en`).
    English,
    /// German (`de`).
    German,
    /// French (`fr`).
    French,
    /// Italian (`it`).
    Italian,
    /// Portuguese (`pt`).
    Portuguese,
    /// Hindi (`hi`).
    Hindi,
    /// Spanish (`es`).
    Spanish,
    /// Thai (`th`).
    Thai,
}

/// A language name or code that is not one of the eight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported language {given:?}; supported: {}",
    Language::supported_list()
)]
pub struct UnsupportedLanguage {
    /// What was given.
    pub given: String,
}

impl Language {
    /// All eight, in a fixed order.
    pub const ALL: [Language; 8] = [
        Self::English,
        Self::German,
        Self::French,
        Self::Italian,
        Self::Portuguese,
        Self::Hindi,
        Self::Spanish,
        Self::Thai,
    ];

    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::German => "de",
            Self::French => "fr",
            Self::Italian => "it",
            Self::Portuguese => "pt",
            Self::Hindi => "hi",
            Self::Spanish => "es",
            Self::Thai => "th",
        }
    }

    /// The English name.
    pub fn name(self) -> &'static str {
        match self {
            Self::English => "English",
            Self::German => "German",
            Self::French => "French",
            Self::Italian => "Italian",
            Self::Portuguese => "Portuguese",
            Self::Hindi => "Hindi",
            Self::Spanish => "Spanish",
            Self::Thai => "Thai",
        }
    }

    /// `en (English), de (German), ...` for error messages.
    pub fn supported_list() -> String {
        Self::ALL
            .iter()
            .map(|l| format!("{} ({})", l.code(), l.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn from_whatlang(lang: whatlang::Lang) -> Option<Self> {
        Some(match lang {
            whatlang::Lang::Eng => Self::English,
            whatlang::Lang::Deu => Self::German,
            whatlang::Lang::Fra => Self::French,
            whatlang::Lang::Ita => Self::Italian,
            whatlang::Lang::Por => Self::Portuguese,
            whatlang::Lang::Hin => Self::Hindi,
            whatlang::Lang::Spa => Self::Spanish,
            whatlang::Lang::Tha => Self::Thai,
            _ => return None,
        })
    }
}

impl FromStr for Language {
    type Err = UnsupportedLanguage;

    /// Accepts an ISO 639-1 code or the English name, in any case (`de`, `German`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|l| {
                l.code().eq_ignore_ascii_case(wanted) || l.name().eq_ignore_ascii_case(wanted)
            })
            .ok_or_else(|| UnsupportedLanguage {
                given: s.to_owned(),
            })
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Language {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A detected language and how sure the detector is (0-1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detection {
    pub language: Language,
    /// Detector confidence, 0-1.
    pub confidence: f64,
}

/// At most this many bytes are examined: enough for a verdict, cheap on long documents.
const DETECTION_SAMPLE_BYTES: usize = 16 * 1024;

/// Detects which of the eight languages `text` is in, offline (whatlang, limited to the
/// eight). `None` for text with too few letters to tell.
pub fn detect(text: &str) -> Option<Detection> {
    let mut end = text.len().min(DETECTION_SAMPLE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let sample = &text[..end];
    if sample.chars().filter(|c| c.is_alphabetic()).count() < 3 {
        return None;
    }
    let detector = whatlang::Detector::with_allowlist(vec![
        whatlang::Lang::Eng,
        whatlang::Lang::Deu,
        whatlang::Lang::Fra,
        whatlang::Lang::Ita,
        whatlang::Lang::Por,
        whatlang::Lang::Hin,
        whatlang::Lang::Spa,
        whatlang::Lang::Tha,
    ]);
    let info = detector.detect(sample)?;
    Some(Detection {
        language: Language::from_whatlang(info.lang())?,
        confidence: info.confidence(),
    })
}

/// Below this detector confidence (0-1) a guess does not count: short texts (a few words)
/// often get a wrong guess under 0.3, and a wrong source language makes a translation
/// worse than none. Every caller that acts on a detected language uses this one threshold
/// (through [`detect_confident`]).
pub const MIN_CONFIDENCE: f64 = 0.4;

/// [`detect`], keeping only a guess with at least [`MIN_CONFIDENCE`].
pub fn detect_confident(text: &str) -> Option<Detection> {
    detect(text).filter(|d| d.confidence >= MIN_CONFIDENCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_names_in_any_case() {
        assert_eq!("de".parse::<Language>().unwrap(), Language::German);
        assert_eq!(" THAI ".parse::<Language>().unwrap(), Language::Thai);
        assert_eq!(
            "Portuguese".parse::<Language>().unwrap(),
            Language::Portuguese
        );
        let err = "ja".parse::<Language>().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"ja\"") && msg.contains("hi (Hindi)") && msg.contains("th (Thai)"),
            "{msg}"
        );
    }

    #[test]
    fn serializes_as_code() {
        assert_eq!(serde_json::to_string(&Language::Hindi).unwrap(), "\"hi\"");
        let l: Language = serde_json::from_str("\"Spanish\"").unwrap();
        assert_eq!(l, Language::Spanish);
        assert!(serde_json::from_str::<Language>("\"klingon\"").is_err());
    }

    #[test]
    fn detects_each_language_from_the_samples() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tokens/tests/data/languages"
        );
        for lang in Language::ALL {
            let text = std::fs::read_to_string(format!("{dir}/{}.txt", lang.code())).unwrap();
            let detection = detect(&text).unwrap();
            assert_eq!(detection.language, lang);
        }
    }

    #[test]
    fn too_little_text_is_undetermined() {
        assert!(detect("").is_none());
        assert!(detect("12 34 !!").is_none());
        // Slicing at the sample limit never splits a character.
        let long = "ü".repeat(DETECTION_SAMPLE_BYTES);
        let _ = detect(&long);
    }

    #[test]
    fn weak_guesses_do_not_count() {
        // A short English title that whatlang calls Italian, with little confidence.
        let weak = detect("Data file v2 final").unwrap();
        assert!(weak.confidence < MIN_CONFIDENCE, "{weak:?}");
        assert_eq!(detect_confident("Data file v2 final"), None);
        let strong = detect_confident("Hallo Welt, wie geht es dir heute?").unwrap();
        assert_eq!(strong.language, Language::German);
    }
}
