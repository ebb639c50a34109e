//! Document text shared by the functions: token-based chunking on natural boundaries
//! and offline identification of the eight languages Llama 3.2 supports.
//! Every size here is in tokens as estimated by `bedrock::estimate_tokens`.

pub mod chunk;
pub mod extract;
pub mod language;

pub use chunk::{Chunk, split};
pub use extract::{ExtractError, Extracted, Format, Limits, detect_format, extract};
pub use language::{Detection, Language, UnsupportedLanguage, detect};
