//! Splitting long text into pieces that fit a token budget, on natural boundaries, with
//! overlap.
//!
//! ```
//! let text = "First paragraph.\n\nSecond paragraph, a little longer.\n\nThird.";
//! let chunks = text::chunk::split(text, 12, 0);
//! assert!(chunks.len() > 1);
//! assert_eq!(chunks.iter().map(|c| c.text).collect::<String>(), text);
//! ```

use std::ops::Range;

use tokens::Counter;

/// One piece of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The piece, a slice of the original.
    pub text: &'a str,
    /// Where it starts in the original, in bytes.
    pub start: usize,
    /// Its tokens, as the [`Sizing`]'s counter counts them.
    pub tokens: u32,
}

/// How [`split_sized`] sizes chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// The most tokens a chunk may hold.
    pub max_tokens: u32,
    /// Tokens from the end of a chunk that the next one starts with (at most half of
    /// `max_tokens`).
    pub overlap_tokens: u32,
    /// How tokens are counted.
    pub counter: Counter,
    /// How full a chunk must be before it may end at a stronger boundary than the latest
    /// that fits, per mille of `max_tokens`: 500 trades up to half a chunk for a paragraph
    /// end, 900 keeps every chunk but the last at least 90% full.
    pub min_fill_per_mille: u32,
}

impl Sizing {
    /// Chunks of at most `max_tokens` estimated tokens, ending at the strongest boundary in
    /// their second half (what [`split`] does).
    pub fn estimated(max_tokens: u32, overlap_tokens: u32) -> Self {
        Self {
            max_tokens,
            overlap_tokens,
            counter: Counter::Estimate,
            min_fill_per_mille: 500,
        }
    }
}

/// Boundaries tried in order: paragraphs, lines, sentences, words; a single word longer
/// than the budget (a URL, text without spaces) is cut between characters.
const SEPARATORS: [&[&str]; 4] = [
    &["\n\n", "\r\n\r\n"],
    &["\n"],
    &[". ", "! ", "? ", "। ", "。", ".\n", "?\n", "!\n"],
    &[" ", "\t"],
];

/// Splits `text` into contiguous chunks of at most `max_tokens` estimated tokens each
/// ([`split_sized`] with [`Sizing::estimated`]).
pub fn split(text: &str, max_tokens: u32, overlap_tokens: u32) -> Vec<Chunk<'_>> {
    split_sized(text, Sizing::estimated(max_tokens, overlap_tokens))
}

/// Splits `text` into contiguous chunks of at most `sizing.max_tokens` tokens each. A chunk
/// ends at the strongest boundary (paragraph, then line, then sentence, then word) among
/// those that leave it `min_fill_per_mille` full. Each chunk after the first starts with
/// up to `overlap_tokens` from the end of the one before, from a sentence start where there
/// is one. With no overlap the chunks concatenate back to `text` exactly. Empty text gives
/// no chunks.
pub fn split_sized(text: &str, sizing: Sizing) -> Vec<Chunk<'_>> {
    let max = sizing.max_tokens.max(1);
    let sizing = Sizing {
        max_tokens: max,
        overlap_tokens: sizing.overlap_tokens.min(max / 2),
        min_fill_per_mille: sizing.min_fill_per_mille.min(1000),
        ..sizing
    };
    let mut units = Vec::new();
    collect_units(text, 0..text.len(), &sizing, 0, PARAGRAPH, &mut units);
    pack(text, &units, &sizing)
}

/// Boundary strength of a paragraph end (the strongest); higher levels are weaker.
const PARAGRAPH: usize = 0;
/// Sentence level: overlaps start after a sentence end when they can.
const SENTENCE: usize = 2;
/// Word level: text is always split down to words, so chunks and overlaps can end anywhere.
const WORD: usize = 3;
/// The weakest boundary, between characters.
const CHARACTER: usize = SEPARATORS.len();

/// A piece that is never split further: its range and the strength of the boundary it
/// ends at.
struct Unit {
    range: Range<usize>,
    end_level: usize,
}

fn collect_units(
    text: &str,
    range: Range<usize>,
    sizing: &Sizing,
    level: usize,
    end_level: usize,
    out: &mut Vec<Unit>,
) {
    if range.is_empty() {
        return;
    }
    // A count never exceeds the byte length: short pieces need no count.
    let max = sizing.max_tokens;
    if level > WORD
        && (range.len() <= max as usize || sizing.counter.count(&text[range.clone()]) <= max)
    {
        out.push(Unit { range, end_level });
        return;
    }
    let Some(separators) = SEPARATORS.get(level) else {
        cut_characters(text, range, sizing, end_level, out);
        return;
    };
    let pieces = split_after(text, range, separators);
    let count = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        let piece_end = if i + 1 == count { end_level } else { level };
        collect_units(text, piece, sizing, level + 1, piece_end, out);
    }
}

