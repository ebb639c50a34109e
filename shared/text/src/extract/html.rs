//! The visible text of an HTML document, from a WHATWG tokenizer (`html5gum`): no tree is
//! built, so nesting depth costs nothing, and character references are decoded by the
//! tokenizer.

use html5gum::{DefaultEmitter, Token, Tokenizer};

/// Elements whose content is never shown: skipped up to their matching end tag.
const HIDDEN: &[&[u8]] = &[
    b"script",
    b"style",
    b"noscript",
    b"template",
    b"title",
    b"textarea",
    b"iframe",
    b"noembed",
    b"noframes",
    b"svg",
    b"object",
];

/// Elements that are a paragraph of their own: a blank line before and after.
const PARAGRAPHS: &[&[u8]] = &[
    b"p",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"blockquote",
    b"pre",
    b"listing",
    b"ul",
    b"ol",
    b"dl",
    b"table",
    b"hr",
    b"figure",
    b"section",
    b"article",
    b"header",
    b"footer",
    b"main",
    b"nav",
    b"aside",
    b"address",
    b"details",
    b"fieldset",
];

/// Elements that start on a line of their own.
const LINES: &[&[u8]] = &[
    b"html",
    b"body",
    b"div",
    b"li",
    b"dt",
    b"dd",
    b"tr",
    b"thead",
    b"tbody",
    b"tfoot",
    b"caption",
    b"figcaption",
    b"summary",
    b"legend",
    b"form",
    b"center",
    b"option",
    b"search",
    b"hgroup",
    b"menu",
];

/// Elements that may appear in `<head>`; any other start tag there ends the head.
const HEAD_CONTENT: &[&[u8]] = &[
    b"meta",
    b"link",
    b"title",
    b"style",
    b"script",
    b"base",
    b"noscript",
    b"template",
];

/// What the tokens being read belong to.
enum Mode {
    Visible,
    /// Inside `<head>`: nothing shown until it ends.
    Head,
    /// Inside a hidden element: its name and how many of them are open.
    Hidden(Vec<u8>, usize),
}

