//! The one error type of the diffusion model code (UNet, motion modules, VAE, schedulers,
//! sampling). Messages name the file, the field or the input, and the limit.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DiffusionError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot parse {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid safetensors file {path}: {message}")]
    Safetensors { path: PathBuf, message: String },
    /// A config.json value the model cannot run with; names the field and the limit.
    #[error("config: `{field}` {message}")]
    Config { field: &'static str, message: String },
    #[error(transparent)]
    Weights(#[from] crate::weights::WeightsError),
    /// Prompt conditioning (tokenizer, text encoder).
    #[error("text encoder: {0}")]
    Text(#[from] crate::clip_text::ClipTextError),
    #[error("device: {0}")]
    Device(String),
    /// A forward or sampling input of the wrong shape, dtype or value; names the input.
    #[error("`{input}` {message}")]
    Input { input: &'static str, message: String },
    /// The per-step callback asked to stop.
    #[error("sampling cancelled after {completed} of {total} steps")]
    Cancelled { completed: usize, total: usize },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl DiffusionError {
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        DiffusionError::Config {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn input(input: &'static str, message: impl Into<String>) -> Self {
        DiffusionError::Input {
            input,
            message: message.into(),
        }
    }
}

/// Reads and parses a JSON file (a diffusers `config.json` or `scheduler_config.json`).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, DiffusionError> {
    let text = std::fs::read_to_string(path).map_err(|source| DiffusionError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| DiffusionError::Json {
        path: path.to_path_buf(),
        source,
    })
}
