//! Text extraction: every format, every failure, hostile inputs.

mod fixtures;

use std::time::Duration;

use fixtures::{Pdf, Rng};
use text::extract::{
    ExtractError, Extracted, Format, Limits, detect_format, extract, extract_with_limits,
};

fn ok(bytes: &[u8], key: &str, content_type: Option<&str>) -> Extracted {
    extract(bytes, key, content_type).unwrap_or_else(|e| panic!("{key}: {e}"))
}

fn err(bytes: &[u8], key: &str, content_type: Option<&str>) -> ExtractError {
    match extract(bytes, key, content_type) {
        Ok(doc) => panic!("{key}: expected an error, got {doc:?}"),
        Err(error) => error,
    }
}

fn assert_corrupt(error: ExtractError, expected_format: &str) -> String {
    match error {
        ExtractError::Corrupt { format, reason } if format == expected_format => reason,
        other => panic!("expected Corrupt {{ format: {expected_format} }}, got {other:?}"),
    }
}

fn assert_unsupported(error: ExtractError, expected: &str) {
    match error {
        ExtractError::Unsupported { format } => assert!(
            format.contains(expected),
            "Unsupported names {format:?}, expected it to contain {expected:?}"
        ),
        other => panic!("expected Unsupported {expected}, got {other:?}"),
    }
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut bytes = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for unit in text.encode_utf16() {
        bytes.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    bytes
}

// ---- plain text and Markdown ----

#[test]
fn plain_text_is_normalized() {
    let raw =
        b"windows line one\r\nwindows line two  \r\n\r\n\r\n\r\n\tafter blank lines   \r\n\r\n";
    let doc = ok(raw, "notes/crlf.txt", None);
    assert_eq!(doc.format, Format::PlainText);
    assert_eq!(
        doc.text,
        "windows line one\nwindows line two\n\n\tafter blank lines"
    );
}

#[test]
fn utf8_bom_and_utf16_with_bom() {
    let expected = "Grüße, ça va? नमस्ते สวัสดี";
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(expected.as_bytes());
    assert_eq!(ok(&with_bom, "a.txt", None).text, expected);
    assert_eq!(ok(&utf16(expected, false), "a.txt", None).text, expected);
    assert_eq!(ok(&utf16(expected, true), "a", None).text, expected);
    assert_eq!(
        ok(&utf16(expected, true), "a", None).format,
        Format::PlainText
    );
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let latin1 = b"Le caf\xE9 est servi tr\xE8s chaud dans la salle du fond, comme toujours.";
    let doc = ok(latin1, "menu.txt", Some("text/plain; charset=iso-8859-1"));
    assert!(
        doc.text
            .starts_with("Le caf\u{FFFD} est servi tr\u{FFFD}s chaud"),
        "{}",
        doc.text
    );
}

#[test]
fn markdown_by_extension_and_content_type() {
    let bytes = fixtures::data("notes.md");
    let doc = ok(&bytes, "docs/notes.md", None);
    assert_eq!(doc.format, Format::Markdown);
    assert_eq!(
        doc.text,
        "# Meeting notes\n\nAttendees: Ana, Ben\n\n## Decisions\n\n- Ship the **extractor** on Friday.\n\
         - Keep `tables` | as | text\n\n```rust\nfn main() {}\n```"
    );
    assert_eq!(
        ok(&bytes, "notes", Some("text/markdown")).format,
        Format::Markdown
    );
    assert_eq!(ok(&bytes, "notes.MARKDOWN", None).format, Format::Markdown);
}

#[test]
fn text_without_extension_is_plain_text() {
    let doc = ok(b"just some words", "uploads/3f2a9c", None);
    assert_eq!(doc.format, Format::PlainText);
    assert_eq!(doc.text, "just some words");
    // Other text types and unknown extensions too.
    assert_eq!(
        ok(b"a,b\n1,2", "data.csv", Some("text/csv")).format,
        Format::PlainText
    );
    assert_eq!(
        ok(b"{\"a\": 1}", "data.json", Some("application/json")).format,
        Format::PlainText
    );
}

#[test]
fn empty_and_whitespace_only_have_no_text() {
    for key in [
        "empty.txt",
        "empty.pdf",
        "empty.docx",
        "empty.html",
        "empty",
    ] {
        assert_eq!(err(b"", key, None), ExtractError::NoText, "{key}");
    }
    assert_eq!(err(b" \r\n\t\n  ", "blank.txt", None), ExtractError::NoText);
    assert_eq!(
        err(&utf16(" \n \u{3000} ", false), "blank.txt", None),
        ExtractError::NoText
    );
    assert_eq!(
        err(b"\xEF\xBB\xBF\n\n", "bom-only.md", None),
        ExtractError::NoText
    );
}

#[test]
fn binary_declared_as_text_is_refused() {
    let mut rng = Rng::new(7);
    let random = rng.bytes(4096);
    assert_unsupported(err(&random, "looks.txt", None), "binary data");
    assert_unsupported(err(&random, "unknown.bin", None), "binary data (.bin)");
    assert_unsupported(err(&random, "noext", None), "binary data");
    let utf16_without_bom: Vec<u8> = "hello world"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_unsupported(err(&utf16_without_bom, "a.txt", None), "binary data");
}

// ---- detection ----

#[test]
fn known_binary_formats_are_named() {
    let png = b"\x89PNG\r\n\x1A\n\x00\x00\x00\rIHDR\x00\x00\x00\x01";
    assert_unsupported(err(png, "photo.png", Some("image/png")), "PNG image");
    // Magic bytes win over a text extension and content type.
    assert_unsupported(err(png, "photo.txt", Some("text/plain")), "PNG image");
    assert_unsupported(
        err(b"\xFF\xD8\xFF\xE0\x00\x10JFIF", "a.jpg", None),
        "JPEG image",
    );
    assert_unsupported(
        err(b"\x7FELF\x02\x01\x01\x00\x00\x00", "tool", None),
        "ELF executable",
    );
    assert_unsupported(
        err(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "setup.exe", None),
        "Windows executable",
    );
    assert_unsupported(
        err(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00", "old.doc", None),
        "legacy Microsoft Office",
    );
    assert_unsupported(err(b"{\\rtf1\\ansi hello}", "a.rtf", None), "RTF document");
    assert_unsupported(
        err(b"\x1F\x8B\x08\x00\x00\x00", "a.gz", None),
        "gzip archive",
    );
    // A declared image type with no recognisable bytes names the content type.
    assert_unsupported(err(b"some bytes", "blob", Some("image/jpeg")), "image/jpeg");
}

#[test]
fn magic_bytes_beat_extension_and_content_type() {
    let pdf = fixtures::text_pdf(&["Magic wins"]);
    assert_eq!(
        detect_format(&pdf, "report.txt", Some("text/plain")),
        Ok(Format::Pdf)
    );
    let docx = fixtures::docx("<w:p><w:r><w:t>Zip wins</w:t></w:r></w:p>");
    assert_eq!(
        detect_format(&docx, "upload.bin", Some("application/octet-stream")),
        Ok(Format::Docx)
    );
    assert_eq!(ok(&docx, "upload", None).text, "Zip wins");
}

#[test]
fn content_type_beats_extension() {
    assert_eq!(
        detect_format(b"<p>x</p>", "page.txt", Some("text/html; charset=utf-8")),
        Ok(Format::Html)
    );
    // A generic content type defers to the extension.
    assert_eq!(
        detect_format(b"<p>x</p>", "page.htm", Some("binary/octet-stream")),
        Ok(Format::Html)
    );
    assert_eq!(
        detect_format(b"<!DOCTYPE html><p>x</p>", "page", None),
        Ok(Format::Html)
    );
}

#[test]
fn declared_pdf_or_docx_that_is_not_one_is_corrupt() {
    assert_corrupt(err(b"this is not a pdf at all", "report.pdf", None), "pdf");
    assert_corrupt(
        err(b"this is not a docx at all", "letter.docx", None),
        "docx",
    );
    assert_corrupt(
        err(b"this is not a pdf", "x", Some("application/pdf")),
        "pdf",
    );
}

// ---- HTML ----

#[test]
fn html_visible_text_only() {
    let doc = ok(&fixtures::data("page.html"), "site/page.html", None);
    assert_eq!(doc.format, Format::Html);
    assert_eq!(
        doc.text,
        "Home | About\n\n\
         Quarterly report\n\n\
         Revenue grew by 12 % in Q3 & costs fell. Café sales > forecast ☺\n\n\
         North: up\n\
         South: flat\n\n\
         Region\tSales\n\
         North\t120\n\n\
         Line one\n\
         Line two\n\n\
         © 2024 Example"
    );
    assert!(!doc.text.contains("hidden"), "{}", doc.text);
}

#[test]
fn html_with_only_a_script_has_no_text() {
    let html = b"<html><head><script>alert('<b>hi</b>')</script></head><body><script>x()</script></body></html>";
    assert_eq!(err(html, "a.html", None), ExtractError::NoText);
    assert_eq!(
        err(b"<!-- only a comment -->", "a.html", None),
        ExtractError::NoText
    );
    assert_eq!(
        err(b"<style>p{}</style>   <br><br>", "a.htm", None),
        ExtractError::NoText
    );
}

#[test]
fn deeply_nested_html() {
    let depth = 100_000;
    let mut html = "<div>".repeat(depth);
    html.push_str("deep text");
    html.push_str(&"</div>".repeat(depth));
    assert_eq!(ok(html.as_bytes(), "deep.html", None).text, "deep text");
    // Unclosed, and nested inline elements.
    let unclosed = format!("{}still here", "<span><b><i>".repeat(depth / 3));
    assert_eq!(
        ok(unclosed.as_bytes(), "deep.html", None).text,
        "still here"
    );
}

#[test]
fn html_in_utf16_and_broken_markup() {
    let doc = ok(&utf16("<p>caf&eacute; <b>bold", false), "x.html", None);
    assert_eq!(doc.text, "café bold");
    let broken = b"<p>a < b && c > d</p><p attr=\"unterminated>tail";
    assert_eq!(ok(broken, "x.html", None).text, "a < b && c > d");
}

// ---- DOCX ----

#[test]
fn docx_paragraphs_runs_tabs_breaks_tables() {
    let body = r#"
        <w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>Annual</w:t></w:r><w:r><w:t xml:space="preserve"> plan</w:t></w:r></w:p>
        <w:p><w:r><w:t>Name:</w:t><w:tab/><w:t>Ana</w:t><w:br/><w:t>R&amp;D &lt;lead&gt;</w:t></w:r></w:p>
        <w:p/>
        <w:p/>
        <w:tbl><w:tr><w:tc><w:p><w:r><w:t>Q1</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>10</w:t></w:r></w:p></w:tc></w:tr>
               <w:tr><w:tc><w:p><w:r><w:t>Q2</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>12</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
        <w:p><w:r><w:t>Done</w:t></w:r><w:r><w:noBreakHyphen/><w:t>ish</w:t></w:r></w:p>"#;
    let doc = ok(&fixtures::docx(body), "plans/annual.docx", None);
    assert_eq!(doc.format, Format::Docx);
    assert_eq!(
        doc.text,
        "Annual plan\n\nName:\tAna\nR&D <lead>\n\nQ1\t10\nQ2\t12\n\nDone-ish"
    );
}

#[test]
fn docx_without_text_has_no_text() {
    let doc = fixtures::docx("<w:p/><w:p><w:r><w:t xml:space=\"preserve\">   </w:t></w:r></w:p>");
    assert_eq!(err(&doc, "blank.docx", None), ExtractError::NoText);
}

#[test]
fn docx_missing_document_xml() {
    let package = fixtures::docx_without_body();
    let reason = assert_corrupt(err(&package, "letter.docx", None), "docx");
    assert!(reason.contains("word/document.xml is missing"), "{reason}");
    // Undeclared, it is only some Office package.
    assert_unsupported(err(&package, "letter", None), "without word/document.xml");
    assert_unsupported(
        err(
            &fixtures::zip_of(&[("xl/workbook.xml", b"<workbook/>")]),
            "book",
            None,
        ),
        "XLSX spreadsheet",
    );
    assert_unsupported(
        err(&fixtures::zip_of(&[("a.txt", b"hello")]), "files.zip", None),
        "zip archive",
    );
}

#[test]
fn truncated_docx_is_corrupt() {
    let docx = fixtures::docx("<w:p><w:r><w:t>Hello</w:t></w:r></w:p>");
    for cut in [4, 30, docx.len() / 2, docx.len() - 10] {
        let truncated = &docx[..cut];
        assert_corrupt(err(truncated, "cut.docx", None), "docx");
    }
    // Undeclared: still recognised as a DOCX by the part name in its local header.
    let body_header = docx
        .windows(17)
        .position(|w| w == b"word/document.xml")
        .expect("local header");
    assert_corrupt(err(&docx[..body_header + 40], "cut", None), "docx");
    // An unreadable zip that is not a DOCX.
    let zip = fixtures::zip_of(&[("a.txt", b"hello")]);
    assert_corrupt(err(&zip[..zip.len() - 5], "cut", None), "zip");
}

#[test]
fn docx_malformed_xml_is_corrupt() {
    let reason = assert_corrupt(
        err(
            &fixtures::docx_with_document(b"<w:document><w:body><w:p></w:body>"),
            "bad.docx",
            None,
        ),
        "docx",
    );
    assert!(reason.contains("word/document.xml"), "{reason}");
    assert_corrupt(
        err(
            &fixtures::docx_with_document(b"\x00\x01\x02\x03binary"),
            "bad.docx",
            None,
        ),
        "docx",
    );
}

#[test]
fn docx_zip_bomb_is_refused() {
    // 2 MiB of XML that compresses to a few KiB; the limit is 1 MiB.
    let filler = "<w:p><w:r><w:t>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</w:t></w:r></w:p>"
        .repeat(2 * 1024 * 1024 / 56);
    let docx = fixtures::docx(&filler);
    assert!(docx.len() < 100 * 1024, "compressed to {}", docx.len());
    let limits = Limits {
        max_unpacked_bytes: 1024 * 1024,
        ..Limits::default()
    };
    assert_eq!(
        extract_with_limits(&docx, "bomb.docx", None, &limits),
        Err(ExtractError::TooLarge {
            format: "docx",
            limit_bytes: 1024 * 1024
        })
    );
    // Under the default limit the same file is fine.
    assert!(ok(&docx, "bomb.docx", None).text.starts_with("aaaa"));
}

#[test]
fn deeply_nested_docx_xml() {
    let nested = |depth: usize| {
        fixtures::docx(&format!(
            "<w:p>{}<w:r><w:t>deep</w:t></w:r>{}</w:p>",
            "<w:sdt><w:sdtContent>".repeat(depth),
            "</w:sdtContent></w:sdt>".repeat(depth)
        ))
    };
    assert_eq!(ok(&nested(20_000), "deep.docx", None).text, "deep");
    // Past the XML reader's nesting limit (65535 levels): an error, not a crash.
    let reason = assert_corrupt(err(&nested(40_000), "deeper.docx", None), "docx");
    assert!(reason.contains("nests elements deeper"), "{reason}");
}

// ---- PDF ----

#[test]
fn pdf_text_layer() {
    let pdf = fixtures::text_pdf(&["Hello PDF world (page one)", "Second page text"]);
    let doc = ok(&pdf, "reports/q3.pdf", Some("application/pdf"));
    assert_eq!(doc.format, Format::Pdf);
    let one = doc
        .text
        .find("Hello PDF world (page one)")
        .expect(&doc.text);
    let two = doc.text.find("Second page text").expect(&doc.text);
    assert!(one < two, "{}", doc.text);
}

#[test]
fn pdf_with_compressed_content() {
    let pdf = fixtures::pdf_with_pages(&[fixtures::show_text("Deflated words")], true);
    assert!(ok(&pdf, "z.pdf", None).text.contains("Deflated words"));
}

#[test]
fn pdf_pages_the_reader_fails_on_are_skipped() {
    // Page two uses a font its resources do not define: the reader fails on that page only.
    let broken = b"BT /F9 12 Tf 72 700 Td (Broken page) Tj ET".to_vec();
    let pdf = fixtures::pdf_with_pages(&[fixtures::show_text("Good page"), broken.clone()], false);
    let doc = ok(&pdf, "partly.pdf", None);
    assert_eq!(doc.text, "Good page");
    // With no page readable, the document is corrupt.
    let pdf = fixtures::pdf_with_pages(&[broken], false);
    assert_corrupt(err(&pdf, "broken.pdf", None), "pdf");
}

#[test]
fn pdf_without_text_layer_has_no_text() {
    let drawing = b"0 0 1 rg 100 100 200 200 re f".to_vec();
    let pdf = fixtures::pdf_with_pages(&[drawing.clone(), drawing], false);
    assert_eq!(err(&pdf, "scan.pdf", None), ExtractError::NoText);
}

#[test]
fn garbage_starting_with_pdf_header_is_corrupt() {
    assert_corrupt(err(b"%PDF-", "x.pdf", None), "pdf");
    assert_corrupt(
        err(b"%PDF-1.7\nthis is not really a pdf\n%%EOF", "x.pdf", None),
        "pdf",
    );
    let mut rng = Rng::new(42);
    for len in [10, 100, 1000, 10_000] {
        let mut garbage = b"%PDF-1.4\n".to_vec();
        garbage.extend(rng.bytes(len));
        assert_corrupt(err(&garbage, "garbage", None), "pdf");
    }
}

#[test]
fn truncated_pdf_never_panics() {
    let pdf = fixtures::text_pdf(&["Some text that will be cut off"]);
    for cut in (5..pdf.len()).step_by(7) {
        match extract(&pdf[..cut], "cut.pdf", None) {
            Ok(doc) => assert!(doc.text.contains("Some text"), "{cut}: {}", doc.text),
            Err(ExtractError::Corrupt { format: "pdf", .. } | ExtractError::NoText) => {}
            Err(other) => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn pdf_form_xobject_text_is_extracted() {
    let mut pdf = Pdf::default();
    let catalog = pdf.reserve();
    let pages = pdf.reserve();
    let font = pdf.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    let form = pdf.add(Pdf::stream(
        &format!("/Type /XObject /Subtype /Form /BBox [0 0 500 500] /Resources << /Font << /F1 {font} 0 R >> >>"),
        &fixtures::show_text("Inside the form"),
    ));
    let content = pdf.add(Pdf::stream("", b"/X1 Do /X1 Do"));
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] \
         /Resources << /XObject << /X1 {form} 0 R >> >> /Contents {content} 0 R >>"
    ));
    pdf.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    let doc = ok(&pdf.finish(catalog), "form.pdf", None);
    assert!(doc.text.contains("Inside the form"), "{}", doc.text);
}

/// A Form XObject that draws itself would make the PDF reader recurse until the stack
/// overflows, which aborts the process: it must be refused before.
#[test]
fn self_drawing_form_xobject_is_corrupt() {
    for own_resources in [false, true] {
        let mut pdf = Pdf::default();
        let catalog = pdf.reserve();
        let pages = pdf.reserve();
        let form = pdf.reserve();
        let resources = if own_resources {
            format!("/Resources << /XObject << /Me {form} 0 R >> >>")
        } else {
            String::new()
        };
        pdf.set(
            form,
            Pdf::stream(
                &format!("/Type /XObject /Subtype /Form /BBox [0 0 1 1] {resources}"),
                b"/Me Do",
            ),
        );
        let content = pdf.add(Pdf::stream("", b"/Me Do"));
        let page = pdf.add(format!(
            "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] \
             /Resources << /XObject << /Me {form} 0 R >> >> /Contents {content} 0 R >>"
        ));
        pdf.set(
            pages,
            format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
        );
        pdf.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
        let reason = assert_corrupt(err(&pdf.finish(catalog), "loop.pdf", None), "pdf");
        assert!(reason.contains("draws itself"), "{reason}");
    }
}

/// Forms that draw forms ten times each, nine levels deep: a billion content streams for
/// the reader to run, none with a character in it. Refused before it starts.
#[test]
fn form_xobjects_drawn_a_billion_times_are_refused() {
    let mut pdf = Pdf::default();
    let catalog = pdf.reserve();
    let pages = pdf.reserve();
    let ten_times = |name: &str| format!("/{name} Do ").repeat(10).into_bytes();
    let mut below = pdf.add(Pdf::stream(
        "/Type /XObject /Subtype /Form /BBox [0 0 1 1]",
        b"0 0 m",
    ));
    for _ in 0..8 {
        below = pdf.add(Pdf::stream(
            &format!(
                "/Type /XObject /Subtype /Form /BBox [0 0 1 1] \
                 /Resources << /XObject << /F {below} 0 R >> >>"
            ),
            &ten_times("F"),
        ));
    }
    let content = pdf.add(Pdf::stream("", &ten_times("F")));
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] \
         /Resources << /XObject << /F {below} 0 R >> >> /Contents {content} 0 R >>"
    ));
    pdf.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    let reason = assert_corrupt(err(&pdf.finish(catalog), "fanout.pdf", None), "pdf");
    assert!(reason.contains("drawn too many times"), "{reason}");
}

