//! Reading the model's answer: find the first JSON object in it (tolerating text and code
//! fences around it) and check it against the taxonomy, listing every problem found.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::taxonomy::Taxonomy;
use crate::ticket::shorten;

/// Longest rationale kept, in characters; longer ones are cut.
pub const MAX_RATIONALE_CHARS: usize = 300;
/// `{` positions tried when looking for the first JSON object.
const MAX_OBJECT_STARTS: usize = 32;
/// Characters of a model-given value echoed in a problem message.
const ECHO_CHARS: usize = 40;

/// A sentiment label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Positive,
    Neutral,
    Negative,
}

impl SentimentLabel {
    /// Every label, as written in JSON.
    pub const NAMES: [&'static str; 3] = ["positive", "neutral", "negative"];

    fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "positive" => Some(Self::Positive),
            "neutral" => Some(Self::Neutral),
            "negative" => Some(Self::Negative),
            _ => None,
        }
    }
}

/// The ticket's sentiment and how strongly it shows (0-1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// The model's confidence in the label, 0-1.
    pub score: f64,
}

/// A model answer that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// A category of the taxonomy.
    pub category: String,
    /// A priority of the taxonomy.
    pub priority: String,
    pub sentiment: Sentiment,
    /// The model's confidence in the category, 0-1.
    pub confidence: f64,
    /// One line, at most [`MAX_RATIONALE_CHARS`] characters.
    pub rationale: String,
}

/// Why an answer was refused: every problem, phrased for the model's repair prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("; "))]
pub struct InvalidAnswer {
    /// Each problem, one sentence.
    pub problems: Vec<String>,
}

/// The model's whole answer: the `prefill` the prompt ended with plus its `generation`.
pub fn full_answer(prefill: &str, generation: &str) -> String {
    format!("{prefill}{generation}")
}

/// Parses and checks `answer` (see [`full_answer`]) against `taxonomy`.
pub fn parse_answer(answer: &str, taxonomy: &Taxonomy) -> Result<Answer, InvalidAnswer> {
    let Some(object) = first_json_object(answer) else {
        return Err(InvalidAnswer {
            problems: vec!["the answer contains no JSON object".into()],
        });
    };
    check(&object, taxonomy)
}

/// The first JSON object in `text`, ignoring anything before or after it (prose, code
/// fences). A `{` that does not start a valid object is skipped.
pub fn first_json_object(text: &str) -> Option<Map<String, Value>> {
    text.match_indices('{')
        .take(MAX_OBJECT_STARTS)
        .find_map(|(start, _)| {
            let rest = text.get(start..)?;
            let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            match values.next() {
                Some(Ok(Value::Object(map))) => Some(map),
                _ => None,
            }
        })
}

fn check(object: &Map<String, Value>, taxonomy: &Taxonomy) -> Result<Answer, InvalidAnswer> {
    let mut problems = Vec::new();
    let category = name_field(
        object,
        "category",
        |name| taxonomy.category(name).is_some(),
        &taxonomy.category_names(),
        &mut problems,
    );
    let priority = name_field(
        object,
        "priority",
        |name| taxonomy.priority(name).is_some(),
        &taxonomy.priority_names(),
        &mut problems,
    );
    let sentiment = sentiment_field(object, &mut problems);
    let confidence = unit_number(object.get("confidence"), "confidence", &mut problems);
    let rationale = match object.get("rationale") {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(one_line(text)),
        Some(Value::String(_)) => {
            problems.push("`rationale` is empty; give one short sentence".into());
            None
        }
        None => {
            problems.push("`rationale` is missing".into());
            None
        }
        Some(other) => {
            problems.push(format!("`rationale` must be a string, not {}", echo(other)));
            None
        }
    };
    match (category, priority, sentiment, confidence, rationale) {
        (Some(category), Some(priority), Some(sentiment), Some(confidence), Some(rationale))
            if problems.is_empty() =>
        {
            Ok(Answer {
                category,
                priority,
                sentiment,
                confidence,
                rationale,
            })
        }
        _ => Err(InvalidAnswer { problems }),
    }
}

/// A taxonomy name; case and surrounding spaces are forgiven.
fn name_field(
    object: &Map<String, Value>,
    field: &str,
    known: impl Fn(&str) -> bool,
    allowed: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    match object.get(field) {
        Some(Value::String(given)) => {
            let name = given.trim().to_ascii_lowercase();
            if known(&name) {
                Some(name)
            } else {
                problems.push(format!(
                    "`{field}` {:?} is not one of: {allowed}",
                    shorten(given, ECHO_CHARS)
                ));
                None
            }
        }
        None => {
            problems.push(format!("`{field}` is missing (one of: {allowed})"));
            None
        }
        Some(other) => {
            problems.push(format!(
                "`{field}` must be a string, one of: {allowed}; not {}",
                echo(other)
            ));
            None
        }
    }
}

fn sentiment_field(object: &Map<String, Value>, problems: &mut Vec<String>) -> Option<Sentiment> {
    let labels = SentimentLabel::NAMES.join(", ");
    let Some(value) = object.get("sentiment") else {
        problems.push(format!(
            "`sentiment` is missing (an object with `label` ({labels}) and `score` (0 to 1))"
        ));
        return None;
    };
    let Value::Object(sentiment) = value else {
        problems.push(format!(
            "`sentiment` must be an object with `label` ({labels}) and `score` (0 to 1), not {}",
            echo(value)
        ));
        return None;
    };
    let label = match sentiment.get("label") {
        Some(Value::String(given)) => {
            let label = SentimentLabel::parse(given);
            if label.is_none() {
                problems.push(format!(
                    "`sentiment.label` {:?} is not one of: {labels}",
                    shorten(given, ECHO_CHARS)
                ));
            }
            label
        }
        None => {
            problems.push(format!("`sentiment.label` is missing (one of: {labels})"));
            None
        }
        Some(other) => {
            problems.push(format!(
                "`sentiment.label` must be one of {labels}, not {}",
                echo(other)
            ));
            None
        }
    };
    let score = unit_number(sentiment.get("score"), "sentiment.score", problems);
    Some(Sentiment {
        label: label?,
        score: score?,
    })
}

