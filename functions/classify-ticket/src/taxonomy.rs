//! The classification taxonomy: categories and priorities (with the descriptions the model
//! reads), where each category is routed, and where tickets needing review go.
//!
//! It is configuration: `TAXONOMY_JSON` (inline JSON) or `TAXONOMY_FILE` (a path), else the
//! built-in customer-support default (`taxonomy.default.json` in this crate). It is validated
//! once, at cold start.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

/// The category of a ticket the model could not classify; no taxonomy may use the name.
pub const UNCLASSIFIED: &str = "unclassified";

/// The built-in taxonomy, as JSON (the same format `TAXONOMY_JSON` takes).
pub const DEFAULT_TAXONOMY_JSON: &str = include_str!("../taxonomy.default.json");

/// Largest `TAXONOMY_FILE` read.
const MAX_TAXONOMY_FILE_BYTES: u64 = 256 * 1024;
const MAX_CATEGORIES: usize = 50;
const MAX_PRIORITIES: usize = 10;
const MAX_NAME_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_QUEUE_CHARS: usize = 256;

/// A taxonomy that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    /// Both sources were set.
    #[error("set TAXONOMY_JSON or TAXONOMY_FILE, not both")]
    BothSources,
    /// The file could not be read.
    #[error("cannot read TAXONOMY_FILE {path}: {reason}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The JSON is malformed or has unknown or missing fields.
    #[error("taxonomy ({source_name}) is not valid JSON of the expected shape: {error}")]
    Json {
        /// Where it came from.
        source_name: &'static str,
        /// The parser's message.
        error: serde_json::Error,
    },
    /// The JSON is well formed but breaks a rule.
    #[error("taxonomy ({source_name}) is invalid: {}", problems.join("; "))]
    Invalid {
        /// Where it came from.
        source_name: &'static str,
        /// Every rule broken.
        problems: Vec<String>,
    },
}

/// A category or priority: a short machine name and what it means, for the model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Machine name (`[a-z][a-z0-9_-]*`, at most 64 characters).
    pub name: String,
    /// What it covers, shown to the model (at most 500 characters).
    pub description: String,
}

/// The JSON form, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaxonomy {
    categories: Vec<Label>,
    priorities: Vec<Label>,
    #[serde(default)]
    routing: BTreeMap<String, String>,
    #[serde(default)]
    default_queue: Option<String>,
    review_queue: String,
    review_priority: String,
}

/// A validated taxonomy.
///
/// ```
/// let t = classify_ticket::Taxonomy::builtin()?;
/// assert_eq!(t.queue_for("billing"), Some("billing-support"));
/// assert!(t.priority("urgent").is_some());
/// # Ok::<(), classify_ticket::TaxonomyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taxonomy {
    categories: Vec<Label>,
    priorities: Vec<Label>,
    routing: BTreeMap<String, String>,
    default_queue: Option<String>,
    review_queue: String,
    review_priority: String,
}

impl Taxonomy {
    /// The built-in customer-support taxonomy (`taxonomy.default.json`). It is compiled in
    /// and checked by a unit test, but loaded like any other, so a broken one fails the cold
    /// start with its error instead of being replaced.
    pub fn builtin() -> Result<Self, TaxonomyError> {
        Self::parse(DEFAULT_TAXONOMY_JSON, "built-in")
    }

    /// Parses and validates taxonomy JSON; `source_name` names it in errors.
    pub fn parse(json: &str, source_name: &'static str) -> Result<Self, TaxonomyError> {
        let raw: RawTaxonomy = serde_json::from_str(json)
            .map_err(|error| TaxonomyError::Json { source_name, error })?;
        let taxonomy = Self {
            categories: raw.categories,
            priorities: raw.priorities,
            routing: raw.routing,
            default_queue: raw.default_queue,
            review_queue: raw.review_queue,
            review_priority: raw.review_priority,
        };
        let problems = taxonomy.problems();
        if problems.is_empty() {
            Ok(taxonomy)
        } else {
            Err(TaxonomyError::Invalid {
                source_name,
                problems,
            })
        }
    }

