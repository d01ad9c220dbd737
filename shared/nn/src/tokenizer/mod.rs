//! Tokenizers for storyreel's language models.
//!
//! - [`GgufVocab`] and [`build_tokenizer`]: the byte-level BPE `tokenizers::Tokenizer` a GGUF
//!   file describes, equal to the one transformers builds from the same file (see
//!   `from_gguf.rs` for the exact pipeline);
//! - [`tokenizer_config_json`]: the `tokenizer_config.json` written beside it;
//! - [`ChatTemplate`]: chat templates rendered with minijinja as transformers renders them.

mod byte_alphabet;
mod chat_template;
mod error;
mod from_gguf;
mod gguf_vocab;
mod pre_tokenizer_splits;
mod template_methods;
mod tokenizer_config;

pub use chat_template::{ChatMessage, ChatTemplate, SpecialTokens};
pub use error::TokenizerError;
pub use from_gguf::build_tokenizer;
pub use gguf_vocab::GgufVocab;
pub use tokenizer_config::tokenizer_config_json;