/// Splits `range` after each occurrence of any separator, keeping separators with the
/// piece before them.
fn split_after(text: &str, range: Range<usize>, separators: &[&str]) -> Vec<Range<usize>> {
    let slice = &text[range.clone()];
    let bytes = slice.as_bytes();
    // Only a separator's first byte (ASCII or a UTF-8 lead byte, never a continuation
    // byte) can start a match, so `i` is a character boundary wherever one is tried.
    let mut starts = [false; 256];
    for sep in separators {
        starts[usize::from(sep.as_bytes()[0])] = true;
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !starts[usize::from(bytes[i])] {
            i += 1;
            continue;
        }
        let found = separators
            .iter()
            .find(|s| bytes[i..].starts_with(s.as_bytes()));
        if let Some(sep) = found {
            let end = i + sep.len();
            pieces.push(range.start + start..range.start + end);
            start = end;
            i = end;
        } else {
            i += 1;
        }
    }
    if start < slice.len() {
        pieces.push(range.start + start..range.end);
    }
    pieces
}

fn cut_characters(
    text: &str,
    range: Range<usize>,
    sizing: &Sizing,
    end_level: usize,
    out: &mut Vec<Unit>,
) {
    let max = sizing.max_tokens;
    let mut start = range.start;
    while start < range.end {
        // The longest prefix that fits; a single character always fits a budget of one
        // token or more. Units are packed together later, so looking at most four
        // characters per token ahead (a shorter unit at worst) keeps this linear.
        let ends: Vec<usize> = text[start..range.end]
            .char_indices()
            .take((max as usize).saturating_mul(4))
            .map(|(i, c)| start + i + c.len_utf8())
            .collect();
        let fit = longest_fit(ends.len(), |i| {
            sizing.counter.count(&text[start..ends[i]]) <= max
        });
        let end = ends[fit];
        let level = if end == range.end {
            end_level
        } else {
            CHARACTER
        };
        out.push(Unit {
            range: start..end,
            end_level: level,
        });
        start = end;
    }
}

/// Tokens allowed for where a run's count exceeds the difference of running totals.
const SLACK: u32 = 2;

/// The running count of `text` at the end of each unit (the pieces that end by then).
fn totals_at_unit_ends(text: &str, units: &[Unit], counter: Counter) -> Vec<u32> {
    let mut pieces = counter.running(text).peekable();
    let mut total = 0;
    units
        .iter()
        .map(|unit| {
            while let Some((_, at)) = pieces.next_if(|&(end, _)| end <= unit.range.end) {
                total = at;
            }
            total
        })
        .collect()
}

/// The largest `i < count` with `fits(i)`, given that `fits(0)` holds and `fits` is
/// monotone: a gallop then a bisection, so O(log n) probes whose cost grows with `i`.
fn longest_fit(count: usize, fits: impl Fn(usize) -> bool) -> usize {
    let mut fit = 0;
    let mut beyond = count;
    let mut step = 1;
    while fit + step < count {
        if fits(fit + step) {
            fit += step;
            step *= 2;
        } else {
            beyond = fit + step;
            break;
        }
    }
    while beyond - fit > 1 {
        let middle = fit + (beyond - fit) / 2;
        if fits(middle) {
            fit = middle;
        } else {
            beyond = middle;
        }
    }
    fit
}

