//! The one output shape every extractor ends with.

/// Normalizes extracted text: line breaks (`\r\n`, `\r`, form feed, vertical tab, Unicode
/// line/paragraph separators) become `\n`, other control characters and stray BOMs are
/// dropped, trailing whitespace is trimmed from every line, runs of blank lines collapse to
/// one blank line, and leading/trailing blank lines are removed. Whitespace-only input gives
/// an empty string.
pub(super) fn normalize(raw: &str) -> String {
    let mut cleaned = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    cleaned.push('\n');
                }
            }
            '\n' | '\x0B' | '\x0C' | '\u{85}' | '\u{2028}' | '\u{2029}' => cleaned.push('\n'),
            '\t' => cleaned.push('\t'),
            '\u{FEFF}' => {}
            c if c.is_control() => {}
            c => cleaned.push(c),
        }
    }

    let mut out = String::with_capacity(cleaned.len());
    let mut blank_lines = 0usize;
    for line in cleaned.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            blank_lines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_lines > 0 {
                out.push('\n');
            }
        }
        out.push_str(line);
        blank_lines = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn line_endings_blank_lines_and_trailing_spaces() {
        let raw = "\r\n\n  Title  \r\nline two\t \r\rpara\n\n\n\n\nlast \n\n";
        assert_eq!(normalize(raw), "  Title\nline two\n\npara\n\nlast");
    }

    #[test]
    fn control_characters_dropped_tabs_kept() {
        assert_eq!(normalize("a\u{0}b\u{1B}c\td\u{FEFF}"), "abc\td");
        assert_eq!(normalize("page one\x0Cpage two"), "page one\npage two");
    }

    #[test]
    fn whitespace_only_is_empty() {
        assert_eq!(normalize(" \t\r\n\u{A0}\n\u{3000} "), "");
    }
}
