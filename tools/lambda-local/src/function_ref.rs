//! The `FunctionName` forms Invoke accepts here: `NAME`, as the tests and benches send it, and
//! the unqualified `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME`, as the local stack
//! and moto's Step Functions send it. Versions, aliases and partial ARNs are not served.

use crate::config::valid_function_name;

/// A `FunctionName` that is neither a name nor an unqualified function ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "1 validation error detected: Value '{0}' at 'functionName' failed to satisfy constraint: \
     Member must satisfy regular expression pattern: \
     (arn:(aws[a-zA-Z-]*)?:lambda:[a-z0-9-]+:\\d{{12}}:function:)?[a-zA-Z0-9-_]+ \
     (lambda-local serves no versions, aliases or partial ARNs)"
)]
pub(crate) struct BadFunctionName(pub(crate) String);

/// The function name in a (percent-decoded) `FunctionName`.
pub(crate) fn function_name(raw: &str) -> Result<&str, BadFunctionName> {
    let name = match raw.split(':').collect::<Vec<_>>().as_slice() {
        [name] | ["arn", _, "lambda", _, _, "function", name] => *name,
        _ => "",
    };
    if valid_function_name(name) {
        Ok(name)
    } else {
        Err(BadFunctionName(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_name_or_an_unqualified_arn() {
        assert_eq!(function_name("echo"), Ok("echo"));
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:echo"),
            Ok("echo")
        );
    }

    #[test]
    fn refuses_malformed_and_qualified_names() {
        for bad in [
            "",
            "a b",
            "echo:",
            "echo:$LATEST",
            "echo:live",
            "123456789012:function:echo",
            "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:s3:::bucket",
        ] {
            assert!(function_name(bad).is_err(), "{bad} accepted");
        }
    }
}
