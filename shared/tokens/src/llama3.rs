//! Exact Llama 3 token counts: the tokenizer's own pre-split and byte-pair merges over its
//! 128,000-token vocabulary, embedded in the binary (`build.rs`) and indexed on the first
//! count, so that processes that never need an exact count never pay for it.
//!
//! Counting needs no token ids, so this is a counter, not a tokenizer: text is split as
//! Llama 3 splits it (the template's special tokens count one each), then each piece is
//! merged pair by pair, lowest rank first, as tiktoken-style BPE does. The counts equal
//! the reference tokenizer's (`tests/exact_vs_tokenizer.rs`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::OnceLock;

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::SPECIAL_TOKENS;

/// The vocabulary in rank order as merge pairs: six planes of 128,000 bytes, the low,
/// middle and high bytes of each token's left rank, then of its right rank (`build.rs`).
static VOCABULARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/llama3-vocab.bin"));

/// The right rank that marks a one-byte token (its left "rank" is the byte).
const BYTE: u32 = 0xFF_FFFF;

/// The vocabulary's index.
struct Counter {
    ranks: HashMap<&'static [u8], u32>,
}

fn counter() -> &'static Counter {
    static COUNTER: OnceLock<Counter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let n = VOCABULARY.len() / 6;
        let rank = |plane: usize, token: usize| {
            (0..3).fold(0u32, |value, byte| {
                value | u32::from(VOCABULARY[(plane * 3 + byte) * n + token]) << (8 * byte)
            })
        };
        // Every token's bytes, one after another (each pair refers to earlier tokens).
        let mut bytes = Vec::with_capacity(1 << 20);
        let mut spans = Vec::with_capacity(n);
        for token in 0..n {
            let start = bytes.len();
            let (left, right) = (rank(0, token), rank(1, token));
            if right == BYTE {
                bytes.push(left as u8);
            } else {
                for part in [left, right] {
                    let span: &std::ops::Range<usize> = &spans[part as usize];
                    bytes.extend_from_within(span.clone());
                }
            }
            spans.push(start..bytes.len());
        }
        // Kept for the process's lifetime, as the index that points into it.
        let bytes: &'static [u8] = Vec::leak(bytes);
        let ranks = spans
            .into_iter()
            .enumerate()
            .map(|(rank, span)| (&bytes[span], rank as u32))
            .collect();
        Counter { ranks }
    })
}

/// The exact number of Llama 3 tokens in `text` (the template's special tokens, such as
/// `<|eot_id|>`, count one each).
///
/// ```
/// assert_eq!(tokens::llama3::count_tokens("The quick brown fox jumps over the lazy dog."), 10);
/// ```
pub fn count_tokens(text: &str) -> u32 {
    running_count(text).last().map_or(0, |(_, total)| total)
}

/// [`count_tokens`] as a running total: for each piece Llama 3 tokenizes on its own (a word
/// with its leading space, a number group, a run of symbols or spaces, a special token),
/// the byte offset where it ends and the tokens up to there. Tokens never span pieces, so
/// the difference of two totals is the count of the text between those offsets (give or
/// take the pieces at the slice's edges, which the text beyond them can regroup).
pub fn running_count(text: &str) -> impl Iterator<Item = (usize, u32)> + '_ {
    let counter = counter();
    segments(text)
        .flat_map(move |(start, segment)| {
            let pieces: Box<dyn Iterator<Item = (usize, u32)>> = match segment {
                Segment::Special(len) => Box::new(std::iter::once((start + len, 1))),
                Segment::Text(text) => Box::new(pieces(text).map(move |(from, to)| {
                    (start + to, counter.merge(&text.as_bytes()[from..to]))
                })),
            };
            pieces
        })
        .scan(0u32, |total, (end, tokens)| {
            *total = total.saturating_add(tokens);
            Some((end, *total))
        })
}

enum Segment<'a> {
    /// A special token of this many bytes.
    Special(usize),
    Text(&'a str),
}

/// `text` cut around the template's special tokens, with each segment's start offset.
fn segments(text: &str) -> impl Iterator<Item = (usize, Segment<'_>)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = &text[pos..];
        if rest.is_empty() {
            return None;
        }
        let start = pos;
        if let Some(special) = SPECIAL_TOKENS.iter().find(|s| rest.starts_with(**s)) {
            pos += special.len();
            return Some((start, Segment::Special(special.len())));
        }
        let end = rest
            .match_indices("<|")
            .map(|(i, _)| i)
            .find(|&i| i > 0 && SPECIAL_TOKENS.iter().any(|s| rest[i..].starts_with(*s)))
            .unwrap_or(rest.len());
        pos += end;
        Some((start, Segment::Text(&rest[..end])))
    })
}

/// The pieces of `text` as Llama 3's pre-split pattern cuts it, as byte ranges.
fn pieces(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let start = pos;
        pos = piece_end(text, start)?;
        Some((start, pos))
    })
}

