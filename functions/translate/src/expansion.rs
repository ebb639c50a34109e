//! How many tokens a translation may take per estimated token of its source, by target
//! language. Chunk sizes and each call's `max_gen_len` follow from it, and `max_gen_len`
//! is what Bedrock reserves from the tokens-per-minute quota when a call starts.
//!
//! Measured with the real Llama 3.2 tokenizer on the eight-language corpus
//! (`shared/tokens/tests/data/languages`, the same text in each language; checked by
//! `tests/expansion_vs_tokenizer.rs`), as real tokens of the translation per estimated
//! token of its source (chunks are sized by the estimate, which over-counts sources by
//! 14-64%):
//!
//! | target | worst whole text (from) | worst paragraph | worst real/real (from) |
//! |---|---|---|---|
//! | de, es, fr, it, pt, en | 0.94 (es→it) | 1.31 (es→de) | 1.36 (en→it) |
//! | th | 0.96 (es→th) | 1.23 | 1.38 (en→th) |
//! | hi | 1.25 (es→hi) | 1.52 (de→hi) | 1.79 (en→hi) |
//!
//! Latin-script targets get [`Expansion::LATIN`] (1.35): 1.43 times the worst whole text,
//! above the worst single paragraph, and about the worst real-to-real ratio, so it would
//! hold even for an estimator that counted sources exactly. Hindi and Thai keep 2.0, the
//! allowance every target had before. The source's script needs no factor of its own:
//! the estimate already weights Devanagari and Thai sources by script, so from those
//! sources the ratio only falls (at most 0.79 into a Latin-script target).

use text::Language;

/// Tokens of translation allowed per estimated source token, in hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion(u32);

impl Expansion {
    /// Into a Latin-script language: 1.35.
    pub const LATIN: Self = Self(135);
    /// Into Hindi or Thai: 2.0.
    pub const WIDE: Self = Self(200);

    /// The allowance for translations into `target`.
    pub fn into(target: Language) -> Self {
        match target {
            Language::Hindi | Language::Thai => Self::WIDE,
            Language::English
            | Language::German
            | Language::French
            | Language::Italian
            | Language::Portuguese
            | Language::Spanish => Self::LATIN,
        }
    }

    /// The factor in hundredths (135 is 1.35).
    pub fn percent(self) -> u32 {
        self.0
    }

    /// The translation allowance for `tokens` estimated source tokens, rounded up.
    pub fn of(self, tokens: u32) -> u32 {
        let scaled = (u64::from(tokens) * u64::from(self.0)).div_ceil(100);
        u32::try_from(scaled).unwrap_or(u32::MAX)
    }

    /// The most estimated source tokens whose allowance fits in `tokens`.
    pub fn source_for(self, tokens: u32) -> u32 {
        let source = u64::from(tokens) * 100 / u64::from(self.0);
        u32::try_from(source).unwrap_or(u32::MAX)
    }

    /// The most estimated source tokens that fit in `room` together with their
    /// allowance.
    pub fn source_with_translation(self, room: u32) -> u32 {
        let source = u64::from(room) * 100 / (100 + u64::from(self.0));
        u32::try_from(source).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_script_targets_take_a_third_less_than_hindi_and_thai() {
        for target in Language::ALL {
            let expected = match target {
                Language::Hindi | Language::Thai => 200,
                _ => 135,
            };
            assert_eq!(Expansion::into(target).percent(), expected, "{target:?}");
        }
    }

    #[test]
    fn allowance_and_source_round_the_safe_way() {
        let latin = Expansion::LATIN;
        assert_eq!(latin.source_for(2048), 1517);
        assert!(latin.of(1517) <= 2048 && latin.of(1518) > 2048);
        assert_eq!(latin.of(1), 2);
        assert_eq!(latin.of(0), 0);
        assert_eq!(Expansion::WIDE.source_for(2048), 1024);
        assert_eq!(Expansion::WIDE.of(1024), 2048);
        let source = latin.source_with_translation(1000);
        assert!(source + latin.of(source) <= 1000, "{source}");
        assert!(source + 1 + latin.of(source + 1) > 1000, "{source}");
        assert_eq!(Expansion::WIDE.of(u32::MAX), u32::MAX);
    }
}
