//! Text documents from S3: where one is, and its bytes decoded as text.

use lambda_kit::TaskError;
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

const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];
const UTF16LE_BOM: &[u8] = &[0xFF, 0xFE];
const UTF16BE_BOM: &[u8] = &[0xFE, 0xFF];

/// Decodes a text document: UTF-8 (a byte-order mark is dropped) or UTF-16 with a
/// byte-order mark. Anything else, binary data, or a document without text is
/// `UnsupportedDocument`.
pub fn decode_text(bytes: &[u8]) -> Result<String, TaskError> {
    let text = if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        utf8(rest)?
    } else if let Some(rest) = bytes.strip_prefix(UTF16LE_BOM) {
        utf16(rest, u16::from_le_bytes)?
    } else if let Some(rest) = bytes.strip_prefix(UTF16BE_BOM) {
        utf16(rest, u16::from_be_bytes)?
    } else {
        utf8(bytes)?
    };
    if looks_binary(&text) {
        return Err(TaskError::UnsupportedDocument(
            "the document is not plain text (it contains binary data)".into(),
        ));
    }
    if text.trim().is_empty() {
        return Err(TaskError::UnsupportedDocument(
            "the document contains no text".into(),
        ));
    }
    Ok(text)
}

fn utf8(bytes: &[u8]) -> Result<String, TaskError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        TaskError::UnsupportedDocument(format!(
            "the document is not UTF-8 text (invalid byte at offset {}); send UTF-8, or \
             UTF-16 with a byte-order mark",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, TaskError> {
    let pairs = bytes.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return Err(TaskError::UnsupportedDocument(
            "the document has a UTF-16 byte-order mark but an odd number of bytes".into(),
        ));
    }
    let units = pairs.map(|p| p.try_into().map_or(0, unit));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| {
            TaskError::UnsupportedDocument(
                "the document has a UTF-16 byte-order mark but is not valid UTF-16".into(),
            )
        })
}

/// NUL characters, or more than 1% control characters other than tabs, line and page
/// breaks, mean binary data that happens to decode.
fn looks_binary(text: &str) -> bool {
    let mut chars = 0usize;
    let mut controls = 0usize;
    for c in text.chars() {
        if c == '\0' {
            return true;
        }
        chars += 1;
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}') {
            controls += 1;
        }
    }
    controls * 100 > chars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str) -> Vec<u8> {
        let mut out = UTF16LE_BOM.to_vec();
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    fn utf16be(text: &str) -> Vec<u8> {
        let mut out = UTF16BE_BOM.to_vec();
        out.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        out
    }

    #[test]
    fn decodes_utf8_with_and_without_bom_and_utf16_with_bom() {
        let text = "Grüße aus München 🚀\nสวัสดี";
        assert_eq!(decode_text(text.as_bytes()).unwrap(), text);
        let mut bom = UTF8_BOM.to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(decode_text(&bom).unwrap(), text);
        assert_eq!(decode_text(&utf16le(text)).unwrap(), text);
        assert_eq!(decode_text(&utf16be(text)).unwrap(), text);
    }

    #[test]
    fn refuses_what_is_not_text() {
        let mut odd = utf16le("abc");
        odd.push(0);
        let mut lone_surrogate = UTF16LE_BOM.to_vec();
        lone_surrogate.extend_from_slice(&0xD800u16.to_le_bytes());
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D,
        ];
        let cases: [&[u8]; 7] = [
            &png,
            b"%PDF-1.7\n\xe2\xe3\xcf\xd3",
            b"text\0with nul",
            &odd,
            &lone_surrogate,
            b"   \n\t ",
            b"",
        ];
        for bytes in cases {
            let err = decode_text(bytes).unwrap_err();
            assert_eq!(err.error_type(), "UnsupportedDocument", "{bytes:?}");
        }
        // A UTF-16 file without a byte-order mark has NULs between ASCII letters.
        let no_bom: Vec<u8> = "hello".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert!(decode_text(&no_bom).is_err());
    }
}