#[test]
fn cyclic_page_parents_are_corrupt() {
    let mut pdf = Pdf::default();
    let catalog = pdf.reserve();
    let pages = pdf.reserve();
    let a = pdf.reserve();
    let b = pdf.reserve();
    // The page has no Resources or MediaBox of its own, and its Parent chain loops.
    let content = pdf.add(Pdf::stream("", &fixtures::show_text("never")));
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {a} 0 R /Contents {content} 0 R >>"
    ));
    pdf.set(a, format!("<< /Type /Pages /Parent {b} 0 R /Count 1 >>"));
    pdf.set(b, format!("<< /Type /Pages /Parent {a} 0 R /Count 1 >>"));
    pdf.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    let reason = assert_corrupt(err(&pdf.finish(catalog), "tree.pdf", None), "pdf");
    assert!(reason.contains("page tree"), "{reason}");
}

#[test]
fn encrypted_pdf_is_unsupported() {
    // Standard security handler, RC4 40-bit, with O/U entries no empty password matches.
    let mut pdf = Pdf::default();
    let catalog = pdf.reserve();
    let pages = pdf.reserve();
    let content = pdf.add(Pdf::stream("", b"BT ET"));
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R >>"
    ));
    pdf.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    let encrypt = pdf.add(format!(
        "<< /Filter /Standard /V 1 /R 2 /O <{o}> /U <{u}> /P -4 >>",
        o = "11".repeat(32),
        u = "22".repeat(32)
    ));
    let id = "33".repeat(16);
    let bytes = pdf.finish_with_trailer(
        catalog,
        &format!("/Encrypt {encrypt} 0 R /ID [<{id}> <{id}>]"),
    );
    assert_unsupported(
        err(&bytes, "secret.pdf", None),
        "encrypted (password-protected) PDF",
    );
}

