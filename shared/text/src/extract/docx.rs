//! DOCX body text: the paragraphs (`w:p`) and runs (`w:t`, tabs, breaks) of
//! `word/document.xml`, read through a cap on decompressed bytes and within the deadline.
//! Only that part is ever decompressed.

use std::io::{Cursor, Read};

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};

use super::detect::DOCX_BODY;
use super::worker::Deadline;
use super::{ExtractError, Limits, decode};

const FORMAT: &str = "docx";

/// WordprocessingML namespaces: transitional (what Word writes) and strict.
const WORDPROCESSING_ML: &[&str] = &[
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
];
/// Markup compatibility: `mc:Fallback` repeats what `mc:Choice` holds.
const MARKUP_COMPATIBILITY: &str = "http://schemas.openxmlformats.org/markup-compatibility/2006";

/// The text of the document body: paragraphs separated by a blank line, table cells by tabs,
/// table rows by line breaks.
pub(super) fn extract_text(
    bytes: &[u8],
    limits: &Limits,
    deadline: &Deadline,
) -> Result<String, ExtractError> {
    let xml = read_body(bytes, limits.max_unpacked_bytes, deadline)?;
    let xml = decode::decode_text(&xml)
        .map_err(|_| ExtractError::corrupt(FORMAT, format!("{DOCX_BODY} is not text")))?;
    body_text(&xml, deadline)
}

/// XML events parsed between two looks at the deadline.
const EVENTS_PER_CHECK: usize = 4096;

/// The bytes of `word/document.xml`, refusing more than `limit` of them.
fn read_body(bytes: &[u8], limit: u64, deadline: &Deadline) -> Result<Vec<u8>, ExtractError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| {
        ExtractError::corrupt(FORMAT, format!("not a readable zip archive: {error}"))
    })?;
    let mut part = match archive.by_name(DOCX_BODY) {
        Ok(part) => part,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(ExtractError::corrupt(
                FORMAT,
                format!("{DOCX_BODY} is missing"),
            ));
        }
        Err(error) => {
            return Err(ExtractError::corrupt(
                FORMAT,
                format!("cannot read {DOCX_BODY}: {error}"),
            ));
        }
    };
    let too_large = ExtractError::TooLarge {
        format: FORMAT,
        limit_bytes: limit,
    };
    // The declared size is only a hint (it can lie); the read below is what is enforced.
    if part.size() > limit {
        return Err(too_large);
    }
    let mut xml = Vec::with_capacity(usize::try_from(part.size()).unwrap_or(0).min(1 << 20));
    let mut part = (&mut part).take(limit.saturating_add(1));
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        deadline.check()?;
        match part.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => xml.extend_from_slice(&buffer[..read]),
            Err(error) => {
                return Err(ExtractError::corrupt(
                    FORMAT,
                    format!("cannot read {DOCX_BODY}: {error}"),
                ));
            }
        }
    }
    if xml.len() as u64 > limit {
        return Err(too_large);
    }
    Ok(xml)
}

