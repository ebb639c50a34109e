//! Embeds the Llama 3 vocabulary for the exact counter (`src/llama3.rs`).
//!
//! Reads the Llama 3.2 `tokenizer.json` that `scripts/setup.sh` fetches into
//! `.cache/models/` (or the file `LLAMA_TOKENIZER_JSON` names), checks that it is the byte-level
//! BPE the counter implements, and writes its 128,000 tokens in rank order as merge pairs
//! ([`pairs`]) to `$OUT_DIR/llama3-vocab.bin`.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

/// The pre-split pattern of Llama 3's tokenizer, which `src/llama3.rs` implements.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Tokens in the vocabulary, special tokens excluded.
const VOCABULARY: usize = 128_000;

fn main() {
    println!("cargo:rerun-if-env-changed=LLAMA_TOKENIZER_JSON");
    // The manifest directory of this build (read at run time: a build script compiled for
    // a copy of the workspace elsewhere may be reused).
    let path = std::env::var_os("LLAMA_TOKENIZER_JSON").map_or_else(
        || {
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
                .join("../../.cache/models/llama3.2-tokenizer.json")
        },
        PathBuf::from,
    );
    println!("cargo:rerun-if-changed={}", path.display());
    let json = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the Llama 3.2 tokenizer at {}: {e}; run scripts/setup.sh \
             (or set LLAMA_TOKENIZER_JSON)",
            path.display()
        )
    });
    let tokenizer: Value = serde_json::from_slice(&json).expect("tokenizer.json is JSON");
    let pattern = tokenizer.pointer("/pre_tokenizer/pretokenizers/0/pattern/Regex");
    assert_eq!(
        pattern.and_then(Value::as_str),
        Some(LLAMA3_PATTERN),
        "{} does not pre-split as Llama 3 does",
        path.display()
    );
    let vocab = tokenizer
        .pointer("/model/vocab")
        .and_then(Value::as_object)
        .expect("tokenizer.json has model.vocab");
    let decode = byte_decoder();
    let mut tokens = vec![None; VOCABULARY];
    for (text, id) in vocab {
        let id = id.as_u64().expect("token ids are integers") as usize;
        tokens[id] = Some(text.chars().map(|c| decode[&c]).collect::<Vec<u8>>());
    }
    let tokens: Vec<Vec<u8>> = tokens
        .into_iter()
        .enumerate()
        .map(|(id, token)| token.unwrap_or_else(|| panic!("token id {id} missing")))
        .collect();
    std::fs::write(out_path(), pairs(&tokens)).expect("write the vocabulary");
}

/// The vocabulary as merge pairs: each token of two or more bytes is the concatenation of
/// two tokens of lower rank (the pair with the lowest higher rank), written as their
/// ranks; a one-byte token is its byte with [`BYTE`] as its right rank. Ranks are 24-bit,
/// stored in six planes of one byte per token (low, middle, high byte of the left ranks,
/// then of the right ones), which compress better than the token bytes themselves.
fn pairs(tokens: &[Vec<u8>]) -> Vec<u8> {
    let ranks: HashMap<&[u8], u32> = tokens
        .iter()
        .enumerate()
        .map(|(rank, token)| (token.as_slice(), rank as u32))
        .collect();
    let n = tokens.len();
    let mut planes = vec![0u8; 6 * n];
    for (rank, token) in tokens.iter().enumerate() {
        let (left, right) = if let [byte] = token.as_slice() {
            (u32::from(*byte), BYTE)
        } else {
            (1..token.len())
                .filter_map(|at| {
                    let left = *ranks.get(&token[..at])?;
                    let right = *ranks.get(&token[at..])?;
                    ((left as usize) < rank && (right as usize) < rank).then_some((left, right))
                })
                .min_by_key(|&(left, right)| left.max(right))
                .unwrap_or_else(|| panic!("token {rank} is no pair of lower-ranked tokens"))
        };
        for (plane, value) in [left, right].into_iter().enumerate() {
            for byte in 0..3 {
                planes[(plane * 3 + byte) * n + rank] = (value >> (8 * byte)) as u8;
            }
        }
    }
    planes
}

/// The right rank that marks a one-byte token.
const BYTE: u32 = 0xFF_FFFF;

fn out_path() -> PathBuf {
    PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("llama3-vocab.bin")
}

/// GPT-2's byte-level alphabet: the char each byte is written as in `tokenizer.json`.
fn byte_decoder() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut shifted = 0u32;
    (0..=255u8)
        .map(|b| {
            let c = if printable(b) {
                char::from(b)
            } else {
                shifted += 1;
                char::from_u32(255 + shifted).expect("a valid char")
            };
            (c, b)
        })
        .collect()
}