    /// Loads the taxonomy from inline `json` (`TAXONOMY_JSON`) or the file at `path`
    /// (`TAXONOMY_FILE`), or the built-in one when neither is given.
    pub fn from_sources(json: Option<&str>, path: Option<&str>) -> Result<Self, TaxonomyError> {
        match (json, path) {
            (Some(_), Some(_)) => Err(TaxonomyError::BothSources),
            (Some(json), None) => Self::parse(json, "TAXONOMY_JSON"),
            (None, Some(path)) => Self::parse(&read_file(path)?, "TAXONOMY_FILE"),
            (None, None) => Self::builtin(),
        }
    }

    /// Categories, in configured order.
    pub fn categories(&self) -> &[Label] {
        &self.categories
    }

    /// Priorities, in configured order.
    pub fn priorities(&self) -> &[Label] {
        &self.priorities
    }

    /// The category called `name`.
    pub fn category(&self, name: &str) -> Option<&Label> {
        self.categories.iter().find(|c| c.name == name)
    }

    /// The priority called `name`.
    pub fn priority(&self, name: &str) -> Option<&Label> {
        self.priorities.iter().find(|p| p.name == name)
    }

    /// The queue for a known category: its route, else the default queue.
    pub fn queue_for(&self, category: &str) -> Option<&str> {
        self.category(category)?;
        self.routing
            .get(category)
            .or(self.default_queue.as_ref())
            .map(String::as_str)
    }

    /// Where unclassified tickets go.
    pub fn review_queue(&self) -> &str {
        &self.review_queue
    }

    /// The priority unclassified tickets get.
    pub fn review_priority(&self) -> &str {
        &self.review_priority
    }

    /// Category names joined with `, ` (for prompts and messages).
    pub fn category_names(&self) -> String {
        join_names(&self.categories)
    }

    /// Priority names joined with `, `.
    pub fn priority_names(&self) -> String {
        join_names(&self.priorities)
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        check_labels(
            "categories",
            &self.categories,
            MAX_CATEGORIES,
            &mut problems,
        );
        check_labels(
            "priorities",
            &self.priorities,
            MAX_PRIORITIES,
            &mut problems,
        );
        if self.category(UNCLASSIFIED).is_some() {
            problems.push(format!(
                "category name `{UNCLASSIFIED}` is reserved for tickets the model could not classify"
            ));
        }
        for (category, queue) in &self.routing {
            if self.category(category).is_none() {
                problems.push(format!(
                    "routing names unknown category `{category}` (categories: {})",
                    self.category_names()
                ));
            }
            check_queue(&format!("routing.{category}"), queue, &mut problems);
        }
        if let Some(queue) = &self.default_queue {
            check_queue("default_queue", queue, &mut problems);
        } else {
            let unrouted: Vec<&str> = self
                .categories
                .iter()
                .filter(|c| !self.routing.contains_key(&c.name))
                .map(|c| c.name.as_str())
                .collect();
            if !unrouted.is_empty() {
                problems.push(format!(
                    "categories without a route and no default_queue: {}",
                    unrouted.join(", ")
                ));
            }
        }
        check_queue("review_queue", &self.review_queue, &mut problems);
        if self.priority(&self.review_priority).is_none() {
            problems.push(format!(
                "review_priority `{}` is not one of the priorities ({})",
                self.review_priority,
                self.priority_names()
            ));
        }
        problems
    }
}

