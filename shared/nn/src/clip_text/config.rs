//! `config.json` of a CLIP text encoder (transformers' `CLIPTextConfig`,
//! `model_type = "clip_text_model"`). Missing fields take transformers' defaults; fields the
//! encoder does not use (`projection_dim`, dropouts, initialisers) are ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tch::Tensor;

use super::ClipTextError;

/// `hidden_act` of the MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClipActivation {
    /// `x * sigmoid(1.702 x)`: OpenAI CLIP (SD 1.x).
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// Exact GELU: OpenCLIP ViT-H (SD 2.x).
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluTanh,
}

impl ClipActivation {
    pub fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            ClipActivation::QuickGelu => xs * (xs * 1.702).sigmoid(),
            ClipActivation::Gelu => xs.gelu("none"),
            ClipActivation::GeluTanh => xs.gelu("tanh"),
        }
    }
}

fn d_vocab_size() -> i64 {
    49408
}
fn d_hidden_size() -> i64 {
    512
}
fn d_intermediate_size() -> i64 {
    2048
}
fn d_num_hidden_layers() -> i64 {
    12
}
fn d_num_attention_heads() -> i64 {
    8
}
fn d_max_position_embeddings() -> i64 {
    77
}
fn d_hidden_act() -> ClipActivation {
    ClipActivation::QuickGelu
}
fn d_layer_norm_eps() -> f64 {
    1e-5
}
fn d_pad_token_id() -> i64 {
    1
}
fn d_bos_token_id() -> i64 {
    49406
}
fn d_eos_token_id() -> i64 {
    49407
}

/// transformers' `CLIPTextConfig`, the fields the encoder reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClipTextConfig {
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default = "d_vocab_size")]
    pub vocab_size: i64,
    #[serde(default = "d_hidden_size")]
    pub hidden_size: i64,
    #[serde(default = "d_intermediate_size")]
    pub intermediate_size: i64,
    #[serde(default = "d_num_hidden_layers")]
    pub num_hidden_layers: i64,
    #[serde(default = "d_num_attention_heads")]
    pub num_attention_heads: i64,
    #[serde(default = "d_max_position_embeddings")]
    pub max_position_embeddings: i64,
    #[serde(default = "d_hidden_act")]
    pub hidden_act: ClipActivation,
    #[serde(default = "d_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_pad_token_id")]
    pub pad_token_id: i64,
    #[serde(default = "d_bos_token_id")]
    pub bos_token_id: i64,
    /// 2 in pre-2023 configs (SD 1.5): the pooled output is then taken at the highest id of
    /// each row (transformers' legacy rule); otherwise at the first `eos_token_id`.
    #[serde(default = "d_eos_token_id")]
    pub eos_token_id: i64,
}

impl ClipTextConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ClipTextError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ClipTextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: ClipTextConfig = serde_json::from_str(&text).map_err(|source| ClipTextError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks what the encoder relies on; `path` only names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<(), ClipTextError> {
        let fail = |field, message: String| {
            Err(ClipTextError::Config {
                path: PathBuf::from(path),
                field,
                message,
            })
        };
        match self.model_type.as_deref() {
            None | Some("clip_text_model") => {}
            Some("clip") => {
                return fail(
                    "model_type",
                    "is `clip` (a full CLIPModel): use a text encoder's config \
                     (`clip_text_model`), e.g. a pipeline's text_encoder/config.json"
                        .into(),
                );
            }
            Some(t) => return fail("model_type", format!("must be `clip_text_model`, got `{t}`")),
        }
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
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

    /// transformers' test for the pre-2023 `eos_token_id` (see [`Self::eos_token_id`]).
    pub fn legacy_eos(&self) -> bool {
        self.eos_token_id == 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// runwayml/stable-diffusion-v1-5 text_encoder/config.json (trimmed of unused fields).
    const SD15: &str = r#"{"architectures": ["CLIPTextModel"], "attention_dropout": 0.0,
      "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu",
      "hidden_size": 768, "initializer_factor": 1.0, "initializer_range": 0.02,
      "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
      "model_type": "clip_text_model", "num_attention_heads": 12, "num_hidden_layers": 12,
      "pad_token_id": 1, "projection_dim": 768, "torch_dtype": "float32",
      "transformers_version": "4.22.0.dev0", "vocab_size": 49408}"#;

    #[test]
    fn reads_the_sd15_text_encoder_config() {
        let c: ClipTextConfig = serde_json::from_str(SD15).unwrap();
        c.validate(Path::new("config.json")).unwrap();
        assert_eq!((c.hidden_size, c.head_dim(), c.num_hidden_layers), (768, 64, 12));
        assert_eq!(c.hidden_act, ClipActivation::QuickGelu);
        assert!(c.legacy_eos());
    }

    #[test]
    fn defaults_are_transformers_and_a_full_clip_config_is_refused() {
        let c: ClipTextConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(
            (c.vocab_size, c.eos_token_id, c.max_position_embeddings),
            (49408, 49407, 77)
        );
        assert!(!c.legacy_eos());
        let c: ClipTextConfig = serde_json::from_str(r#"{"model_type": "clip"}"#).unwrap();
        let err = c.validate(Path::new("config.json")).unwrap_err().to_string();
        assert!(err.contains("`model_type`"), "{err}");
    }
}