#[test]
fn pdf_stream_bomb_is_refused() {
    let mut content = fixtures::show_text("tiny");
    content.extend(std::iter::repeat_n(b' ', 3 * 1024 * 1024));
    let pdf = fixtures::pdf_with_pages(&[content], true);
    assert!(pdf.len() < 100 * 1024, "compressed to {}", pdf.len());
    let limits = Limits {
        max_unpacked_bytes: 1024 * 1024,
        ..Limits::default()
    };
    assert_eq!(
        extract_with_limits(&pdf, "bomb.pdf", None, &limits),
        Err(ExtractError::TooLarge {
            format: "pdf",
            limit_bytes: 1024 * 1024
        })
    );
}

/// One page that shows `text` and draws `images` image XObjects, each a Flate stream of
/// `image_bytes` zero bytes (which compress about a thousandfold).
fn pdf_with_images(text: &str, images: usize, image_bytes: usize) -> Vec<u8> {
    let compressed = fixtures::zlib(&vec![0u8; image_bytes]);
    let mut pdf = Pdf::default();
    let catalog = pdf.reserve();
    let pages = pdf.reserve();
    let font = pdf.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    let mut xobjects = String::new();
    let mut content = fixtures::show_text(text);
    for index in 0..images {
        let image = pdf.add(Pdf::stream(
            &format!(
                "/Type /XObject /Subtype /Image /Width {} /Height 1024 /ColorSpace /DeviceGray \
                 /BitsPerComponent 8 /Filter /FlateDecode",
                image_bytes / 1024
            ),
            &compressed,
        ));
        xobjects.push_str(&format!("/Im{index} {image} 0 R "));
        content.extend(format!(" q 612 0 0 792 0 0 cm /Im{index} Do Q").bytes());
    }
    let content = pdf.add(Pdf::stream(
        "/Filter /FlateDecode",
        &fixtures::zlib(&content),
    ));
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] \
         /Resources << /Font << /F1 {font} 0 R >> /XObject << {xobjects}>> >> \
         /Contents {content} 0 R >>"
    ));
    pdf.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    pdf.finish(catalog)
}

