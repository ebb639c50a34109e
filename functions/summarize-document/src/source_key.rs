//! The workflow's source key: found as given or in its URL-decoded form, and shortened to a
//! display name.
//!
//! EventBridge events carry `detail.object.key` as the key is (not URL-encoded), while S3
//! notifications form-encode it (space as `+`). A key copied from a notification into a
//! direct start, or an event that was encoded on the way, would then name no object: a key
//! that is not found as given and looks encoded is tried decoded.

use lambda_kit::{TaskError, decode_s3_key};

/// Longest display name, in characters (ellipsis included). classify-ticket takes subjects
/// of up to 500 characters (`CLASSIFY_MAX_SUBJECT_CHARS`); S3 keys may have 1,024 bytes.
pub const MAX_NAME_CHARS: usize = 120;

/// The key's decoded form when it looks URL-encoded (has a `+` or a `%XX`) and decodes to
/// different valid UTF-8; `None` otherwise.
pub fn decoded_alternative(key: &str) -> Option<String> {
    let bytes = key.as_bytes();
    let has_escape = bytes
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
    if !has_escape && !key.contains('+') {
        return None;
    }
    decode_s3_key(key).ok().filter(|decoded| decoded != key)
}

/// Runs `read` on `key`, and when that finds no object, on its decoded form (see
/// [`decoded_alternative`]). Returns what was read and the key it was found under.
pub async fn read_either<T, F, Fut>(key: &str, mut read: F) -> Result<(T, String), TaskError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<T, TaskError>>,
{
    match read(key.to_owned()).await {
        Err(TaskError::DocumentNotFound(message)) => {
            let Some(decoded) = decoded_alternative(key) else {
                return Err(TaskError::DocumentNotFound(message));
            };
            match read(decoded.clone()).await {
                Ok(found) => Ok((found, decoded)),
                // Name the key as given: that is what the caller knows.
                Err(TaskError::DocumentNotFound(_)) => Err(TaskError::DocumentNotFound(format!(
                    "{message} (nor does its URL-decoded form {decoded:?})"
                ))),
                Err(other) => Err(other),
            }
        }
        other => other.map(|found| (found, key.to_owned())),
    }
}

/// A short name for the document: the key's last path segment (the whole key when that is
/// empty), cut on a character boundary to [`MAX_NAME_CHARS`] with an ellipsis.
pub fn display_name(key: &str) -> String {
    let trimmed = key.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or_default();
    let name = if last.is_empty() { key } else { last };
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_owned();
    }
    let mut short: String = name.chars().take(MAX_NAME_CHARS - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_that_look_encoded_have_a_decoded_alternative() {
        assert_eq!(
            decoded_alternative("workflow/a+b%2Bc%25.txt").as_deref(),
            Some("workflow/a b+c%.txt")
        );
        assert_eq!(
            decoded_alternative("workflow/%C3%BCber.txt").as_deref(),
            Some("workflow/über.txt")
        );
        for plain in ["workflow/a b.txt", "workflow/100%.txt", "workflow/über.txt"] {
            assert_eq!(decoded_alternative(plain), None, "{plain}");
        }
        // Not UTF-8 once decoded: no alternative.
        assert_eq!(decoded_alternative("workflow/%FF.txt"), None);
    }

    #[test]
    fn display_names_are_short_last_segments() {
        assert_eq!(display_name("workflow/q3/report.pdf"), "report.pdf");
        assert_eq!(display_name("report.pdf"), "report.pdf");
        assert_eq!(display_name("workflow/dir/"), "dir");
        // A 1,000-byte key (S3 allows 1,024), cut among two-byte characters: the subject
        // the workflow sends to classify-ticket stays under its 500 characters.
        let long = format!("workflow/{}x", "ä".repeat(495));
        assert_eq!(long.len(), 1000);
        let name = display_name(&long);
        assert_eq!(name.chars().count(), MAX_NAME_CHARS);
        assert!(name.starts_with("ää") && name.ends_with("ä…"), "{name}");
        assert!(format!("Document {name}").chars().count() <= 500);
    }
}
