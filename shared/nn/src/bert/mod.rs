//! BERT encoder and the sentence-transformers sentence encoder built on it (the retrieval
//! stage's re-ranker; default weights: all-MiniLM-L6-v2).
//!
//! - [`config`]: [`BertConfig`], the checkpoint's own `config.json`;
//! - [`model`]: [`BertModel`], transformers' `BertModel` module tree (VarStore paths equal
//!   the checkpoint names: `embeddings.word_embeddings`, `encoder.layer.N.attention.self.query`,
//!   ...), exact GELU, padding attention mask;
//! - [`checkpoint`]: what a checkpoint holds besides the encoder (a `bert.` prefix, a pooler,
//!   the `embeddings.position_ids` buffer), so that exactly those keys are declared and
//!   loading stays strict;
//! - [`pooling`]: [`Pooling`], sentence-transformers' pooling (`1_Pooling/config.json`: mean,
//!   cls, max, mean_sqrt_len_tokens) and the L2 normalisation;
//! - [`sentence`]: [`SentenceEncoder`], the sentence-transformers directory layout
//!   (`modules.json`, `sentence_bert_config.json`, `tokenizer.json`): tokenise a batch
//!   (truncation, padding), encode, pool, L2-normalise.
//!
//! ```no_run
//! use storyreel_nn::bert::{SentenceEncoder, SentenceEncoderOptions};
//! let encoder = SentenceEncoder::load("models/all-minilm-l6-v2", &SentenceEncoderOptions::default())?;
//! let embeddings = encoder.encode(&["a red fox", "a blue whale"])?; // (2, 384), f32, unit norm
//! # Ok::<(), storyreel_nn::bert::BertError>(())
//! ```

pub mod checkpoint;
pub mod config;
pub mod model;
pub mod pooling;
pub mod sentence;

use std::path::PathBuf;

pub use checkpoint::BertLayout;
pub use config::{BertConfig, HiddenAct};
pub use model::{BertModel, BertModelOutput};
pub use pooling::{Pooling, PoolingMode, l2_normalize};
pub use sentence::{SentenceEncoder, SentenceEncoderOptions, TokenBatch};

use crate::weights::WeightsError;

/// Everything that can go wrong loading or running a BERT model. Messages name the file,
/// the field or the limit.
#[derive(Debug, thiserror::Error)]
pub enum BertError {
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
    #[error("{dir} is not a sentence-transformers model directory: {message}")]
    Layout { dir: PathBuf, message: String },
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
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