fn unit_number(value: Option<&Value>, field: &str, problems: &mut Vec<String>) -> Option<f64> {
    match value {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Some(x),
            _ => {
                problems.push(format!("`{field}` is {n}; it must be a number from 0 to 1"));
                None
            }
        },
        None => {
            problems.push(format!("`{field}` is missing (a number from 0 to 1)"));
            None
        }
        Some(other) => {
            problems.push(format!(
                "`{field}` must be a number from 0 to 1, not {}",
                echo(other)
            ));
            None
        }
    }
}

/// A model-given JSON value, shortened, for a problem message.
fn echo(value: &Value) -> String {
    shorten(&value.to_string(), ECHO_CHARS)
}

/// Whitespace runs (newlines included) become one space; cut to [`MAX_RATIONALE_CHARS`].
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    shorten(&joined, MAX_RATIONALE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"category":"billing","priority":"high","sentiment":{"label":"negative","score":0.82},"confidence":0.9,"rationale":"Double charge."}"#;

    fn taxonomy() -> Taxonomy {
        Taxonomy::builtin().unwrap()
    }

    #[test]
    fn a_good_answer() {
        let a = parse_answer(GOOD, &taxonomy()).unwrap();
        assert_eq!(a.category, "billing");
        assert_eq!(a.priority, "high");
        assert_eq!(a.sentiment.label, SentimentLabel::Negative);
        assert_eq!(a.sentiment.score, 0.82);
        assert_eq!(a.confidence, 0.9);
        assert_eq!(a.rationale, "Double charge.");
    }

    #[test]
    fn prefill_and_surroundings_are_tolerated() {
        let body = GOOD.strip_prefix('{').unwrap();
        let wrapped = [
            full_answer("{", body),
            full_answer("{", &format!("{body}\nI hope this helps! {{not json}}")),
            // The model repeated the prefilled brace.
            full_answer("{", GOOD),
            format!("Sure! Here it is:\n```json\n{GOOD}\n```\n"),
            format!("{{oops}} then {{\"a\": [1,2]}}... no wait: {GOOD}"),
        ];
        for answer in &wrapped {
            // The first *object* wins; `{"a": [1,2]}` parses, so that case has problems.
            let result = parse_answer(answer, &taxonomy());
            if answer.contains("\"a\": [1,2]") {
                assert!(result.is_err());
            } else {
                assert_eq!(result.unwrap().category, "billing", "{answer}");
            }
        }
    }

    #[test]
    fn case_and_spaces_in_names_are_forgiven() {
        let answer = GOOD
            .replace("\"billing\"", "\" Billing \"")
            .replace("\"negative\"", "\"NEGATIVE\"");
        let a = parse_answer(&answer, &taxonomy()).unwrap();
        assert_eq!(a.category, "billing");
        assert_eq!(a.sentiment.label, SentimentLabel::Negative);
    }

    #[test]
    fn rationale_becomes_one_short_line() {
        let long = "word ".repeat(200);
        let answer = GOOD.replace("Double charge.", &format!("Line one.\\nLine two. {long}"));
        let a = parse_answer(&answer, &taxonomy()).unwrap();
        assert!(a.rationale.starts_with("Line one. Line two. word"));
        assert!(!a.rationale.contains('\n'));
        assert_eq!(a.rationale.chars().count(), MAX_RATIONALE_CHARS + 1); // plus the ellipsis
    }

    #[test]
    fn every_problem_is_listed() {
        let answer = r#"{"category":"refunds","priority":5,"sentiment":{"label":"angry","score":82},"confidence":"high","rationale":""}"#;
        let err = parse_answer(answer, &taxonomy()).unwrap_err();
        let all = err.to_string();
        for needle in [
            "`category` \"refunds\" is not one of: billing, technical",
            "`priority` must be a string, one of: low, medium, high, urgent; not 5",
            "`sentiment.label` \"angry\" is not one of: positive, neutral, negative",
            "`sentiment.score` is 82; it must be a number from 0 to 1",
            "`confidence` must be a number from 0 to 1, not \"high\"",
            "`rationale` is empty",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        assert_eq!(err.problems.len(), 6);
    }

    #[test]
    fn missing_fields_and_wrong_shapes() {
        let err = parse_answer(r#"{"sentiment":"negative"}"#, &taxonomy()).unwrap_err();
        let all = err.to_string();
        for needle in [
            "`category` is missing",
            "`priority` is missing",
            "`sentiment` must be an object",
            "`confidence` is missing",
            "`rationale` is missing",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        let err = parse_answer("I cannot help with that.", &taxonomy()).unwrap_err();
        assert_eq!(err.problems, ["the answer contains no JSON object"]);
        let err = parse_answer("{\"category\": \"billing\", \"prio", &taxonomy()).unwrap_err();
        assert_eq!(err.problems, ["the answer contains no JSON object"]);
        let err = parse_answer("[1, 2]", &taxonomy()).unwrap_err();
        assert_eq!(err.problems, ["the answer contains no JSON object"]);
    }

    #[test]
    fn echoed_values_are_short() {
        let answer = GOOD.replace("\"billing\"", &format!("\"{}\"", "x".repeat(5000)));
        let err = parse_answer(&answer, &taxonomy()).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
    }
}