/// Builds the text from the WordprocessingML body.
fn body_text(xml: &str, deadline: &Deadline) -> Result<String, ExtractError> {
    let mut reader = NsReader::from_str(xml);
    let mut out = String::new();
    let mut events = 0usize;
    // Open `w:t` elements (text), `w:tc` (table cells), skipped `mc:Fallback` subtrees.
    let mut in_text = 0usize;
    let mut in_cell = 0usize;
    let mut skipped = 0usize;

    loop {
        events += 1;
        if events.is_multiple_of(EVENTS_PER_CHECK) {
            deadline.check()?;
        }
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|error| ExtractError::corrupt(FORMAT, format!("{DOCX_BODY}: {error}")))?;
        let word = is_word(&namespace);
        let compat =
            matches!(namespace, ResolveResult::Bound(Namespace(ns)) if ns == MARKUP_COMPATIBILITY);
        match event {
            Event::Start(start) => {
                let name = start.local_name();
                if skipped > 0 || (compat && name.as_ref() == "Fallback") {
                    skipped += 1;
                } else if word {
                    match name.as_ref() {
                        "t" => in_text += 1,
                        "tc" => in_cell += 1,
                        other => empty_element(other, &mut out),
                    }
                }
            }
            Event::Empty(empty) if skipped == 0 && word => {
                empty_element(empty.local_name().as_ref(), &mut out);
            }
            Event::End(end) => {
                let name = end.local_name();
                if skipped > 0 {
                    skipped -= 1;
                } else if word {
                    match name.as_ref() {
                        "t" => in_text = in_text.saturating_sub(1),
                        "p" => out.push_str(if in_cell > 0 { " " } else { "\n\n" }),
                        "tc" => {
                            in_cell = in_cell.saturating_sub(1);
                            let kept = out.trim_end_matches(' ').len();
                            out.truncate(kept);
                            out.push('\t');
                        }
                        "tr" => out.push('\n'),
                        "tbl" => out.push('\n'),
                        _ => {}
                    }
                }
            }
            Event::Text(text) if in_text > 0 && skipped == 0 => {
                out.push_str(&text.xml10_content());
            }
            Event::GeneralRef(reference) if in_text > 0 && skipped == 0 => {
                let resolved = reference.resolve_char_ref().map_err(|error| {
                    ExtractError::corrupt(FORMAT, format!("{DOCX_BODY}: {error}"))
                })?;
                match resolved {
                    Some(ch) => out.push(ch),
                    None => match quick_xml::escape::resolve_predefined_entity(&reference) {
                        Some(entity) => out.push_str(entity),
                        None => {
                            return Err(ExtractError::corrupt(
                                FORMAT,
                                format!("{DOCX_BODY}: unknown entity"),
                            ));
                        }
                    },
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Run content that is an element rather than text: tabs, breaks, hyphens.
fn empty_element(name: &str, out: &mut String) {
    match name {
        "tab" | "ptab" => out.push('\t'),
        "br" | "cr" => out.push('\n'),
        "noBreakHyphen" => out.push('-'),
        _ => {}
    }
}

fn is_word(namespace: &ResolveResult<'_>) -> bool {
    matches!(namespace, ResolveResult::Bound(Namespace(ns)) if WORDPROCESSING_ML.contains(ns))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Format;
    use super::super::worker::Deadline;

    fn body_text(xml: &str) -> Result<String, super::ExtractError> {
        super::body_text(
            xml,
            &Deadline::after(Duration::from_secs(3600), Format::Docx),
        )
    }

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    #[test]
    fn paragraphs_runs_tabs_breaks_entities() {
        let xml = format!(
            r#"<?xml version="1.0"?><w:document {W}><w:body>
            <w:p><w:r><w:t>Hello</w:t></w:r><w:r><w:t xml:space="preserve"> wor</w:t><w:t>ld</w:t></w:r></w:p>
            <w:p><w:r><w:t>a</w:t><w:tab/><w:t>b</w:t><w:br/><w:t>c &amp; d &#x263A;</w:t></w:r></w:p>
            </w:body></w:document>"#
        );
        assert_eq!(body_text(&xml).unwrap(), "Hello world\n\na\tb\nc & d ☺\n\n");
    }

    #[test]
    fn deleted_text_field_codes_and_fallbacks_are_skipped() {
        let xml = format!(
            r#"<w:document {W} xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body><w:p>
            <w:del><w:r><w:delText>gone</w:delText></w:r></w:del>
            <w:r><w:instrText>PAGE</w:instrText></w:r>
            <mc:AlternateContent><mc:Choice><w:t>box</w:t></mc:Choice><mc:Fallback><w:t>box</w:t></mc:Fallback></mc:AlternateContent>
            <w:r><w:t>kept</w:t></w:r></w:p></w:body></w:document>"#
        );
        assert_eq!(body_text(&xml).unwrap(), "boxkept\n\n");
    }

    #[test]
    fn any_prefix_bound_to_the_namespace() {
        let xml = r#"<x:document xmlns:x="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><x:p><x:t>yes</x:t></x:p><other><t>no</t></other></x:document>"#;
        assert_eq!(body_text(xml).unwrap(), "yes\n\n");
    }
}
