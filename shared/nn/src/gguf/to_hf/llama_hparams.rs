//! A Llama GGUF's hyperparameters (`llama.*` metadata, llama.cpp's key names) and the HF
//! `config.json` / `generation_config.json` they become (transformers' `GGUF_CONFIG_MAPPING`
//! for `llama`).

use super::{ConvertError, OutputDtype};
use crate::gguf::GgufFile;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct LlamaHparams {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f32,
    /// `(type, factor)` from `llama.rope.scaling.*`, when the file scales RoPE.
    pub rope_scaling: Option<(String, f32)>,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u64>,
    pub eos_token_id: Option<u64>,
    pub pad_token_id: Option<u64>,
}

/// RoPE base when `llama.rope.freq_base` is absent (llama.cpp's default).
const DEFAULT_ROPE_THETA: f32 = 10_000.0;

impl LlamaHparams {
    pub fn from_gguf(file: &GgufFile) -> Result<Self, ConvertError> {
        let architecture = file.require_str("general.architecture")?;
        if architecture != "llama" {
            return Err(ConvertError::UnsupportedArchitecture {
                architecture: architecture.to_string(),
            });
        }
        let size = |key: &str| -> Result<usize, ConvertError> {
            let value = file.require_u64(key)?;
            usize::try_from(value)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| bad(key, value, "must be a positive size"))
        };
        let hidden_size = size("llama.embedding_length")?;
        let num_attention_heads = size("llama.attention.head_count")?;
        let num_key_value_heads = match file.u64("llama.attention.head_count_kv")? {
            None => num_attention_heads,
            Some(_) => size("llama.attention.head_count_kv")?,
        };
        if !num_attention_heads.is_multiple_of(num_key_value_heads) {
            return Err(bad(
                "llama.attention.head_count_kv",
                num_key_value_heads,
                &format!("must divide the head count {num_attention_heads}"),
            ));
        }
        let head_dim = match file.u64("llama.rope.dimension_count")? {
            Some(_) => size("llama.rope.dimension_count")?,
            None if hidden_size.is_multiple_of(num_attention_heads) => hidden_size / num_attention_heads,
            None => {
                return Err(bad(
                    "llama.attention.head_count",
                    num_attention_heads,
                    &format!("must divide the embedding length {hidden_size}"),
                ));
            }
        };
        if !head_dim.is_multiple_of(2) {
            return Err(bad(
                "llama.rope.dimension_count",
                head_dim,
                "must be even for RoPE",
            ));
        }
        let vocab_size = match file.u64("llama.vocab_size")? {
            Some(_) => size("llama.vocab_size")?,
            None => file.require_strings("tokenizer.ggml.tokens")?.len(),
        };
        let rms_norm_eps = file
            .f32("llama.attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| crate::gguf::GgufError::MissingKey {
                key: "llama.attention.layer_norm_rms_epsilon".to_string(),
            })?;
        let rope_scaling = match file.str("llama.rope.scaling.type")? {
            None | Some("none") => None,
            Some("linear") => {
                let factor = file.f32("llama.rope.scaling.factor")?.unwrap_or(1.0);
                Some(("linear".to_string(), factor))
            }
            Some(other) => {
                return Err(bad(
                    "llama.rope.scaling.type",
                    other,
                    "only `linear` RoPE scaling is converted",
                ));
            }
        };
        Ok(Self {
            vocab_size,
            hidden_size,
            intermediate_size: size("llama.feed_forward_length")?,
            num_hidden_layers: size("llama.block_count")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps,
            rope_theta: file.f32("llama.rope.freq_base")?.unwrap_or(DEFAULT_ROPE_THETA),
            rope_scaling,
            max_position_embeddings: size("llama.context_length")?,
            bos_token_id: file.u64("tokenizer.ggml.bos_token_id")?,
            eos_token_id: file.u64("tokenizer.ggml.eos_token_id")?,
            pad_token_id: file.u64("tokenizer.ggml.padding_token_id")?,
        })
    }

    /// HF `config.json` for `LlamaForCausalLM`.
    pub fn config_json(&self, tie_word_embeddings: bool, dtype: OutputDtype) -> Value {
        let rope_scaling = match &self.rope_scaling {
            None => Value::Null,
            Some((kind, factor)) => json!({ "rope_type": kind, "type": kind, "factor": shortest(*factor) }),
        };
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "attention_bias": false,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "hidden_act": "silu",
            "initializer_range": 0.02,
            "pretraining_tp": 1,
            "use_cache": true,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": shortest(self.rms_norm_eps),
            "rope_theta": shortest(self.rope_theta),
            "rope_scaling": rope_scaling,
            "max_position_embeddings": self.max_position_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "tie_word_embeddings": tie_word_embeddings,
            "torch_dtype": dtype.torch_name(),
        })
    }

    /// HF `generation_config.json`: the special token ids (what transformers derives from
    /// the GGUF).
    pub fn generation_config_json(&self) -> Value {
        json!({
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
        })
    }
}

fn bad(key: &str, value: impl ToString, reason: &str) -> ConvertError {
    ConvertError::BadHyperparameter {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A GGUF f32 as the shortest decimal that reads back as the same f32 (`1e-5`, not
/// `9.999999747378752e-06`); in f32 arithmetic both are the same number.
fn shortest(value: f32) -> Value {
    format!("{value}")
        .parse::<f64>()
        .map(Value::from)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_their_shortest_f32_decimal() {
        assert_eq!(shortest(1e-5).as_f64(), Some(1e-5));
        assert_eq!(shortest(100000.0).as_f64(), Some(100000.0));
        assert_eq!(
            f64::from(1e-5f32),
            9.999999747378752e-6,
            "the widened f32 is what it avoids"
        );
    }
}
