//! Which format a document is: magic bytes first, then the declared content type, then the
//! key's extension, then a look at the bytes themselves.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{ExtractError, Format, decode};

/// The part DOCX text lives in.
pub(super) const DOCX_BODY: &str = "word/document.xml";

/// Detects the format of a document.
///
/// Order: magic bytes (`%PDF-`; a zip archive holding `word/document.xml`; well-known binary
/// formats such as images, executables and archives, which are refused), then the
/// `content_type` (parameters ignored; generic types such as `application/octet-stream` are
/// skipped), then the extension of `key` (`.txt .md .markdown .html .htm .pdf .docx`), and
/// last the bytes: text that decodes (see the module docs) is plain text, or HTML where it
/// starts with `<!DOCTYPE html` or `<html`. Anything else is [`ExtractError::Unsupported`]
/// naming what was detected or declared.
pub fn detect_format(
    bytes: &[u8],
    key: &str,
    content_type: Option<&str>,
) -> Result<Format, ExtractError> {
    match sniff_magic(bytes) {
        Magic::Pdf => return Ok(Format::Pdf),
        Magic::Zip => {
            let declared_docx = matches!(
                declared_by_content_type(content_type),
                Ok(Some(Format::Docx))
            ) || declared_by_extension(key) == Some(Format::Docx);
            return zip_format(bytes, declared_docx);
        }
        Magic::Binary(name) => {
            return Err(ExtractError::Unsupported {
                format: name.to_owned(),
            });
        }
        Magic::None => {}
    }
    if let Some(format) = declared_by_content_type(content_type)? {
        return Ok(format);
    }
    if let Some(format) = declared_by_extension(key) {
        return Ok(format);
    }
    match decode::decode_if_text(bytes) {
        Some(text) if looks_like_html(&text) => Ok(Format::Html),
        Some(_) => Ok(Format::PlainText),
        None => Err(ExtractError::Unsupported {
            format: match extension(key) {
                Some(ext) => format!("binary data (.{ext})"),
                None => "binary data".to_owned(),
            },
        }),
    }
}

enum Magic {
    Pdf,
    Zip,
    Binary(&'static str),
    None,
}

/// Binary formats recognised by their first bytes, refused by name.
const BINARY_SIGNATURES: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1A\n", "PNG image"),
    (b"\xFF\xD8\xFF", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"\x00\x00\x01\x00", "ICO image"),
    (b"\x7FELF", "ELF executable"),
    (b"\xCF\xFA\xED\xFE", "Mach-O executable"),
    (b"\xCE\xFA\xED\xFE", "Mach-O executable"),
    (b"\x00asm", "WebAssembly module"),
    (b"\x1F\x8B", "gzip archive"),
    (b"7z\xBC\xAF\x27\x1C", "7-Zip archive"),
    (b"Rar!\x1A\x07", "RAR archive"),
    (b"\xFD7zXZ\x00", "xz archive"),
    (b"\x28\xB5\x2F\xFD", "zstd archive"),
    (b"BZh", "bzip2 archive"),
    (
        b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
        "legacy Microsoft Office document (.doc/.xls/.ppt)",
    ),
    (b"{\\rtf", "RTF document"),
    (b"%!PS", "PostScript document"),
    (b"OggS", "Ogg media"),
    (b"fLaC", "FLAC audio"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"\x1A\x45\xDF\xA3", "Matroska/WebM video"),
];

fn sniff_magic(bytes: &[u8]) -> Magic {
    if bytes.starts_with(b"%PDF-") {
        return Magic::Pdf;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Magic::Zip;
    }
    if let Some((_, name)) = BINARY_SIGNATURES
        .iter()
        .find(|(signature, _)| bytes.starts_with(signature))
    {
        // `BZh` is also how some text starts: only the full bzip2 header counts.
        if *name != "bzip2 archive" || bytes.get(4..10) == Some(b"1AY&SY") {
            return Magic::Binary(name);
        }
    }
    if bytes.starts_with(b"RIFF") {
        match bytes.get(8..12) {
            Some(b"WEBP") => return Magic::Binary("WebP image"),
            Some(b"WAVE") => return Magic::Binary("WAV audio"),
            Some(b"AVI ") => return Magic::Binary("AVI video"),
            _ => {}
        }
    }
    if bytes.get(4..8) == Some(b"ftyp") {
        return Magic::Binary("MP4/QuickTime media or HEIF/AVIF image");
    }
    if bytes.starts_with(b"ID3") && bytes.get(3).is_some_and(|version| *version < 0x10) {
        return Magic::Binary("MP3 audio");
    }
    // A DOS/Windows executable: `MZ` and binary header bytes.
    if bytes.starts_with(b"MZ") && bytes.iter().take(64).any(|b| *b == 0) {
        return Magic::Binary("Windows executable");
    }
    Magic::None
}