/// The text a browser would show for `html`, with block elements on lines of their own and
/// paragraphs separated by a blank line; table cells are separated by tabs.
pub(super) fn visible_text(html: &str) -> String {
    let mut emitter = DefaultEmitter::default();
    // Script, style, title and textarea content is raw text, not markup.
    emitter.naively_switch_states(true);
    let mut writer = TextWriter::default();
    let mut mode = Mode::Visible;
    let mut preformatted = 0usize;
    let mut pending_text: Vec<u8> = Vec::new();

    for token in Tokenizer::new_with_emitter(html, emitter) {
        let Ok(token) = token;
        if let Token::String(text) = &token {
            if matches!(mode, Mode::Visible) {
                pending_text.extend_from_slice(&text.value);
            }
            continue;
        }
        if !pending_text.is_empty() {
            writer.text(&String::from_utf8_lossy(&pending_text), preformatted > 0);
            pending_text.clear();
        }
        match token {
            Token::StartTag(tag) => {
                let name: &[u8] = &tag.name;
                match &mut mode {
                    Mode::Hidden(hidden, open) => {
                        if name == hidden.as_slice() {
                            *open += 1;
                        }
                        continue;
                    }
                    Mode::Head if name == b"body" || !HEAD_CONTENT.contains(&name) => {
                        mode = Mode::Visible;
                    }
                    Mode::Head => {}
                    Mode::Visible => {}
                }
                if name == b"head" {
                    mode = Mode::Head;
                } else if HIDDEN.contains(&name) {
                    mode = Mode::Hidden(name.to_vec(), 1);
                } else if matches!(mode, Mode::Visible) {
                    writer.start(name);
                    if name == b"pre" || name == b"listing" {
                        preformatted += 1;
                    }
                }
            }
            Token::EndTag(tag) => {
                let name: &[u8] = &tag.name;
                match &mut mode {
                    Mode::Hidden(hidden, open) => {
                        if name == hidden.as_slice() {
                            *open -= 1;
                            if *open == 0 {
                                mode = Mode::Visible;
                            }
                        }
                    }
                    Mode::Head => {
                        if name == b"head" || name == b"html" {
                            mode = Mode::Visible;
                        }
                    }
                    Mode::Visible => {
                        writer.end(name);
                        if name == b"pre" || name == b"listing" {
                            preformatted = preformatted.saturating_sub(1);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !pending_text.is_empty() {
        writer.text(&String::from_utf8_lossy(&pending_text), preformatted > 0);
    }
    writer.out
}

/// Builds the text: collapses whitespace outside `<pre>` and turns block boundaries into
/// line breaks lazily, so that empty elements leave no blank lines.
#[derive(Default)]
struct TextWriter {
    out: String,
    /// Newlines owed before the next visible character: 1 for a line, 2 for a paragraph.
    pending_break: usize,
    /// A separator owed before the next visible character on the same line.
    pending_separator: Option<char>,
}

impl TextWriter {
    fn start(&mut self, name: &[u8]) {
        match name {
            b"br" => self.line_break(),
            b"td" | b"th" => self.pending_separator = Some('\t'),
            _ => self.block(name),
        }
    }

    fn end(&mut self, name: &[u8]) {
        match name {
            // `</br>` is treated as `<br>` by browsers.
            b"br" => self.line_break(),
            b"td" | b"th" => {}
            _ => self.block(name),
        }
    }

    fn block(&mut self, name: &[u8]) {
        if PARAGRAPHS.contains(&name) {
            self.pending_break = 2;
        } else if LINES.contains(&name) {
            self.pending_break = self.pending_break.max(1);
        }
    }

    fn line_break(&mut self) {
        self.flush_break();
        self.trim_trailing_blanks();
        self.out.push('\n');
        self.pending_separator = None;
    }

    fn text(&mut self, text: &str, preformatted: bool) {
        for ch in text.chars() {
            if !preformatted && ch.is_ascii_whitespace() {
                if self.pending_separator.is_none() {
                    self.pending_separator = Some(' ');
                }
                continue;
            }
            self.flush_break();
            if let Some(separator) = self.pending_separator.take()
                && !self.out.is_empty()
                && !self.out.ends_with('\n')
            {
                self.out.push(separator);
            }
            self.out.push(if ch == '\u{A0}' { ' ' } else { ch });
        }
    }

    fn flush_break(&mut self) {
        if self.pending_break == 0 {
            return;
        }
        if !self.out.is_empty() {
            self.trim_trailing_blanks();
            let present = self.out.len() - self.out.trim_end_matches('\n').len();
            for _ in present..self.pending_break {
                self.out.push('\n');
            }
        }
        self.pending_break = 0;
        self.pending_separator = None;
    }

    fn trim_trailing_blanks(&mut self) {
        let kept = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::visible_text;

    #[test]
    fn inline_whitespace_collapses() {
        assert_eq!(
            visible_text("<p>one   <b>two</b>\n three<i>four</i></p>"),
            "one two threefour"
        );
    }

    #[test]
    fn blocks_lines_cells() {
        let html = "<h1>T</h1><div>a</div><div>b<br>c</div><table><tr><td>1</td><td>2</td></tr>\
                    <tr><td>3</td><td>4</td></tr></table><p>end</p>";
        assert_eq!(visible_text(html), "T\n\na\nb\nc\n\n1\t2\n3\t4\n\nend");
    }

    #[test]
    fn preformatted_keeps_whitespace() {
        assert_eq!(
            visible_text("<p>x</p><pre>  a\n    b</pre><p>y  z</p>"),
            "x\n\n  a\n    b\n\ny z"
        );
    }

    #[test]
    fn head_without_end_tag_ends_at_body_content() {
        assert_eq!(
            visible_text("<html><head><meta charset=utf-8><title>T</title><p>shown"),
            "shown"
        );
    }

    #[test]
    fn nested_hidden_elements() {
        assert_eq!(
            visible_text("a<template>x<template>y</template>z</template>b"),
            "ab"
        );
    }
}