#[test]
fn images_are_never_decompressed_however_many_and_large() {
    // 300 images of 8 MiB each (2.4 GB in all), drawn on the page; the limit is 4 MiB, so
    // decompressing any one of them would already be `TooLarge`.
    let pdf = pdf_with_images("Caption under the pictures", 300, 8 << 20);
    assert!(pdf.len() < 4 << 20, "{} bytes", pdf.len());
    let limits = Limits {
        max_unpacked_bytes: 4 << 20,
        ..Limits::default()
    };
    let doc =
        extract_with_limits(&pdf, "pictures.pdf", None, &limits).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.text, "Caption under the pictures");
}

#[test]
fn the_time_box_fires() {
    let no_time = Limits {
        time_limit: Duration::ZERO,
        ..Limits::default()
    };
    let timed_out = |format| ExtractError::TimedOut {
        format,
        limit: Duration::ZERO,
    };
    let pdf = pdf_with_images("Caption", 300, 1 << 20);
    assert_eq!(
        extract_with_limits(&pdf, "pictures.pdf", None, &no_time),
        Err(timed_out("pdf"))
    );
    let docx = fixtures::docx("<w:p><w:r><w:t>Hello</w:t></w:r></w:p>");
    assert_eq!(
        extract_with_limits(&docx, "a.docx", None, &no_time),
        Err(timed_out("docx"))
    );
    assert_eq!(
        extract_with_limits(b"plain words", "a.txt", None, &no_time),
        Err(timed_out("text"))
    );
    assert_eq!(
        timed_out("pdf").to_string(),
        "reading the pdf document took longer than the limit of 0ns"
    );
    // The same documents with time to read them.
    assert_eq!(ok(&pdf, "pictures.pdf", None).text, "Caption");
    assert_eq!(ok(&docx, "a.docx", None).text, "Hello");
}

