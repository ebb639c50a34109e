//! Plain text out of an uploaded document: plain text, Markdown, HTML, PDF (text layer) and
//! DOCX, detected by magic bytes, then the declared content type, then the key's extension.
//!
//! ```
//! let html = b"<html><head><title>t</title></head><body><p>Hello &amp; welcome.</p></body></html>";
//! let doc = text::extract::extract(html, "uploads/page.html", None).unwrap();
//! assert_eq!(doc.format, text::extract::Format::Html);
//! assert_eq!(doc.text, "Hello & welcome.");
//! ```
//!
//! Every result is normalized the same way: `\r\n` and lone `\r` become `\n`, trailing spaces
//! and tabs are trimmed from each line, runs of blank lines collapse to one blank line, control
//! characters other than tab and newline are dropped, and leading/trailing blank lines go.
//!
//! Text encodings: UTF-8 (with or without BOM) and UTF-16 LE/BE with a BOM. Text without a BOM
//! that is not valid UTF-8 is decoded lossily (invalid sequences become U+FFFD) as long as it
//! still looks like text; input where more than one character in ten is a replacement or a
//! control character (e.g. UTF-16 without a BOM, binary data) is refused as
//! [`ExtractError::Unsupported`].
//!
//! Hostile input is expected: nothing here panics on any bytes (the readers run under
//! `catch_unwind`, the PDF reader after checks that rule out the structures known to make it
//! recurse without end), decompression is capped by [`Limits::max_unpacked_bytes`] (zip
//! bombs, PDF stream bombs: the sum over the whole document; PDF images are never
//! decompressed), and reading is time-boxed by [`Limits::time_limit`]: the reader runs on a
//! thread of its own with a large stack, is waited for no longer than the limit
//! ([`ExtractError::TimedOut`]), and stops at its next check of the deadline (PDF: between
//! objects, pages, characters and 64 KiB of decompressed data; DOCX: while inflating and
//! parsing; plain text and HTML take time linear in their size and are not interrupted).

mod decode;
mod detect;
mod docx;
mod html;
mod normalize;
mod pdf;
mod streams;
mod worker;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use detect::detect_format;

/// The document formats text is extracted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// Plain text (`.txt`, `text/plain`, or any text that decodes as UTF-8/UTF-16).
    #[serde(rename = "text")]
    PlainText,
    /// Markdown, passed through as text (`.md`, `.markdown`, `text/markdown`).
    #[serde(rename = "markdown")]
    Markdown,
    /// HTML: visible text only (`.html`, `.htm`, `text/html`).
    #[serde(rename = "html")]
    Html,
    /// PDF: the text layer (`%PDF-`, `.pdf`, `application/pdf`).
    #[serde(rename = "pdf")]
    Pdf,
    /// Word 2007+ document: the body paragraphs (`.docx`).
    #[serde(rename = "docx")]
    Docx,
}

impl Format {
    /// Stable lower-case name, as serialized: `text`, `markdown`, `html`, `pdf`, `docx`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::PlainText => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text of a document and the format it was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Normalized text; never empty or whitespace only.
    pub text: String,
    /// The detected format.
    pub format: Format,
}

/// Why no text came out of a document. Messages are safe for a failure record: they name the
/// format and the problem, never document content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// Not one of the supported formats; `format` names what was detected or declared.
    #[error(
        "unsupported document format: {format} (supported: plain text, Markdown, HTML, PDF, DOCX)"
    )]
    Unsupported {
        /// What the document was detected or declared as, e.g. `PNG image`, `image/jpeg`.
        format: String,
    },
    /// Readable, but there is no text in it (empty, whitespace only, a scanned PDF without a
    /// text layer, HTML with only scripts).
    #[error(
        "the document contains no extractable text (empty, or e.g. a scanned PDF without a text layer)"
    )]
    NoText,
    /// Detected as `format` but could not be read.
    #[error("corrupt {format} document: {reason}")]
    Corrupt {
        /// The format it was read as: `pdf`, `docx`, or `zip` (an unreadable archive that
        /// is not recognisably a DOCX).
        format: &'static str,
        /// What is wrong, from the reader (bounded length).
        reason: String,
    },
    /// Decompressing the document would exceed [`Limits::max_unpacked_bytes`].
    #[error("{format} document unpacks to more than the limit of {limit_bytes} bytes")]
    TooLarge {
        /// The format: `docx` or `pdf`.
        format: &'static str,
        /// The limit that was hit.
        limit_bytes: u64,
    },
    /// Reading the document took longer than [`Limits::time_limit`] (a document built to
    /// keep the reader busy, e.g. hundreds of pages of compressed drawing operators).
    #[error("reading the {format} document took longer than the limit of {limit:?}")]
    TimedOut {
        /// The format it was read as.
        format: &'static str,
        /// The limit that was hit.
        limit: Duration,
    },
}

