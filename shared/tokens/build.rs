//! Embeds the Llama 3 vocabulary for the exact counter (`src/llama3.rs`).
//!
//! Reads the Llama 3.2 `tokenizer.json` that `scripts/setup.sh` fetches into
//! `.cache/models/` (or the file `LLAMA_TOKENIZER_JSON` names), checks that it is the byte-level
//! BPE the counter implements, and writes its 128,000 tokens as raw bytes in rank order,
//! each behind a one-byte length, to `$OUT_DIR/llama3-vocab.bin`.

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
        let bytes: Vec<u8> = text.chars().map(|c| decode[&c]).collect();
        assert!(bytes.len() < 256, "token {id} is {} bytes", bytes.len());
        tokens[id] = Some(bytes);
    }
    let mut out = Vec::with_capacity(1 << 20);
    for (id, token) in tokens.into_iter().enumerate() {
        let token = token.unwrap_or_else(|| panic!("token id {id} missing"));
        out.push(token.len() as u8);
        out.extend_from_slice(&token);
    }
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("llama3-vocab.bin");
    std::fs::write(&dest, out).expect("write the vocabulary");
}

/// GPT-2's byte-level alphabet: the char each byte is written as in `tokenizer.json`.
fn byte_decoder() -> std::collections::HashMap<char, u8> {
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