#[test]
fn object_streams_count_against_the_unpack_limit() {
    // The page's font lives in a Flate-compressed object stream padded with 3 MiB of
    // whitespace.
    let mut pdf = Pdf::default();
    let catalog = pdf.reserve();
    let pages = pdf.reserve();
    let font_id = 900;
    let header = format!("{font_id} 0 ");
    let mut packed = header.clone().into_bytes();
    packed.extend_from_slice(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    packed.extend(std::iter::repeat_n(b' ', 3 << 20));
    pdf.add(Pdf::stream(
        &format!(
            "/Type /ObjStm /N 1 /First {} /Filter /FlateDecode",
            header.len()
        ),
        &fixtures::zlib(&packed),
    ));
    let content = pdf.add(Pdf::stream(
        "",
        &fixtures::show_text("from an object stream"),
    ));
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] \
         /Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {content} 0 R >>"
    ));
    pdf.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    let pdf = pdf.finish(catalog);
    assert!(pdf.len() < 100 * 1024, "{} bytes", pdf.len());

    assert_eq!(ok(&pdf, "packed.pdf", None).text, "from an object stream");
    let limits = Limits {
        max_unpacked_bytes: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(
        extract_with_limits(&pdf, "packed.pdf", None, &limits),
        Err(ExtractError::TooLarge {
            format: "pdf",
            limit_bytes: 1 << 20
        })
    );
}

