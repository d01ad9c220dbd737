//! The one error type of the Llama-family model code.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LlamaError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot parse {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A config.json value the model cannot run with; names the field and the limit.
    #[error("config.json: `{field}` {message}")]
    Config { field: &'static str, message: String },
    #[error("no weights in {dir}: expected model.safetensors or model.safetensors.index.json")]
    NoWeights { dir: PathBuf },
    #[error(transparent)]
    Weights(#[from] crate::weights::WeightsError),
    #[error("device: {0}")]
    Device(String),
    /// A forward input of the wrong shape, dtype or device; names the input.
    #[error("`{input}` {message}")]
    Input { input: &'static str, message: String },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl LlamaError {
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        LlamaError::Config {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn input(input: &'static str, message: impl Into<String>) -> Self {
        LlamaError::Input {
            input,
            message: message.into(),
        }
    }
}
