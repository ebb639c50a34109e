//! Which version of an object an S3 event announces, and how versions of one key are
//! ordered (S3's `sequencer`), so the newest version's record always wins.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The object version an S3 event announces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    /// ETag of the version (quotes removed).
    pub etag: Option<String>,
    /// Version id, when the bucket is versioned.
    pub version_id: Option<String>,
    /// The event's `sequencer`: a hexadecimal string that orders the events of one key.
    pub sequencer: Option<String>,
}

impl Announced {
    /// The version an event's `object` describes: an S3 notification's
    /// (`eTag`, `versionId`, `sequencer`) or an EventBridge event's `detail.object`
    /// (`etag`, `version-id`, `sequencer`). Missing fields are `None`.
    pub fn from_event_object(object: &Value) -> Self {
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| object.get(*n).and_then(Value::as_str))
                .filter(|v| !v.is_empty())
                .map(|v| v.trim_matches('"').to_owned())
        };
        Self {
            etag: field(&["etag", "eTag"]),
            version_id: field(&["version-id", "versionId"]),
            sequencer: field(&["sequencer"]),
        }
    }

    /// Whether the version described by a record's or claim's `source` comes after this
    /// one. Unknown order (a sequencer missing on either side) is never "newer".
    pub fn is_older_than(&self, source: &Value) -> bool {
        let theirs = source.get("sequencer").and_then(Value::as_str);
        match (self.sequencer.as_deref(), theirs) {
            (Some(ours), Some(theirs)) => compare_sequencers(ours, theirs) == Ordering::Less,
            _ => false,
        }
    }

    /// Whether a record's or claim's `source` describes this very version: the same ETag,
    /// and the same version id when both have one.
    pub fn is_same_version(&self, source: &Value) -> bool {
        let field = |name: &str| source.get(name).and_then(Value::as_str);
        let same_etag = self.etag.is_some() && self.etag.as_deref() == field("etag");
        let same_version = match (self.version_id.as_deref(), field("version_id")) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => true,
        };
        same_etag && same_version
    }
}

/// Orders two sequencers of the same key as S3 documents it: the shorter one is padded
/// with zeros on the right, then they compare as (case-insensitive) hexadecimal strings.
pub fn compare_sequencers(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let padded = |s: &str| format!("{:0<width$}", s.to_ascii_uppercase());
    padded(a).cmp(&padded(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sequencers_compare_right_padded_with_zeros() {
        assert_eq!(compare_sequencers("0A", "0B"), Ordering::Less);
        assert_eq!(compare_sequencers("0a", "0A"), Ordering::Equal);
        // Right padding: "FF" is "FF00" beside "FF00" and above "0100".
        assert_eq!(compare_sequencers("FF", "FF00"), Ordering::Equal);
        assert_eq!(compare_sequencers("FF", "100"), Ordering::Greater);
        assert_eq!(compare_sequencers("01", "0002"), Ordering::Greater);
        assert_eq!(
            compare_sequencers("0062E99A88DC407460", "0062E99A88DC40745F"),
            Ordering::Greater
        );
    }

    #[test]
    fn versions_are_read_from_both_event_forms() {
        let bridge = json!({"key": "k", "etag": "e1", "version-id": "v1", "sequencer": "0A"});
        let notification =
            json!({"key": "k", "eTag": "\"e1\"", "versionId": "v1", "sequencer": "0A"});
        for object in [bridge, notification] {
            let v = Announced::from_event_object(&object);
            assert_eq!(v.etag.as_deref(), Some("e1"));
            assert_eq!(v.version_id.as_deref(), Some("v1"));
            assert_eq!(v.sequencer.as_deref(), Some("0A"));
        }
        assert_eq!(
            Announced::from_event_object(&Value::Null),
            Announced::default()
        );
    }

    #[test]
    fn order_needs_both_sequencers() {
        let ours = Announced {
            etag: Some("a".into()),
            version_id: None,
            sequencer: Some("10".into()),
        };
        assert!(ours.is_older_than(&json!({"sequencer": "11"})));
        assert!(!ours.is_older_than(&json!({"sequencer": "10"})));
        assert!(!ours.is_older_than(&json!({"etag": "b"})));
        let unordered = Announced {
            sequencer: None,
            ..ours.clone()
        };
        assert!(!unordered.is_older_than(&json!({"sequencer": "FF"})));
    }

    #[test]
    fn same_version_needs_the_etag_and_a_matching_version_id() {
        let ours = Announced {
            etag: Some("a".into()),
            version_id: Some("v1".into()),
            sequencer: None,
        };
        assert!(ours.is_same_version(&json!({"etag": "a", "version_id": "v1"})));
        assert!(ours.is_same_version(&json!({"etag": "a"})));
        assert!(!ours.is_same_version(&json!({"etag": "a", "version_id": "v2"})));
        assert!(!ours.is_same_version(&json!({"etag": "b", "version_id": "v1"})));
        assert!(!Announced::default().is_same_version(&json!({})));
    }
}
