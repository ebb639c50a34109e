//! Shared by the tests that compare with the real Llama 3.2 tokenizer (here and in
//! `shared/bedrock/tests/prompt_vs_tokenizer.rs`, which includes this file by path).

use std::path::PathBuf;

use tokenizers::Tokenizer;

/// The Llama 3.2 tokenizer, or `None` (with a note on stderr) when the default file is
/// absent. A file named by `LLAMA_TOKENIZER_JSON`, or one that exists, must load.
pub fn tokenizer() -> Option<Tokenizer> {
    let (path, explicit) = match std::env::var_os("LLAMA_TOKENIZER_JSON") {
        Some(path) => (PathBuf::from(path), true),
        None => (
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../.cache/models/llama3.2-tokenizer.json"),
            false,
        ),
    };
    if !explicit && !path.exists() {
        eprintln!(
            "SKIPPED: no Llama 3.2 tokenizer at {}; run scripts/setup.sh (or set \
             LLAMA_TOKENIZER_JSON) to compare with it",
            path.display()
        );
        return None;
    }
    Some(Tokenizer::from_file(&path).unwrap_or_else(|e| {
        panic!(
            "cannot load {}: {e}; run scripts/setup.sh first",
            path.display()
        )
    }))
}

/// The language samples (name, text), sorted by name.
pub fn samples() -> Vec<(String, String)> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tokens/tests/data/languages"
    ));
    let mut samples: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("sample dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).expect("sample text"))
        })
        .collect();
    samples.sort();
    samples
}
