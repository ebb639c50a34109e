//! Where a text document to translate is in S3.

use serde::{Deserialize, Serialize};

/// An S3 object holding the text to translate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentRef {
    /// Bucket name.
    pub bucket: String,
    /// Object key (not URL-encoded).
    pub key: String,
}
