//! The exact counter and the budget's decisions against the real Llama 3.2 tokenizer
//! (Hugging Face `tokenizers` over the file `scripts/setup.sh` fetches), in all eight
//! languages.

mod support;

use support::{samples, tokenizer};
use tokenizers::Tokenizer;
use tokens::{ContextBudget, Counter, estimate_tokens, llama3};

/// How far above the real count a decision taken by the exact counter may be.
const MAX_DECISION_OVER: f64 = 0.03;

fn real_count(tokenizer: &Tokenizer, text: &str) -> u32 {
    let n = tokenizer.encode(text, false).expect("tokenize").len();
    u32::try_from(n).expect("fits u32")
}

/// Whole texts, paragraphs, lines, and slices between arbitrary char boundaries.
fn pieces(text: &str) -> Vec<&str> {
    let mut pieces = vec![text];
    pieces.extend(text.split("\n\n").filter(|p| !p.trim().is_empty()));
    pieces.extend(text.lines().filter(|l| !l.trim().is_empty()));
    let bounds: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    for i in (0..bounds.len()).step_by(97) {
        for j in (i + 1..bounds.len()).step_by(211) {
            pieces.push(&text[bounds[i]..bounds[j]]);
        }
    }
    pieces
}

#[test]
fn exact_count_equals_the_tokenizer_in_all_eight_languages() {
    let Some(tokenizer) = tokenizer() else {
        return;
    };
    let extra = [
        "   leading spaces,\ttabs\t\tand  double  spaces  ",
        "lines\n\n\n  indented\r\n\r\nwindows  \n x",
        "numbers 1234567 and 3.14159, dates 2026-11-30",
        "symbols --> <<< !!! ¿qué? «guillemets» 🙂🙂 — done...",
        "contractions: I'm, you're, it's, we'll, they'd, I've, DON'T",
        "ＦＵＬＬ　ＷＩＤＴＨ　spaces and nbsp\u{a0}\u{a0}word",
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
        "it\u{17F} 'ſ 'Re 'vE 'LL 'x '",
        "$abc #1 @@@x   \u{3000}abc x\r\n\r\ny tab\t\tword !!!\r\n",
        "१२३४ ٣٤٥ Ⅻ ½ numbers1234abc",
        "a\u{301}\u{301} e\u{301}t\u{e9} ก\u{e31}\u{e49}",
    ];
    let mut compared = 0;
    for (name, text) in samples() {
        for piece in pieces(&text).into_iter().chain(extra) {
            let real = real_count(&tokenizer, piece);
            assert_eq!(llama3::count_tokens(piece), real, "{name}: {piece:?}");
            compared += 1;
        }
    }
    assert!(compared > 500, "{compared}");
}

#[test]
fn running_totals_give_exact_counts_between_piece_ends() {
    let Some(tokenizer) = tokenizer() else {
        return;
    };
    for (name, text) in samples() {
        let ends: Vec<(usize, u32)> = std::iter::once((0, 0))
            .chain(llama3::running_count(&text))
            .collect();
        assert_eq!(
            ends.last().map(|e| e.1),
            Some(real_count(&tokenizer, &text))
        );
        for (i, &(a, at_a)) in ends.iter().enumerate().step_by(13) {
            for &(b, at_b) in ends[i + 1..].iter().step_by(29) {
                let real = real_count(&tokenizer, &text[a..b]);
                // The slice's edges may regroup a piece (a run of spaces before a word).
                assert!(
                    real.abs_diff(at_b - at_a) <= 1,
                    "{name} {a}..{b}: {real} vs {}",
                    at_b - at_a
                );
            }
        }
    }
}

#[test]
fn budget_decisions_never_under_count_and_stay_within_three_percent_when_exact() {
    let Some(tokenizer) = tokenizer() else {
        return;
    };
    let mut exact_decisions = 0;
    for (name, text) in samples() {
        for piece in pieces(&text).into_iter().filter(|p| p.len() > 200) {
            let real = real_count(&tokenizer, piece);
            let estimate = estimate_tokens(piece);
            // Windows at the real count, between it and the estimate, and past the estimate.
            for window in [real, (real + estimate) / 2, estimate + 1] {
                let budget = ContextBudget::new(window.max(256)).unwrap();
                let Ok(decided) = budget.check(piece, 0) else {
                    assert!(real > window.max(256), "{name}: refused {real} tokens");
                    continue;
                };
                assert!(decided >= real, "{name}: decided {decided} < real {real}");
                if decided < estimate {
                    exact_decisions += 1;
                    let over = f64::from(decided) / f64::from(real) - 1.0;
                    assert!(over <= MAX_DECISION_OVER, "{name}: {over:.3} over");
                }
            }
            // The estimate alone refuses what only the exact count lets through.
            let tight = ContextBudget::new(real.max(256))
                .unwrap()
                .with_counter(Counter::Estimate);
            if estimate > real.max(256) {
                assert!(tight.check(piece, 0).is_err(), "{name}");
            }
        }
    }
    assert!(exact_decisions > 100, "{exact_decisions}");
}
