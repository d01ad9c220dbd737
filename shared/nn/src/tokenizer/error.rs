//! Errors building a tokenizer from GGUF metadata and rendering chat templates.

use crate::gguf::GgufError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(
        "gguf tokenizer model `{model}` is not supported (supported: `gpt2`, the byte-level BPE of GPT-2, Llama 3, Qwen2, SmolLM)"
    )]
    UnsupportedModel { model: String },
    #[error("gguf `tokenizer.ggml.token_type` has {found} entries, `tokenizer.ggml.tokens` has {expected}")]
    TokenTypeCount { expected: usize, found: usize },
    #[error("gguf `tokenizer.ggml.merges` entry {index} `{merge}` is not two tokens separated by one space")]
    BadMerge { index: usize, merge: String },
    #[error("gguf `{key}` is token id {id}, but the vocabulary has {vocab_size} tokens")]
    TokenIdOutOfRange { key: String, id: u64, vocab_size: usize },
    #[error("cannot build the tokenizer: {0}")]
    Build(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid json: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} has no `chat_template`")]
    NoChatTemplate { path: PathBuf },
    #[error("chat template: {0}")]
    Template(String),
}
