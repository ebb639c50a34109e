//! HTTP API route keys (`POST /tickets/{id}`, `ANY /{proxy+}`, `$default`) and matching them
//! the way API Gateway does: the most specific route wins.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

/// Methods API Gateway HTTP APIs route on.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

/// A route key that cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// Not `METHOD /path` nor `$default`.
    #[error("route `{0}`: expected \"METHOD /path\" or \"$default\"")]
    Syntax(String),
    /// A method API Gateway does not route on.
    #[error("route `{0}`: unknown method (use GET POST PUT PATCH DELETE HEAD OPTIONS or ANY)")]
    Method(String),
    /// A `{proxy+}` segment that is not last, or an unclosed `{`.
    #[error("route `{0}`: bad path variable (a greedy `{{name+}}` must be the last segment)")]
    Variable(String),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    raw: String,
    method: Option<String>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable(String),
    Greedy(String),
}

impl FromStr for RouteKey {
    type Err = RouteError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw == "$default" {
            return Ok(Self {
                raw: raw.to_owned(),
                method: None,
                segments: Vec::new(),
            });
        }
        let (method, path) = raw
            .split_once(' ')
            .ok_or_else(|| RouteError::Syntax(raw.to_owned()))?;
        let path = path.trim();
        if !path.starts_with('/') {
            return Err(RouteError::Syntax(raw.to_owned()));
        }
        let method = method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(RouteError::Method(raw.to_owned()));
        }
        let parts: Vec<&str> = path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{') {
                None if part.contains(['{', '}']) => {
                    return Err(RouteError::Variable(raw.to_owned()));
                }
                None => Segment::Literal((*part).to_owned()),
                Some(rest) => {
                    let name = rest
                        .strip_suffix('}')
                        .filter(|name| !name.is_empty())
                        .ok_or_else(|| RouteError::Variable(raw.to_owned()))?;
                    match name.strip_suffix('+') {
                        Some(greedy) if index + 1 == parts.len() && !greedy.is_empty() => {
                            Segment::Greedy(greedy.to_owned())
                        }
                        Some(_) => return Err(RouteError::Variable(raw.to_owned())),
                        None => Segment::Variable(name.to_owned()),
                    }
                }
            };
            segments.push(segment);
        }
        Ok(Self {
            raw: format!("{method} {path}"),
            method: (method != "ANY").then_some(method),
            segments,
        })
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// How specific a matching route is; larger wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Specificity {
    not_default: bool,
    not_greedy: bool,
    literals: usize,
    segments: usize,
    method: bool,
}

impl RouteKey {
    /// Whether this is the `$default` catch-all.
    pub fn is_default(&self) -> bool {
        self.raw == "$default"
    }

    /// The path parameters and specificity when `method` and `path` (raw, not decoded)
    /// match this route.
    pub(crate) fn matches(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(BTreeMap<String, String>, Specificity)> {
        let mut params = BTreeMap::new();
        if self.is_default() {
            let specificity = Specificity {
                not_default: false,
                not_greedy: false,
                literals: 0,
                segments: 0,
                method: false,
            };
            return Some((params, specificity));
        }
        if self.method.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        let parts: Vec<&str> = path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
        let mut greedy = false;
        let mut literals = 0;
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(index) != Some(&literal.as_str()) {
                        return None;
                    }
                    literals += 1;
                }
                Segment::Variable(name) => {
                    let value = parts.get(index)?;
                    params.insert(name.clone(), decode(value));
                }
                Segment::Greedy(name) => {
                    let rest = parts.get(index..).filter(|rest| !rest.is_empty())?;
                    params.insert(name.clone(), decode(&rest.join("/")));
                    greedy = true;
                }
            }
        }
        if !greedy && parts.len() != self.segments.len() {
            return None;
        }
        let specificity = Specificity {
            not_default: true,
            not_greedy: !greedy,
            literals,
            segments: self.segments.len(),
            method: self.method.is_some(),
        };
        Some((params, specificity))
    }
}

fn decode(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> RouteKey {
        raw.parse().expect("valid route key")
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(key("post /a/{id}").to_string(), "POST /a/{id}");
        assert!(key("$default").is_default());
        for bad in [
            "/a",
            "GET a",
            "FETCH /a",
            "GET /{a+}/b",
            "GET /{",
            "GET /{}",
            "GET /a}b",
        ] {
            assert!(bad.parse::<RouteKey>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn matches_variables_and_greedy() {
        let (params, _) = key("GET /t/{id}")
            .matches("GET", "/t/a%20b")
            .expect("match");
        assert_eq!(params["id"], "a b");
        assert!(key("GET /t/{id}").matches("GET", "/t").is_none());
        assert!(key("GET /t/{id}").matches("POST", "/t/1").is_none());
        assert!(key("GET /t").matches("GET", "/t/1").is_none());
        let (params, _) = key("ANY /{proxy+}")
            .matches("PUT", "/a/b/c")
            .expect("match");
        assert_eq!(params["proxy"], "a/b/c");
        assert!(key("GET /").matches("GET", "/").is_some());
    }

    #[test]
    fn most_specific_wins() {
        let exact = key("GET /t/new").matches("GET", "/t/new").expect("match").1;
        let variable = key("GET /t/{id}")
            .matches("GET", "/t/new")
            .expect("match")
            .1;
        let any = key("ANY /t/new").matches("GET", "/t/new").expect("match").1;
        let greedy = key("GET /{proxy+}")
            .matches("GET", "/t/new")
            .expect("match")
            .1;
        let default = key("$default").matches("GET", "/t/new").expect("match").1;
        assert!(exact > any && any > variable && variable > greedy && greedy > default);
    }
}
