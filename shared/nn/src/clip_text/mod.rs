//! The CLIP text encoder (transformers' `CLIPTextModel`) and its tokenizer, for the keyframe
//! stage's prompt conditioning.
//!
//! - [`config`]: [`ClipTextConfig`], the checkpoint's `config.json` (`clip_text_model`);
//! - [`model`]: [`ClipTextModel`]: pre-norm transformer with a causal mask and the padding
//!   mask, last hidden state, pooled output at the EOS token (transformers' rule, legacy
//!   `eos_token_id == 2` included), every layer's output on request (clip skip);
//! - [`tokenizer`]: [`ClipTokenizer`]: CLIP byte-level BPE from `tokenizer.json`, padded and
//!   truncated to 77 with BOS/EOS, and [`ClipTokenizer::count_tokens`] for the prompt
//!   rewriter's 77-token budget;
//! - [`bpe_vocab`]: CLIP's released BPE merges -> that `tokenizer.json` (`make models`).
//!
//! Checkpoints load unchanged in both layouts found in the wild: the published one, with
//! keys under `text_model.` (SD 1.5 `text_encoder/model.safetensors`, openai/clip-*), and the
//! one transformers 5 writes, without the prefix. The `text_model.embeddings.position_ids`
//! buffer older files carry is accepted; anything else extra (a `text_projection`) is an
//! error, as any missing tensor is.

pub mod bpe_vocab;
pub mod config;
pub mod model;
pub mod tokenizer;

use std::path::PathBuf;

pub use config::{ClipActivation, ClipTextConfig};
pub use model::{ClipLayout, ClipTextModel, ClipTextOutput};
pub use tokenizer::{CLIP_MAX_LENGTH, ClipTokenizer, ClipTokens};

use crate::weights::WeightsError;

/// Everything that can go wrong loading or running the CLIP text encoder.
#[derive(Debug, thiserror::Error)]
pub enum ClipTextError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot parse {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid safetensors file {path}: {message}")]
    Safetensors { path: PathBuf, message: String },
    #[error("{path}: `{field}` {message}")]
    Config {
        path: PathBuf,
        field: &'static str,
        message: String,
    },
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("tokenisation failed: {0}")]
    Tokenize(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("{0}")]
    Device(String),
    #[error(transparent)]
    Weights(#[from] WeightsError),
}
