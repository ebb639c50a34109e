//! Bytes to text: UTF-8 (BOM optional), UTF-16 LE/BE with a BOM, refusing data that does
//! not look like text; lossy (for extraction) or exact (for translation) on invalid sequences.

use super::ExtractError;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const UTF16LE_BOM: &[u8] = b"\xFF\xFE";
const UTF16BE_BOM: &[u8] = b"\xFE\xFF";

/// Decodes `bytes` as text, or refuses them as binary data.
pub(super) fn decode_text(bytes: &[u8]) -> Result<String, ExtractError> {
    match decode_if_text(bytes) {
        Some(text) => Ok(text),
        None => Err(ExtractError::Unsupported {
            format: "binary data (not UTF-8 or UTF-16 text)".to_owned(),
        }),
    }
}

/// Decodes `bytes` as text; `None` where the result would not look like text.
pub(super) fn decode_if_text(bytes: &[u8]) -> Option<String> {
    let text = decode_lossy(bytes);
    looks_like_text(&text).then_some(text)
}

/// Decodes `bytes` exactly: UTF-8 (BOM optional) or UTF-16 with a BOM. An invalid sequence
/// is refused with where it is, where [`decode_text`] would replace it; binary data is
/// refused as there. For callers that must not change a character (translation).
pub(super) fn decode_exact(bytes: &[u8]) -> Result<String, ExtractError> {
    let invalid = |what: String| ExtractError::Unsupported {
        format: format!("{what}; send UTF-8, or UTF-16 with a byte-order mark"),
    };
    let text = if let Some(rest) = bytes.strip_prefix(UTF16LE_BOM) {
        decode_utf16_exact(rest, u16::from_le_bytes)
            .ok_or_else(|| invalid("invalid UTF-16 text".into()))?
    } else if let Some(rest) = bytes.strip_prefix(UTF16BE_BOM) {
        decode_utf16_exact(rest, u16::from_be_bytes)
            .ok_or_else(|| invalid("invalid UTF-16 text".into()))?
    } else {
        let utf8 = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        String::from_utf8(utf8.to_vec()).map_err(|e| {
            invalid(format!(
                "text that is not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?
    };
    if !looks_like_text(&text) {
        return Err(invalid("binary data".into()));
    }
    Ok(text)
}

fn decode_utf16_exact(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    let (pairs, odd_byte) = bytes.as_chunks::<2>();
    if !odd_byte.is_empty() {
        return None;
    }
    char::decode_utf16(pairs.iter().map(|pair| unit(*pair)))
        .collect::<Result<String, _>>()
        .ok()
}

/// Decodes by BOM, else as UTF-8; malformed sequences become U+FFFD.
fn decode_lossy(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        String::from_utf8_lossy(rest).into_owned()
    } else if let Some(rest) = bytes.strip_prefix(UTF16LE_BOM) {
        decode_utf16(rest, u16::from_le_bytes)
    } else if let Some(rest) = bytes.strip_prefix(UTF16BE_BOM) {
        decode_utf16(rest, u16::from_be_bytes)
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let (pairs, odd_byte) = bytes.as_chunks::<2>();
    let mut text: String = char::decode_utf16(pairs.iter().map(|pair| unit(*pair)))
        .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if !odd_byte.is_empty() {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

/// Text has at most one character in ten that is a replacement character, and at most one
/// in forty that is a control character (NUL included) other than tab, newline, carriage
/// return and form feed.
fn looks_like_text(text: &str) -> bool {
    let mut chars = 0usize;
    let mut score = 0usize;
    for ch in text.chars() {
        chars += 1;
        if ch == char::REPLACEMENT_CHARACTER {
            score += 1;
        } else if ch.is_control() && !matches!(ch, '\t' | '\n' | '\r' | '\x0C') {
            score += 4;
        }
    }
    score * 10 <= chars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(decode_text("héllo".as_bytes()).unwrap(), "héllo");
        assert_eq!(decode_text(b"\xEF\xBB\xBFh\xC3\xA9").unwrap(), "hé");
    }

    #[test]
    fn utf16_both_byte_orders() {
        let le: Vec<u8> = UTF16LE_BOM
            .iter()
            .copied()
            .chain("hé €".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = UTF16BE_BOM
            .iter()
            .copied()
            .chain("hé €".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode_text(&le).unwrap(), "hé €");
        assert_eq!(decode_text(&be).unwrap(), "hé €");
    }

    #[test]
    fn odd_utf16_tail_and_lone_surrogate_are_replaced() {
        let mut bytes = vec![0xFF, 0xFE, b'a', 0, 0x00, 0xD8];
        bytes.extend(
            "bcdefghijklmnopqrstuvwxyz"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        bytes.push(b'!');
        assert_eq!(
            decode_text(&bytes).unwrap(),
            "a\u{FFFD}bcdefghijklmnopqrstuvwxyz\u{FFFD}"
        );
    }

    #[test]
    fn latin1_is_decoded_lossily() {
        // "café crème" in Latin-1.
        let bytes = b"caf\xE9 cr\xE8me, un texte assez long pour passer le seuil";
        let text = decode_text(bytes).unwrap();
        assert!(text.starts_with("caf\u{FFFD} cr\u{FFFD}me"), "{text}");
    }

    #[test]
    fn exact_decoding_refuses_what_lossy_decoding_replaces() {
        let latin1 = b"caf\xE9 cr\xE8me, un texte assez long pour passer le seuil";
        let err = decode_exact(latin1).unwrap_err().to_string();
        assert!(
            err.contains("not UTF-8") && err.contains("offset 3"),
            "{err}"
        );
        let odd = [0xFF, 0xFE, b'a', 0, b'b'];
        assert!(decode_exact(&odd).is_err());
        let lone_surrogate = [0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'b', 0];
        assert!(decode_exact(&lone_surrogate).is_err());
        assert!(decode_exact(b"\x00\x01\x02\x03abc\x00\x00").is_err());
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice("héllo".as_bytes());
        assert_eq!(decode_exact(&bom).unwrap(), "héllo");
        let le: Vec<u8> = UTF16LE_BOM
            .iter()
            .copied()
            .chain("hé €".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode_exact(&le).unwrap(), "hé €");
    }

    #[test]
    fn binary_is_refused() {
        assert!(matches!(
            decode_text(b"\x00\x01\x02\x03abc\x00\x00"),
            Err(ExtractError::Unsupported { .. })
        ));
        let utf16_without_bom: Vec<u8> = "hello world"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(decode_text(&utf16_without_bom).is_err());
    }
}
