//! Errors converting a GGUF checkpoint to an HF directory.

use crate::{gguf::GgufError, tokenizer::TokenizerError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("gguf architecture `{architecture}` is not supported (supported: llama)")]
    UnsupportedArchitecture { architecture: String },
    #[error("gguf metadata `{key}` = {value} is invalid: {reason}")]
    BadHyperparameter {
        key: String,
        value: String,
        reason: String,
    },
    #[error(
        "gguf tensors do not match a llama checkpoint: {missing_count} missing [{missing}], {unexpected_count} without an hf counterpart [{unexpected}]"
    )]
    TensorMismatch {
        missing_count: usize,
        missing: String,
        unexpected_count: usize,
        unexpected: String,
    },
    #[error("gguf tensor `{name}` has shape {found:?}, the config implies {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{name}` produced {found} values, its shape holds {expected}")]
    ValueCount {
        name: String,
        expected: usize,
        found: usize,
    },
    #[error("output tensor `{name}` is planned twice")]
    DuplicateOutput { name: String },
    #[error("cannot encode {what} as json: {source}")]
    Json { what: String, source: serde_json::Error },
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}
