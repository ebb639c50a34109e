//! Markdown fenced code blocks, which are kept as they are instead of translated.
//!
//! ```
//! use translate::markdown::{Segment, segments};
//! let text = "Intro.\n\n```sh\nls -l\n```\nOutro.";
//! assert_eq!(
//!     segments(text),
//!     [Segment::Prose("Intro.\n\n"), Segment::Code("```sh\nls -l\n```\n"), Segment::Prose("Outro.")]
//! );
//! ```

/// A run of the text: prose to translate, or a fenced code block to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Text to translate.
    Prose(&'a str),
    /// A fenced code block, fences and final line break included.
    Code(&'a str),
}

/// Splits `text` into prose and fenced code blocks (CommonMark fences: three or more
/// backticks or tildes, indented at most three spaces; an unclosed fence runs to the end).
/// The segments concatenate back to `text`.
pub fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    let mut fence: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        let line_start = pos;
        pos += line.len();
        match fence {
            None => {
                if let Some(opened) = opening_fence(line) {
                    push(&mut out, text, start, line_start, false);
                    start = line_start;
                    fence = Some(opened);
                }
            }
            Some((c, len)) => {
                if closes(line, c, len) {
                    push(&mut out, text, start, pos, true);
                    start = pos;
                    fence = None;
                }
            }
        }
    }
    push(&mut out, text, start, text.len(), fence.is_some());
    out
}

fn push<'a>(out: &mut Vec<Segment<'a>>, text: &'a str, start: usize, end: usize, code: bool) {
    if let Some(piece) = text.get(start..end).filter(|p| !p.is_empty()) {
        out.push(if code {
            Segment::Code(piece)
        } else {
            Segment::Prose(piece)
        });
    }
}

/// The line without its line break and up to three spaces of indentation; `None` when
/// indented more (an indented code line, not a fence).
fn unindented(line: &str) -> Option<&str> {
    let line = line.trim_end_matches(['\n', '\r']);
    let rest = line.trim_start_matches(' ');
    (line.len() - rest.len() <= 3).then_some(rest)
}

fn fence_run(rest: &str) -> Option<(char, usize)> {
    let c = rest.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let len = rest.chars().take_while(|x| *x == c).count();
    (len >= 3).then_some((c, len))
}

fn opening_fence(line: &str) -> Option<(char, usize)> {
    let rest = unindented(line)?;
    let (c, len) = fence_run(rest)?;
    // A backtick fence's info string may not contain backticks (that is inline code).
    let info = rest.get(len..).unwrap_or("");
    (c != '`' || !info.contains('`')).then_some((c, len))
}

fn closes(line: &str, c: char, len: usize) -> bool {
    let Some(rest) = unindented(line) else {
        return false;
    };
    match fence_run(rest) {
        Some((found, found_len)) if found == c && found_len >= len => rest
            .get(found_len * c.len_utf8()..)
            .is_some_and(|tail| tail.trim().is_empty()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejoin(parts: &[Segment<'_>]) -> String {
        parts
            .iter()
            .map(|s| match s {
                Segment::Prose(t) | Segment::Code(t) => *t,
            })
            .collect()
    }

    #[test]
    fn finds_fences_of_both_kinds() {
        let text = "# Title\n\nRun:\n\n````bash\necho ```\n````\n\n~~~\nx\n~~~   \nEnd\n";
        let parts = segments(text);
        assert_eq!(
            parts,
            [
                Segment::Prose("# Title\n\nRun:\n\n"),
                Segment::Code("````bash\necho ```\n````\n"),
                Segment::Prose("\n"),
                Segment::Code("~~~\nx\n~~~   \n"),
                Segment::Prose("End\n"),
            ]
        );
        assert_eq!(rejoin(&parts), text);
    }

    #[test]
    fn not_fences_stay_prose() {
        for text in [
            "inline ```code``` here\n",
            "    ```\n    indented code\n    ```\n",
            "``\nnot a fence\n``\n",
            "",
        ] {
            let parts = segments(text);
            assert!(
                parts.iter().all(|s| matches!(s, Segment::Prose(_))),
                "{text:?}"
            );
            assert_eq!(rejoin(&parts), text);
        }
    }

    #[test]
    fn unclosed_fence_runs_to_the_end_and_crlf_works() {
        let text = "Intro\r\n```\r\ncode\r\nmore";
        assert_eq!(
            segments(text),
            [
                Segment::Prose("Intro\r\n"),
                Segment::Code("```\r\ncode\r\nmore")
            ]
        );
        let closed = "```\r\ncode\r\n```\r\nafter";
        assert_eq!(
            segments(closed),
            [
                Segment::Code("```\r\ncode\r\n```\r\n"),
                Segment::Prose("after")
            ]
        );
    }
}
