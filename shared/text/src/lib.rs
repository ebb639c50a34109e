//! Document text shared by the functions: extraction from uploads (text, Markdown, HTML,
//! PDF, DOCX), token-based chunking on natural boundaries, and offline identification of the
//! eight languages Llama 3.2 supports (chunk sizes are `tokens::estimate_tokens` tokens;
//! no AWS SDK in here).

pub mod chunk;
pub mod extract;
pub mod language;

pub use chunk::{Chunk, Sizing, split, split_sized};
pub use extract::{
    ExtractError, Extracted, Format, Limits, decode_plain_text, detect_format, extract,
};
pub use language::{
    Detection, Language, MIN_CONFIDENCE, UnsupportedLanguage, detect, detect_confident,
};
