//! The `FunctionName` forms Invoke accepts: `NAME`, `NAME:QUALIFIER`,
//! `ACCOUNT:function:NAME[:QUALIFIER]` and
//! `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.

use crate::config::valid_function_name;

/// A function name with its optional version or alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionRef {
    /// The function name.
    pub(crate) name: String,
    /// `$LATEST`, a version number or an alias.
    pub(crate) qualifier: Option<String>,
}

/// A `FunctionName` that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "1 validation error detected: Value '{0}' at 'functionName' failed to satisfy constraint: \
     Member must satisfy regular expression pattern: \
     (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
)]
pub(crate) struct BadFunctionName(pub(crate) String);

impl FunctionRef {
    /// Parses a (percent-decoded) `FunctionName`.
    pub(crate) fn parse(raw: &str) -> Result<Self, BadFunctionName> {
        let bad = || BadFunctionName(raw.to_owned());
        let parts: Vec<&str> = raw.split(':').collect();
        let (name, qualifier) = match parts.as_slice() {
            [
                "arn",
                partition,
                "lambda",
                _region,
                _account,
                "function",
                name,
                rest @ ..,
            ] if partition.starts_with("aws") && rest.len() <= 1 => (*name, rest.first().copied()),
            [account, "function", name, rest @ ..]
                if account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && rest.len() <= 1 =>
            {
                (*name, rest.first().copied())
            }
            [name] => (*name, None),
            [name, qualifier] => (*name, Some(*qualifier)),
            _ => return Err(bad()),
        };
        if !valid_function_name(name) {
            return Err(bad());
        }
        if let Some(qualifier) = qualifier
            && !valid_qualifier(qualifier)
        {
            return Err(bad());
        }
        Ok(Self {
            name: name.to_owned(),
            qualifier: qualifier.map(str::to_owned),
        })
    }
}

/// `$LATEST` or 1 to 128 of `A-Z a-z 0-9 - _`.
pub(crate) fn valid_qualifier(qualifier: &str) -> bool {
    qualifier == "$LATEST"
        || ((1..=128).contains(&qualifier.len())
            && qualifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> (String, Option<String>) {
        let r = FunctionRef::parse(raw).expect("valid");
        (r.name, r.qualifier)
    }

    #[test]
    fn accepts_every_form() {
        let plain = ("echo".to_owned(), None);
        let latest = ("echo".to_owned(), Some("$LATEST".to_owned()));
        assert_eq!(parsed("echo"), plain);
        assert_eq!(parsed("echo:$LATEST"), latest);
        assert_eq!(parsed("123456789012:function:echo"), plain);
        assert_eq!(
            parsed("arn:aws:lambda:us-east-1:123456789012:function:echo"),
            plain
        );
        assert_eq!(
            parsed("arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST"),
            latest
        );
        assert_eq!(
            parsed("arn:aws-cn:lambda:cn-north-1:123456789012:function:echo:live").1,
            Some("live".to_owned())
        );
    }

    #[test]
    fn refuses_malformed_names() {
        for bad in [
            "",
            "a b",
            "echo:",
            "echo:1:2",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "12:function:echo",
            "echo:bad qualifier",
        ] {
            assert!(FunctionRef::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