/// A zip archive is a DOCX where it holds `word/document.xml`, or where it was declared one
/// (the DOCX reader then reports what is wrong with it).
fn zip_format(bytes: &[u8], declared_docx: bool) -> Result<Format, ExtractError> {
    if declared_docx {
        return Ok(Format::Docx);
    }
    let archive = catch_unwind(AssertUnwindSafe(|| {
        zip::ZipArchive::new(Cursor::new(bytes))
    }));
    let archive = match archive {
        Ok(Ok(archive)) => archive,
        // Unreadable: a DOCX still names its parts in the local headers.
        _ if contains(bytes, DOCX_BODY.as_bytes()) => return Ok(Format::Docx),
        Ok(Err(error)) => return Err(ExtractError::corrupt("zip", error)),
        Err(_) => {
            return Err(ExtractError::corrupt(
                "zip",
                "the archive reader failed on malformed content",
            ));
        }
    };
    let has = |name: &str| archive.index_for_name(name).is_some();
    let kind = if has(DOCX_BODY) {
        return Ok(Format::Docx);
    } else if has("xl/workbook.xml") {
        "XLSX spreadsheet"
    } else if has("ppt/presentation.xml") {
        "PPTX presentation"
    } else if has("word/document2.xml") || has("[Content_Types].xml") {
        "Office Open XML package without word/document.xml"
    } else if has("mimetype") && has("META-INF/container.xml") {
        "EPUB book or OpenDocument file"
    } else if has("mimetype") {
        "OpenDocument file"
    } else {
        "zip archive"
    };
    Err(ExtractError::Unsupported {
        format: kind.to_owned(),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The format a content type declares; `Err` for media that is never text (images, audio,
/// video, fonts); `None` for generic or unknown types.
fn declared_by_content_type(content_type: Option<&str>) -> Result<Option<Format>, ExtractError> {
    let Some(declared) = content_type else {
        return Ok(None);
    };
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let format = match essence.as_str() {
        "text/plain" => Format::PlainText,
        "text/markdown" | "text/x-markdown" => Format::Markdown,
        "text/html" | "application/xhtml+xml" => Format::Html,
        "application/pdf" | "application/x-pdf" => Format::Pdf,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Format::Docx,
        "text/rtf" | "application/rtf" => {
            return Err(ExtractError::Unsupported {
                format: essence.clone(),
            });
        }
        other
            if ["image/", "audio/", "video/", "font/", "model/"]
                .iter()
                .any(|family| other.starts_with(family)) =>
        {
            return Err(ExtractError::Unsupported { format: essence });
        }
        other if other.starts_with("text/") => Format::PlainText,
        _ => return Ok(None),
    };
    Ok(Some(format))
}

fn declared_by_extension(key: &str) -> Option<Format> {
    match extension(key)?.as_str() {
        "txt" | "text" => Some(Format::PlainText),
        "md" | "markdown" | "mdown" | "mkd" => Some(Format::Markdown),
        "html" | "htm" | "xhtml" => Some(Format::Html),
        "pdf" => Some(Format::Pdf),
        "docx" => Some(Format::Docx),
        _ => None,
    }
}

/// The lower-cased extension of the key's last path segment, if it has one.
fn extension(key: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (stem, ext) = name.rsplit_once('.')?;
    let plausible = !stem.is_empty()
        && !ext.is_empty()
        && ext.len() <= 10
        && ext.chars().all(|c| c.is_ascii_alphanumeric());
    plausible.then(|| ext.to_ascii_lowercase())
}

fn looks_like_html(text: &str) -> bool {
    let start = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
    let head: String = start
        .chars()
        .take(14)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_of_last_segment_only() {
        assert_eq!(extension("a/b.dir/Report.PDF").as_deref(), Some("pdf"));
        assert_eq!(extension("a.dir/readme"), None);
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("notes."), None);
    }

    #[test]
    fn content_type_parameters_ignored() {
        assert_eq!(
            declared_by_content_type(Some("Text/HTML; charset=utf-8")).unwrap(),
            Some(Format::Html)
        );
        assert_eq!(
            declared_by_content_type(Some("application/octet-stream")).unwrap(),
            None
        );
        assert!(declared_by_content_type(Some("image/png")).is_err());
    }

    #[test]
    fn html_sniffed_without_declaration() {
        assert!(looks_like_html("\n  <!DOCTYPE html><p>x"));
        assert!(looks_like_html("<HTML lang=en>"));
        assert!(!looks_like_html("plain <html> mention"));
    }
}
