//! The translation allowances of `translate::expansion` against the real Llama 3.2
//! tokenizer, on the same text in the eight languages
//! (`shared/tokens/tests/data/languages`): every translation fits its allowance, whole
//! texts with a margin.
//!
//! `scripts/setup.sh` fetches the tokenizer into the git-ignored `.cache/models/`; without
//! it these tests skip, saying so on stderr. `LLAMA_TOKENIZER_JSON` names another file,
//! which must then exist.

use std::path::PathBuf;

use bedrock::estimate_tokens;
use text::Language;
use tokenizers::Tokenizer;
use translate::expansion::Expansion;

/// A whole translation takes at most this fraction of its allowance, inverted: the
/// allowance is at least 1.4 times the worst measured ratio.
const WHOLE_TEXT_MARGIN: f64 = 1.4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Llama 3.2 tokenizer, or `None` (with a note on stderr) when the default file is
/// absent.
fn tokenizer() -> Option<Tokenizer> {
    let (path, explicit) = match std::env::var_os("LLAMA_TOKENIZER_JSON") {
        Some(path) => (PathBuf::from(path), true),
        None => (root().join(".cache/models/llama3.2-tokenizer.json"), false),
    };
    if !explicit && !path.exists() {
        eprintln!(
            "SKIPPED: no Llama 3.2 tokenizer at {}; run scripts/setup.sh (or set \
             LLAMA_TOKENIZER_JSON) to compare with it",
            path.display()
        );
        return None;
    }
    Some(
        Tokenizer::from_file(&path)
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display())),
    )
}

/// The sample text in `language`.
fn sample(language: Language) -> String {
    let path = root()
        .join("shared/tokens/tests/data/languages")
        .join(format!("{}.txt", language.code()));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_translation_in_the_corpus_fits_its_allowance() {
    let Some(tokenizer) = tokenizer() else {
        return;
    };
    let real = |text: &str| tokenizer.encode(text, false).expect("tokenize").len() as u32;
    for source in Language::ALL {
        let source_text = sample(source);
        for target in Language::ALL.into_iter().filter(|&t| t != source) {
            let target_text = sample(target);
            let expansion = Expansion::into(target);
            let (translated, estimate) = (real(&target_text), estimate_tokens(&source_text));
            let allowance = expansion.of(estimate);
            let ratio = f64::from(translated) / f64::from(estimate);
            eprintln!(
                "{}->{}: {translated} real tokens for {estimate} estimated ({ratio:.3}), \
                 allowance {allowance}",
                source.code(),
                target.code()
            );
            assert!(
                f64::from(translated) * WHOLE_TEXT_MARGIN <= f64::from(allowance),
                "{}->{}: ratio {ratio:.3} leaves less than the margin under {}%",
                source.code(),
                target.code(),
                expansion.percent()
            );
            // The samples are the same paragraphs in the same order.
            let pairs = source_text.split("\n\n").zip(target_text.split("\n\n"));
            for (from, to) in pairs.filter(|(from, _)| !from.trim().is_empty()) {
                let (translated, allowance) = (real(to), expansion.of(estimate_tokens(from)));
                assert!(
                    translated <= allowance,
                    "{}->{}: {translated} tokens over the allowance {allowance} for {from:?}",
                    source.code(),
                    target.code()
                );
            }
        }
    }
}