/// The end of the piece starting at `start`: the first alternative of Llama 3's pattern
/// that matches there, in the pattern's order,
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
fn piece_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text[start..];
    let c = rest.chars().next()?;
    let width = c.len_utf8();
    if c == '\''
        && let Some(len) = contraction(&rest[1..])
    {
        return Some(start + 1 + len);
    }
    if is_letter(c) {
        return Some(start + run(rest, is_letter));
    }
    if !is_line_break(c) && !is_number(c) {
        let letters = run(&rest[width..], is_letter);
        if letters > 0 {
            return Some(start + width + letters);
        }
    }
    if is_number(c) {
        let digits: usize = rest
            .chars()
            .take(3)
            .take_while(|&c| is_number(c))
            .map(char::len_utf8)
            .sum();
        return Some(start + digits);
    }
    let space = usize::from(c == ' ');
    let symbols = run(&rest[space..], is_symbol);
    if symbols > 0 {
        let end = space + symbols;
        return Some(start + end + run(&rest[end..], is_line_break));
    }
    // Whitespace: up to its last line break if it has one; else the run, less its last
    // char when two or more precede a non-space (`\s+(?!\S)`).
    let spaces = &rest[..run(rest, char::is_whitespace)];
    if let Some(i) = spaces.rfind(['\r', '\n']) {
        return Some(start + i + 1);
    }
    let mut end = spaces.len();
    if end < rest.len() && spaces.chars().nth(1).is_some() {
        end -= spaces.chars().next_back().map_or(0, char::len_utf8);
    }
    Some(start + end)
}

/// The bytes of the contraction after an apostrophe (`s t re ve m ll d`, any case), if any.
fn contraction(after: &str) -> Option<usize> {
    // Case-insensitive as Unicode folds: the long s folds to `s`.
    let fold = |c: char| {
        if c == '\u{17F}' {
            's'
        } else {
            c.to_ascii_lowercase()
        }
    };
    let mut chars = after.chars();
    let first = chars.next()?;
    let second = match fold(first) {
        's' | 't' | 'm' | 'd' => return Some(first.len_utf8()),
        'r' | 'v' => 'e',
        'l' => 'l',
        _ => return None,
    };
    let next = chars.next()?;
    (fold(next) == second).then(|| first.len_utf8() + next.len_utf8())
}

/// The bytes of the run of chars satisfying `keep` at the start of `text`.
fn run(text: &str, keep: impl Fn(char) -> bool) -> usize {
    text.find(|c: char| !keep(c)).unwrap_or(text.len())
}

/// `\p{L}`.
fn is_letter(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Letter
}

/// `\p{N}` (the number categories, as `char::is_numeric` defines it).
fn is_number(c: char) -> bool {
    c.is_numeric()
}

fn is_line_break(c: char) -> bool {
    matches!(c, '\r' | '\n')
}

/// `[^\s\p{L}\p{N}]`.
fn is_symbol(c: char) -> bool {
    !c.is_whitespace() && !is_letter(c) && !is_number(c)
}

impl Counter {
    /// The tokens of one piece: byte-pair merges, lowest rank first, leftmost among equals.
    fn merge(&self, piece: &[u8]) -> u32 {
        if piece.len() <= 1 || self.ranks.contains_key(piece) {
            return u32::from(!piece.is_empty());
        }
        // Parts as a linked list over byte offsets: part `i` spans `i..end[i]` (`usize::MAX`
        // once merged into the part before it), so the part after it starts at `end[i]`
        // (none when that is `n`); `prev[i]` is the part before it (`usize::MAX` for none).
        let n = piece.len();
        let mut end: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut parts = n as u32;
        let rank = |from: usize, to: usize| self.ranks.get(&piece[from..to]).copied();
        // Candidate merges: (rank, left part, the right part's end when queued).
        let mut queue = BinaryHeap::new();
        for i in 0..n - 1 {
            if let Some(r) = rank(i, i + 2) {
                queue.push(Reverse((r, i, i + 2)));
            }
        }
        while let Some(Reverse((_, left, right_end))) = queue.pop() {
            // Stale: the left part was merged away, or its neighbour changed.
            let right = end[left];
            if right >= n || end[right] != right_end {
                continue;
            }
            end[left] = right_end;
            end[right] = usize::MAX;
            if right_end < n {
                prev[right_end] = left;
            }
            parts -= 1;
            if prev[left] != usize::MAX
                && let Some(r) = rank(prev[left], right_end)
            {
                queue.push(Reverse((r, prev[left], right_end)));
            }
            if right_end < n
                && let Some(r) = rank(left, end[right_end])
            {
                queue.push(Reverse((r, left, end[right_end])));
            }
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_follow_the_pattern() {
        let cut = |text: &'static str| -> Vec<&'static str> {
            pieces(text).map(|(a, b)| &text[a..b]).collect()
        };
        assert_eq!(cut("I'm here"), ["I", "'m", " here"]);
        assert_eq!(cut("WE'LL see"), ["WE", "'LL", " see"]);
        assert_eq!(cut("$abc 12345"), ["$abc", " ", "123", "45"]);
        assert_eq!(cut("a   b"), ["a", "  ", " b"]);
        assert_eq!(cut("a  \n\n  b"), ["a", "  \n\n", " ", " b"]);
        assert_eq!(cut("x !!!\n\ny"), ["x", " !!!\n\n", "y"]);
        assert_eq!(cut("end  "), ["end", "  "]);
    }

    #[test]
    fn empty_text_is_zero_and_specials_are_one() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("<|eot_id|>"), 1);
        assert_eq!(count_tokens("<|begin_of_text|><|start_header_id|>"), 2);
        // Only the template's markers are special: a neutralized one is text.
        assert!(count_tokens("<\u{2060}|eot_id|>") > 1);
    }

    #[test]
    fn a_long_run_without_breaks_counts_in_linear_time() {
        // One piece of a million letters: the merge queue keeps this n log n.
        let run = "a".repeat(1_000_000);
        let n = count_tokens(&run);
        assert!(n > 0 && n < 1_000_000 / 4, "{n}");
    }

    #[test]
    fn running_totals_end_at_the_text_end() {
        let text = "Two words.   And  three more.\n\n<|eot_id|>";
        let totals: Vec<_> = running_count(text).collect();
        assert_eq!(totals.last(), Some(&(text.len(), count_tokens(text))));
        assert!(
            totals
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
        );
    }
}
