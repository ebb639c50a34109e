//! Glossary entries: validation, their lines in the prompt, and the check of a translation.

use lambda_kit::TaskError;
use serde::{Deserialize, Serialize};

/// One glossary entry as sent: a term and its fixed translation, or `null` (or no
/// `translation`) to keep the term as it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlossaryEntry {
    /// The term as it appears in the source text (matched case-sensitively).
    pub term: String,
    /// Its fixed translation; `None` keeps the term unchanged.
    #[serde(default)]
    pub translation: Option<String>,
}

impl GlossaryEntry {
    /// What the translation must contain wherever the source contains the term.
    pub fn expected(&self) -> &str {
        self.translation.as_deref().unwrap_or(&self.term)
    }
}

/// A glossary term the translation of a chunk does not render as required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlossaryViolation {
    /// The term found in the source chunk.
    pub term: String,
    /// What the translation should have contained.
    pub expected: String,
    /// The chunk (0-based, in text order) whose translation misses it.
    pub chunk: usize,
}

impl GlossaryViolation {
    /// The violations of the `missed` entries in chunk `chunk`.
    pub fn in_chunk(missed: &[&GlossaryEntry], chunk: usize) -> Vec<Self> {
        missed
            .iter()
            .map(|e| Self {
                term: e.term.clone(),
                expected: e.expected().to_owned(),
                chunk,
            })
            .collect()
    }
}

/// A validated glossary: trimmed terms, no duplicates, within the size limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Glossary {
    /// Entries, longest term first (so a longer term is matched before a term inside it).
    entries: Vec<GlossaryEntry>,
}

impl Glossary {
    /// Validates `entries`: at most `max_entries`, each term and translation non-empty,
    /// at most `max_chars` characters, on one line, and no term twice.
    pub fn new(
        entries: Vec<GlossaryEntry>,
        max_entries: usize,
        max_chars: usize,
    ) -> Result<Self, TaskError> {
        if entries.len() > max_entries {
            return Err(TaskError::InputTooLarge(format!(
                "glossary has {} entries; the limit is {max_entries}",
                entries.len()
            )));
        }
        let mut clean: Vec<GlossaryEntry> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let term = field(&entry.term, "term", i, max_chars)?;
            let translation = entry
                .translation
                .as_deref()
                .map(|t| field(t, "translation", i, max_chars))
                .transpose()?;
            if clean.iter().any(|e| e.term == term) {
                return Err(TaskError::InvalidInput(format!(
                    "glossary[{i}].term {term:?} appears more than once"
                )));
            }
            clean.push(GlossaryEntry { term, translation });
        }
        clean.sort_by_key(|e| std::cmp::Reverse(e.term.chars().count()));
        Ok(Self { entries: clean })
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, longest term first.
    pub fn entries(&self) -> &[GlossaryEntry] {
        &self.entries
    }

    /// The entries whose term occurs in `source` (outside longer glossary terms) but
    /// whose expected rendering is missing from `translation`.
    pub fn violations(&self, source: &str, translation: &str) -> Vec<&GlossaryEntry> {
        let mut rest = source.to_owned();
        let mut missed = Vec::new();
        for entry in &self.entries {
            if !rest.contains(&entry.term) {
                continue;
            }
            // Occurrences inside this (longer) term no longer count for shorter terms.
            // Terms hold no control characters, so the marker cannot form a new match.
            rest = rest.replace(&entry.term, "\u{1}");
            if !translation.contains(entry.expected()) {
                missed.push(entry);
            }
        }
        missed
    }
}

/// Checks one glossary string and returns it trimmed.
fn field(value: &str, name: &str, index: usize, max_chars: usize) -> Result<String, TaskError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(TaskError::InvalidInput(format!(
            "glossary[{index}].{name} is empty{}",
            if name == "translation" {
                "; use null to keep the term unchanged"
            } else {
                ""
            }
        )));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(TaskError::InputTooLarge(format!(
            "glossary[{index}].{name} is {chars} characters; the limit is {max_chars}"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(TaskError::InvalidInput(format!(
            "glossary[{index}].{name} contains a line break or control character"
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: &str, translation: Option<&str>) -> GlossaryEntry {
        GlossaryEntry {
            term: term.into(),
            translation: translation.map(Into::into),
        }
    }

    #[test]
    fn validates_size_and_shape() {
        let ok = Glossary::new(vec![entry(" Acme ", None)], 2, 10).unwrap();
        assert_eq!(ok.entries()[0].term, "Acme");
        let cases = [
            (
                vec![entry("a", None), entry("b", None), entry("c", None)],
                "InputTooLarge",
            ),
            (vec![entry("  ", None)], "InvalidInput"),
            (vec![entry("a", Some(""))], "InvalidInput"),
            (vec![entry(&"x".repeat(11), None)], "InputTooLarge"),
            (vec![entry("a", Some(&"y".repeat(11)))], "InputTooLarge"),
            (vec![entry("a\nb", None)], "InvalidInput"),
            (
                vec![entry("a", None), entry("a ", Some("b"))],
                "InvalidInput",
            ),
        ];
        for (entries, kind) in cases {
            let err = Glossary::new(entries.clone(), 2, 10).unwrap_err();
            assert_eq!(err.error_type(), kind, "{entries:?}: {err}");
            assert!(err.to_string().contains("glossary"), "{err}");
        }
    }

    #[test]
    fn finds_terms_missing_from_the_translation() {
        let glossary = Glossary::new(
            vec![
                entry("Acme Cloud", None),
                entry("invoice", Some("Rechnung")),
                entry("ticket", Some("Ticket")),
            ],
            10,
            50,
        )
        .unwrap();
        let source = "Your invoice for Acme Cloud is ready.";
        assert!(
            glossary
                .violations(source, "Ihre Rechnung für Acme Cloud ist fertig.")
                .is_empty()
        );
        let missed = glossary.violations(source, "Ihre Faktura für die Acme-Wolke ist fertig.");
        let terms: Vec<&str> = missed.iter().map(|e| e.term.as_str()).collect();
        assert_eq!(terms, ["Acme Cloud", "invoice"]);
        // Terms absent from the source are not required.
        assert!(
            glossary
                .violations("Nothing here.", "Nichts hier.")
                .is_empty()
        );
    }

    #[test]
    fn a_term_inside_a_longer_term_is_not_required_separately() {
        let glossary = Glossary::new(
            vec![
                entry("Cloud", None),
                entry("Acme Cloud", Some("Acme Wolke")),
            ],
            10,
            50,
        )
        .unwrap();
        assert!(
            glossary
                .violations("Acme Cloud rocks", "Acme Wolke rockt")
                .is_empty()
        );
        let missed = glossary.violations("Acme Cloud and Cloud", "Acme Wolke und Wolke");
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].term, "Cloud");
    }
}
