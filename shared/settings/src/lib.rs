//! Typed settings read from the environment once per cold start: the one way every crate
//! in this workspace reads its configuration.
//!
//! A settings type is a flat serde struct with a [`Default`] (the defaults, in one place)
//! whose fields are the variables' names, lowercased and without [`Settings::PREFIX`]
//! (`envy` does the reading). An empty or blank variable counts as unset, surrounding
//! white space is ignored. A value that does not
//! parse, or that [`Settings::validate`] refuses, is a [`ConfigError`] naming the variable:
//! a deployment error that fails the cold start, never a request error.
//!
//! ```
//! #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
//! #[serde(default)]
//! struct Limits {
//!     max_bytes: u64,
//! }
//! impl settings::Settings for Limits {
//!     const PREFIX: &'static str = "DEMO_";
//! }
//! let err = settings::from_vars::<Limits>([("DEMO_MAX_BYTES", "lots")]).unwrap_err();
//! assert_eq!(err.variable, "DEMO_MAX_BYTES");
//! assert_eq!(settings::variables::<Limits>(), ["DEMO_MAX_BYTES"]);
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A settings struct read from the environment.
pub trait Settings: DeserializeOwned + Serialize + Default {
    /// Prefix of every variable of this struct (for example `BEDROCK_`).
    const PREFIX: &'static str;

    /// Checks values against each other and their ranges once they parsed.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A setting that cannot be used: the function refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `variable`.
    pub fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }
}

/// Reads `T` from the process environment.
pub fn from_env<T: Settings>() -> Result<T, ConfigError> {
    // Not `std::env::vars()`, which panics on a name or value that is not UTF-8.
    from_vars(std::env::vars_os().map(|(name, value)| {
        (
            name.to_string_lossy().into_owned(),
            value.to_string_lossy().into_owned(),
        )
    }))
}

/// Reads `T` from `vars` (name, value) pairs, as [`from_env`] does from the environment.
pub fn from_vars<T: Settings>(
    vars: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
) -> Result<T, ConfigError> {
    let known = variables::<T>();
    let ours: Vec<(String, String)> = vars
        .into_iter()
        .map(|(name, value)| (name.into(), value.into()))
        .filter(|(name, value)| known.contains(name) && !value.trim().is_empty())
        .map(|(name, value)| (name, value.trim().to_owned()))
        .collect();
    let settings = match parse::<T>(ours.clone()) {
        Ok(settings) => settings,
        // Name the culprit: the first variable that does not parse on its own.
        Err(message) => {
            return Err(ours
                .iter()
                .find_map(|(name, value)| {
                    parse::<T>([(name.clone(), value.clone())])
                        .err()
                        .map(|message| {
                            ConfigError::new(name, format!("{value:?} is not valid: {message}"))
                        })
                })
                .unwrap_or_else(|| {
                    let names = ours.iter().map(|(name, _)| name.as_str());
                    ConfigError::new(names.collect::<Vec<_>>().join(", "), message)
                }));
        }
    };
    settings.validate()?;
    Ok(settings)
}

fn parse<T: Settings>(vars: impl IntoIterator<Item = (String, String)>) -> Result<T, String> {
    envy::prefixed(T::PREFIX)
        .from_iter(vars)
        .map_err(|e| e.to_string())
}

/// Every variable `T` reads, sorted: its fields as `T::default()` serializes them (so a
/// settings struct uses neither `rename` nor `skip_serializing*`).
pub fn variables<T: Settings>() -> Vec<String> {
    match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(fields)) => fields
            .keys()
            .map(|field| format!("{}{}", T::PREFIX, field.to_ascii_uppercase()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks that `value` of `variable` is within `min..=max`.
pub fn in_range<N: PartialOrd + std::fmt::Display>(
    variable: &str,
    value: N,
    min: N,
    max: N,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(
            variable,
            format!("{value} is out of range; use {min} to {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Demo {
        max_items: u32,
        name: Option<String>,
        force: bool,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                max_items: 8,
                name: None,
                force: false,
            }
        }
    }

    impl Settings for Demo {
        const PREFIX: &'static str = "DEMO_";
        fn validate(&self) -> Result<(), ConfigError> {
            in_range("DEMO_MAX_ITEMS", self.max_items, 1, 32)
        }
    }

    #[test]
    fn defaults_values_and_empty_as_unset() {
        assert_eq!(from_vars::<Demo>([("", ""); 0]).unwrap(), Demo::default());
        let d: Demo = from_vars([
            ("DEMO_MAX_ITEMS", " 12 "),
            ("DEMO_NAME", "x"),
            ("DEMO_FORCE", ""),
            ("OTHER", "ignored"),
        ])
        .unwrap();
        assert_eq!(
            (d.max_items, d.name.as_deref(), d.force),
            (12, Some("x"), false)
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let err = from_vars::<Demo>([("DEMO_NAME", "a"), ("DEMO_FORCE", "yes")]).unwrap_err();
        assert_eq!(err.variable, "DEMO_FORCE");
        assert!(err.to_string().contains("DEMO_FORCE") && err.to_string().contains("yes"));
        let err = from_vars::<Demo>([("DEMO_MAX_ITEMS", "40")]).unwrap_err();
        assert_eq!(err.variable, "DEMO_MAX_ITEMS");
        assert!(err.message.contains("1 to 32"), "{err}");
    }

    #[test]
    fn lists_its_variables() {
        assert_eq!(
            variables::<Demo>(),
            ["DEMO_FORCE", "DEMO_MAX_ITEMS", "DEMO_NAME"]
        );
    }
}