fn pack<'a>(text: &'a str, units: &[Unit], sizing: &Sizing) -> Vec<Chunk<'a>> {
    let (max, overlap, counter) = (sizing.max_tokens, sizing.overlap_tokens, sizing.counter);
    let span = |first: usize, last: usize| units[first].range.start..units[last].range.end;
    let count = |first: usize, last: usize| counter.count(&text[span(first, last)]);
    let fits = |first: usize, last: usize| count(first, last) <= max;
    let totals = totals_at_unit_ends(text, units, counter);
    // Tokens a chunk holds before it may end at a stronger boundary than the latest.
    let fill =
        u32::try_from(u64::from(max) * u64::from(sizing.min_fill_per_mille) / 1000).unwrap_or(max);
    let mut chunks = Vec::new();
    let mut first = 0;
    while first < units.len() {
        // The longest run of units from `first` that fits. The running totals give it with
        // a margin for the run's ends; one count of the run confirms it (and is kept), else
        // a search (a single unit always fits).
        let before = if first == 0 { 0 } else { totals[first - 1] };
        let by_totals = totals[first..].partition_point(|&t| t - before + SLACK <= max);
        let confirmed = (by_totals > 0)
            .then(|| (first + by_totals - 1, count(first, first + by_totals - 1)))
            .filter(|&(_, tokens)| tokens <= max);
        let (fit, fit_tokens) = match confirmed {
            Some((fit, tokens)) => (fit, Some(tokens)),
            None => (
                first + longest_fit(units.len() - first, |i| fits(first, first + i)),
                None,
            ),
        };
        // Then end at the strongest boundary that leaves the chunk `fill` full (by the
        // running totals), the latest one among equals.
        let mut last = fit;
        if last + 1 < units.len() {
            for i in (first..=fit).rev() {
                if totals[i].saturating_sub(before) < fill {
                    break;
                }
                if units[i].end_level < units[last].end_level {
                    last = i;
                }
            }
        }
        let range = span(first, last);
        let tokens = match fit_tokens {
            Some(tokens) if last == fit => tokens,
            _ => count(first, last),
        };
        chunks.push(Chunk {
            text: &text[range.clone()],
            start: range.start,
            tokens,
        });
        if last + 1 >= units.len() {
            break;
        }
        // Start the next chunk far enough back to overlap (the most units before `last + 1`
        // that fit `overlap`), but always move forward.
        let back = longest_fit(last - first + 1, |i| {
            i == 0 || count(last + 1 - i, last) <= overlap
        });
        let next = last + 1 - back;
        // Prefer to start the overlap at a sentence start.
        first = (next..=last)
            .find(|&i| units[i - 1].end_level <= SENTENCE)
            .unwrap_or(next);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use tokens::{estimate_tokens, llama3};

    use super::*;

    fn sample(lang: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../tokens/tests/data/languages/{lang}.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn short_text_is_one_chunk_and_empty_is_none() {
        assert_eq!(split("hello world", 100, 10).len(), 1);
        assert!(split("", 100, 10).is_empty());
    }

    #[test]
    fn chunks_fit_and_reassemble_without_overlap() {
        for lang in ["en", "de", "hi", "th", "mixed"] {
            let text = sample(lang).repeat(3);
            for max in [8, 40, 150, 600] {
                let chunks = split(&text, max, 0);
                assert!(
                    chunks
                        .iter()
                        .all(|c| c.tokens <= max && estimate_tokens(c.text) <= max),
                    "{lang} {max}"
                );
                assert_eq!(
                    chunks.iter().map(|c| c.text).collect::<String>(),
                    text,
                    "{lang} {max}"
                );
            }
        }
    }

    #[test]
    fn prefers_paragraph_boundaries() {
        let text = sample("en");
        let chunks = split(&text, 150, 0);
        assert!(chunks.len() >= 2);
        for c in &chunks[..chunks.len() - 1] {
            assert!(
                c.text.ends_with("\n\n") || c.text.ends_with(". ") || c.text.ends_with('\n'),
                "{:?}",
                &c.text[c.text.len().saturating_sub(20)..]
            );
        }
    }

    #[test]
    fn chunks_end_at_the_last_paragraph_that_fits() {
        let text = sample("en").repeat(20);
        let paragraph_max = text.split("\n\n").map(estimate_tokens).max().unwrap_or(0);
        let max = 600;
        let chunks = split(&text, max, 0);
        for c in &chunks[..chunks.len() - 1] {
            assert!(c.text.ends_with("\n\n") || c.text.ends_with(".\n"));
            // The next paragraph would not have fitted.
            assert!(c.tokens + paragraph_max + 2 > max, "{} tokens", c.tokens);
        }
        let total = estimate_tokens(&text);
        assert!(chunks.len() <= (total / (max - paragraph_max - 2) + 1) as usize);
    }

    #[test]
    fn overlap_repeats_the_end_of_the_previous_chunk() {
        let text = sample("fr").repeat(4);
        let chunks = split(&text, 120, 30);
        assert!(chunks.len() > 2);
        for pair in chunks.windows(2) {
            let prev_end = pair[0].start + pair[0].text.len();
            assert!(pair[1].start < prev_end, "chunks should overlap");
            assert!(pair[1].start > pair[0].start, "chunks must move forward");
            let overlap = &text[pair[1].start..prev_end];
            assert!(estimate_tokens(overlap) <= 60);
        }
        assert_eq!(
            chunks.last().map(|c| c.start + c.text.len()),
            Some(text.len())
        );
    }

    #[test]
    fn text_without_spaces_is_cut_between_characters() {
        let text = "ก".repeat(500);
        let chunks = split(&text, 20, 0);
        assert!(chunks.len() > 5);
        assert!(chunks.iter().all(|c| c.tokens <= 20));
        assert_eq!(chunks.iter().map(|c| c.text).collect::<String>(), text);
    }

    #[test]
    fn exact_sizing_fills_every_chunk_but_the_last_to_ninety_percent() {
        for lang in ["en", "de", "hi", "th", "mixed"] {
            let text = sample(lang).repeat(6);
            for (max, overlap) in [(300, 0), (900, 90)] {
                let sizing = Sizing {
                    max_tokens: max,
                    overlap_tokens: overlap,
                    counter: Counter::Exact,
                    min_fill_per_mille: 900,
                };
                let chunks = split_sized(&text, sizing);
                assert!(chunks.len() > 1, "{lang} {max}");
                for c in &chunks {
                    let real = llama3::count_tokens(c.text);
                    assert_eq!(c.tokens, real);
                    assert!(real <= max, "{lang} {max}: {real}");
                }
                for c in &chunks[..chunks.len() - 1] {
                    assert!(
                        c.tokens * 10 >= max * 9,
                        "{lang} {max}: {} tokens",
                        c.tokens
                    );
                }
                // Never more chunks than the estimate's sizing needs for the same budget, and
                // fewer on Latin-script text, which the estimate over-counts most.
                let estimated = split(&text, max, overlap);
                assert!(chunks.len() <= estimated.len(), "{lang} {max}");
                if matches!(lang, "en" | "de") {
                    assert!(chunks.len() < estimated.len(), "{lang} {max}");
                }
            }
        }
    }
}
