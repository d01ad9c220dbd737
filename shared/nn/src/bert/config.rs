//! `config.json` of a BERT checkpoint (transformers' `BertConfig`). Fields the encoder does
//! not use (dropouts, `architectures`, `transformers_version`, ...) are ignored; fields it
//! cannot honour (another `position_embedding_type`, an unknown `hidden_act`) are errors.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tch::Tensor;

use super::BertError;

/// The activation of the intermediate layer (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HiddenAct {
    /// Exact, erf-based GELU (transformers' `gelu`).
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
}

impl HiddenAct {
    pub fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            HiddenAct::Gelu => xs.gelu("none"),
            HiddenAct::GeluTanh => xs.gelu("tanh"),
            HiddenAct::Relu => xs.relu(),
        }
    }
}

fn default_hidden_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_type_vocab_size() -> i64 {
    2
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}

/// transformers' `BertConfig`, the fields the encoder reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub intermediate_size: i64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: HiddenAct,
    pub max_position_embeddings: i64,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: i64,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: i64,
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

impl BertConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BertError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| BertError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: BertConfig = serde_json::from_str(&text).map_err(|source| BertError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks what the encoder relies on; `path` only names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<(), BertError> {
        let fail = |field, message: String| {
            Err(BertError::Config {
                path: PathBuf::from(path),
                field,
                message,
            })
        };
        if let Some(t) = self.model_type.as_deref()
            && t != "bert"
        {
            return fail("model_type", format!("must be `bert`, got `{t}`"));
        }
        if self.position_embedding_type != "absolute" {
            return fail(
                "position_embedding_type",
                format!(
                    "must be `absolute` (the only kind supported), got `{}`",
                    self.position_embedding_type
                ),
            );
        }
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value < 1 {
                return fail(field, format!("must be >= 1, got {value}"));
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return fail(
                "hidden_size",
                format!(
                    "({}) must be a multiple of `num_attention_heads` ({})",
                    self.hidden_size, self.num_attention_heads
                ),
            );
        }
        Ok(())
    }

    pub fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{
      "_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
      "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02,
      "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
      "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
      "position_embedding_type": "absolute", "transformers_version": "4.8.2", "type_vocab_size": 2,
      "use_cache": true, "vocab_size": 30522 }"#;

    #[test]
    fn reads_the_minilm_config() {
        let c: BertConfig = serde_json::from_str(MINILM).unwrap();
        c.validate(Path::new("config.json")).unwrap();
        assert_eq!((c.hidden_size, c.head_dim(), c.num_hidden_layers), (384, 32, 6));
        assert_eq!(c.hidden_act, HiddenAct::Gelu);
    }

    #[test]
    fn names_the_field_it_cannot_honour() {
        let text = MINILM.replace("\"absolute\"", "\"relative_key\"");
        let c: BertConfig = serde_json::from_str(&text).unwrap();
        let err = c.validate(Path::new("config.json")).unwrap_err().to_string();
        assert!(err.contains("`position_embedding_type`"), "{err}");
        let text = MINILM.replace("\"num_attention_heads\": 12", "\"num_attention_heads\": 7");
        let c: BertConfig = serde_json::from_str(&text).unwrap();
        let err = c.validate(Path::new("config.json")).unwrap_err().to_string();
        assert!(err.contains("`hidden_size`"), "{err}");
    }
}