#[test]
fn deeply_nested_pdf_objects_never_panic() {
    let mut pdf = Pdf::default();
    let catalog = pdf.reserve();
    let pages = pdf.reserve();
    let nested = format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep = pdf.add(&nested);
    let content = pdf.add(Pdf::stream("", &fixtures::show_text("still readable")));
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 612 792] /Junk {deep} 0 R \
         /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> \
         /Contents {content} 0 R >>"
    ));
    pdf.set(
        pages,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {pages} 0 R >>"));
    match extract(&pdf.finish(catalog), "nested.pdf", None) {
        Ok(doc) => assert!(doc.text.contains("still readable"), "{}", doc.text),
        Err(error) => assert_corrupt(error, "pdf").truncate(0),
    }
}

// ---- never panics ----

/// Random bytes, random prefixes that steer detection into every reader, and random
/// mutations of valid PDFs and DOCX files: `extract` always returns, and only the PDF
/// reader (a third-party crate known to panic, caught) may report a caught failure.
#[test]
fn never_panics_on_random_input() {
    let mut rng = Rng::new(0x5EED_1234_ABCD_0001);
    let valid = [
        fixtures::text_pdf(&["Alpha beta", "Gamma"]),
        fixtures::pdf_with_pages(&[fixtures::show_text("compressed")], true),
        fixtures::docx("<w:p><w:r><w:t>Alpha</w:t><w:tab/><w:t>beta</w:t></w:r></w:p>"),
        fixtures::data("page.html"),
        fixtures::data("notes.md"),
    ];
    let prefixes: [&[u8]; 9] = [
        b"",
        b"%PDF-1.4\n",
        b"PK\x03\x04",
        b"PK\x05\x06",
        b"<html><body>",
        b"\xEF\xBB\xBF",
        b"\xFF\xFE",
        b"\xFE\xFF",
        b"<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">",
    ];
    let keys = ["a.pdf", "a.docx", "a.html", "a.md", "a.txt", "a", "a.bin"];
    let content_types = [
        None,
        Some("application/pdf"),
        Some("text/html"),
        Some("text/plain"),
    ];

    for round in 0..3000 {
        let bytes = if round % 2 == 0 {
            let mut bytes = prefixes[rng.below(prefixes.len())].to_vec();
            let len = rng.below(2048);
            bytes.extend(rng.bytes(len));
            bytes
        } else {
            let mut bytes = valid[rng.below(valid.len())].clone();
            for _ in 0..=rng.below(8) {
                match rng.below(3) {
                    0 => {
                        let at = rng.below(bytes.len());
                        bytes[at] = rng.next_u64() as u8;
                    }
                    1 => bytes.truncate(rng.below(bytes.len()).max(1)),
                    _ => {
                        let at = rng.below(bytes.len());
                        let len = rng.below(64);
                        bytes.splice(at..at, rng.bytes(len));
                    }
                }
            }
            bytes
        };
        let key = keys[rng.below(keys.len())];
        let content_type = content_types[rng.below(content_types.len())];
        match extract(&bytes, key, content_type) {
            Ok(doc) => assert!(!doc.text.trim().is_empty(), "round {round}: empty text"),
            Err(ExtractError::Corrupt { format, reason })
                if reason.contains("failed on malformed") =>
            {
                assert_eq!(
                    format, "pdf",
                    "round {round}: a reader other than PDF panicked: {reason}"
                );
            }
            Err(error) => assert!(!error.to_string().is_empty()),
        }
    }
}

#[test]
fn errors_read_well_in_a_failure_record() {
    assert_eq!(
        ExtractError::Unsupported {
            format: "PNG image".into()
        }
        .to_string(),
        "unsupported document format: PNG image (supported: plain text, Markdown, HTML, PDF, DOCX)"
    );
    assert_eq!(
        ExtractError::TooLarge {
            format: "docx",
            limit_bytes: 52_428_800
        }
        .to_string(),
        "docx document unpacks to more than the limit of 52428800 bytes"
    );
    let corrupt = err(b"%PDF-1.4 junk", "a.pdf", None).to_string();
    assert!(corrupt.starts_with("corrupt pdf document: "), "{corrupt}");
    assert!(
        ExtractError::NoText
            .to_string()
            .contains("no extractable text")
    );
    assert_eq!(
        serde_json::to_string(&Format::PlainText).unwrap(),
        "\"text\""
    );
    assert_eq!(Format::Docx.to_string(), "docx");
}