fn join_names(labels: &[Label]) -> String {
    labels
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_file(path: &str) -> Result<String, TaxonomyError> {
    let error = |reason: String| TaxonomyError::Read {
        path: path.to_owned(),
        reason,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| error(e.to_string()))?
        .len();
    if size > MAX_TAXONOMY_FILE_BYTES {
        return Err(error(format!(
            "{size} bytes; the limit is {MAX_TAXONOMY_FILE_BYTES}"
        )));
    }
    std::fs::read_to_string(path).map_err(|e| error(e.to_string()))
}

fn check_labels(field: &str, labels: &[Label], max: usize, problems: &mut Vec<String>) {
    if labels.is_empty() || labels.len() > max {
        problems.push(format!(
            "{field} must have 1 to {max} entries, has {}",
            labels.len()
        ));
    }
    let mut seen = HashSet::new();
    for label in labels {
        if !valid_name(&label.name) {
            problems.push(format!(
                "{field} name {:?} must be 1-{MAX_NAME_CHARS} characters of a-z, 0-9, `_`, `-`, starting with a letter",
                label.name
            ));
        }
        if !seen.insert(label.name.as_str()) {
            problems.push(format!("{field} name `{}` appears twice", label.name));
        }
        let chars = label.description.trim().chars().count();
        if chars == 0 || chars > MAX_DESCRIPTION_CHARS {
            problems.push(format!(
                "{field} `{}` needs a description of 1-{MAX_DESCRIPTION_CHARS} characters",
                label.name
            ));
        }
    }
}

fn check_queue(field: &str, queue: &str, problems: &mut Vec<String>) {
    let chars = queue.chars().count();
    if chars == 0
        || chars > MAX_QUEUE_CHARS
        || queue.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        problems.push(format!(
            "{field} {queue:?} must be 1-{MAX_QUEUE_CHARS} characters without spaces"
        ));
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= MAX_NAME_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_json_is_valid_and_complete() {
        let t = Taxonomy::builtin().unwrap();
        assert_eq!(
            t.category_names(),
            "billing, technical, account, shipping, product_feedback, other"
        );
        assert_eq!(t.priority_names(), "low, medium, high, urgent");
        for c in t.categories() {
            assert!(t.queue_for(&c.name).is_some(), "{} has no queue", c.name);
        }
        assert_eq!(t.queue_for("billing"), Some("billing-support"));
        assert_eq!(t.queue_for("nope"), None);
        assert_eq!(t.review_queue(), "triage");
        assert_eq!(t.review_priority(), "medium");
    }

    #[test]
    fn neither_source_means_builtin() {
        let t = Taxonomy::from_sources(None, None).unwrap();
        assert_eq!(t, Taxonomy::builtin().unwrap());
    }

    #[test]
    fn inline_json_with_default_queue() {
        let json = r#"{"categories":[{"name":"hw","description":"Hardware."},{"name":"sw","description":"Software."}],
            "priorities":[{"name":"p2","description":"Later."},{"name":"p1","description":"Now."}],
            "routing":{"hw":"hardware"},"default_queue":"helpdesk","review_queue":"humans","review_priority":"p1"}"#;
        let t = Taxonomy::from_sources(Some(json), None).unwrap();
        assert_eq!(t.queue_for("hw"), Some("hardware"));
        assert_eq!(t.queue_for("sw"), Some("helpdesk"));
        assert_eq!(t.review_queue(), "humans");
    }

    #[test]
    fn file_source_is_read() {
        let dir = std::env::temp_dir().join(format!("taxonomy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        std::fs::write(&path, DEFAULT_TAXONOMY_JSON).unwrap();
        let p = path.display().to_string();
        let t = Taxonomy::from_sources(None, Some(&p)).unwrap();
        assert_eq!(t, Taxonomy::builtin().unwrap());
        let err = Taxonomy::from_sources(None, Some("/no/such.json")).unwrap_err();
        assert!(err.to_string().contains("/no/such.json"), "{err}");
        let both = Taxonomy::from_sources(Some("x"), Some("x")).unwrap_err();
        assert!(matches!(both, TaxonomyError::BothSources));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let json = r#"{"categories":[{"name":"Billing","description":"x"},{"name":"a","description":""},
            {"name":"a","description":"y"},{"name":"unclassified","description":"z"}],
            "priorities":[],
            "routing":{"ghost":"q","a":"has space"},
            "review_queue":"","review_priority":"high"}"#;
        let err = Taxonomy::parse(json, "TAXONOMY_JSON").unwrap_err();
        let TaxonomyError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        let all = problems.join("\n");
        for needle in [
            "\"Billing\"",
            "`a` needs a description",
            "`a` appears twice",
            "priorities must have 1 to 10",
            "reserved",
            "unknown category `ghost`",
            "routing.a",
            "without a route and no default_queue",
            "review_queue",
            "review_priority `high`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn unknown_fields_and_bad_json_are_refused() {
        let err = Taxonomy::parse(r#"{"categories":[],"priorities":[],"review_queue":"q","review_priority":"p","extra":1}"#, "TAXONOMY_JSON").unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        assert!(matches!(
            Taxonomy::parse("{", "TAXONOMY_JSON"),
            Err(TaxonomyError::Json { .. })
        ));
    }
}