impl ExtractError {
    /// A `Corrupt` error with the reason cut to a bounded length.
    pub(crate) fn corrupt(format: &'static str, reason: impl std::fmt::Display) -> Self {
        const MAX_REASON_CHARS: usize = 200;
        let mut reason = reason.to_string();
        if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
            reason.truncate(cut);
            reason.push('…');
        }
        ExtractError::Corrupt { format, reason }
    }
}

/// Resource limits for extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes decompression may produce over the whole document: the DOCX
    /// `word/document.xml` part, or the sum of every decoded PDF stream (object streams,
    /// content streams, fonts; image streams are never decompressed). More is
    /// [`ExtractError::TooLarge`].
    pub max_unpacked_bytes: u64,
    /// Longest time reading one document may take; more is [`ExtractError::TimedOut`].
    pub time_limit: Duration,
}

impl Limits {
    /// Default for [`Limits::max_unpacked_bytes`]: 50 MiB.
    pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 50 * 1024 * 1024;
    /// Default for [`Limits::time_limit`]: 60 s, well inside a function's timeout (up to
    /// 900 s), so that a document that cannot be read in time gets its failure record.
    pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(60);
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unpacked_bytes: Self::DEFAULT_MAX_UNPACKED_BYTES,
            time_limit: Self::DEFAULT_TIME_LIMIT,
        }
    }
}

/// Decodes a plain-text document exactly: UTF-8 (byte-order mark optional) or UTF-16 with a
/// byte-order mark. An invalid sequence or binary data is [`ExtractError::Unsupported`]
/// (where [`extract`] would replace a few bad bytes), a blank document
/// [`ExtractError::NoText`]. The text is returned as is (no normalization), for callers that
/// must keep every character and its layout.
pub fn decode_plain_text(bytes: &[u8]) -> Result<String, ExtractError> {
    let text = decode::decode_exact(bytes)?;
    if text.trim().is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(text)
}

/// Extracts the text of a document with the default [`Limits`].
///
/// `key` is the object key or file name (only its extension is used) and `content_type` the
/// declared media type, if any (parameters such as `; charset=` are ignored).
pub fn extract(
    bytes: &[u8],
    key: &str,
    content_type: Option<&str>,
) -> Result<Extracted, ExtractError> {
    extract_with_limits(bytes, key, content_type, &Limits::default())
}

/// Extracts the text of a document, decompressing no more and taking no longer than
/// `limits` allow.
pub fn extract_with_limits(
    bytes: &[u8],
    key: &str,
    content_type: Option<&str>,
    limits: &Limits,
) -> Result<Extracted, ExtractError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ExtractError::NoText);
    }
    let format = detect_format(bytes, key, content_type)?;
    let deadline = worker::Deadline::after(limits.time_limit, format);
    // Owned: a reader that runs out of time is left behind and may outlive this call.
    let bytes = bytes.to_vec();
    let limits = *limits;
    let text = worker::run(deadline, move |deadline| {
        read(format, &bytes, &limits, deadline)
    })?;
    Ok(Extracted { text, format })
}

/// The normalized text of a document detected as `format`.
fn read(
    format: Format,
    bytes: &[u8],
    limits: &Limits,
    deadline: &worker::Deadline,
) -> Result<String, ExtractError> {
    let raw = catch_unwind(AssertUnwindSafe(|| match format {
        Format::PlainText | Format::Markdown => decode::decode_text(bytes),
        Format::Html => decode::decode_text(bytes).map(|html| html::visible_text(&html)),
        Format::Pdf => pdf::extract_text(bytes, limits, deadline),
        Format::Docx => docx::extract_text(bytes, limits, deadline),
    }))
    .unwrap_or_else(|_| {
        Err(ExtractError::corrupt(
            format.as_str(),
            "the reader failed on malformed content",
        ))
    })?;
    deadline.check()?;
    let text = normalize::normalize(&raw);
    if text.is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(text)
}
