//! The checkpoint's own `config.json` (transformers `LlamaConfig` / `Qwen2Config`), parsed and
//! validated into what the model needs.
//!
//! Both RoPE spellings are read: transformers 5 writes `rope_parameters` (with `rope_theta`
//! and `rope_type` inside), older checkpoints `rope_theta` + `rope_scaling` (whose type key is
//! `rope_type`, or `type` in the oldest files).

use super::LlamaError;
use serde::Deserialize;
use std::path::Path;

/// The architectures this module runs. SmolLM checkpoints are `llama`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    Llama,
    /// Llama with biases on the q/k/v projections (none on o_proj).
    Qwen2,
}

/// How RoPE frequencies are scaled (transformers `ROPE_INIT_FUNCTIONS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    Default,
    /// Positions divided by `factor`.
    Linear {
        factor: f64,
    },
    /// NTK-aware: the base grows once a sequence runs past `max_position_embeddings`,
    /// computed per forward call from the largest position in the batch, as transformers does
    /// (so rows of a batch are not independent, and cached keys keep the base they were
    /// rotated with).
    Dynamic {
        factor: f64,
    },
    /// Llama 3.1 frequency-dependent smoothing.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
}

/// A validated Llama-family config.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub model_type: ModelType,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Bias on q_proj, k_proj and v_proj.
    pub qkv_bias: bool,
    /// Bias on o_proj.
    pub o_bias: bool,
    /// Bias on gate_proj, up_proj and down_proj.
    pub mlp_bias: bool,
    pub bos_token_id: Option<u32>,
    /// One or several end-of-sequence ids (`eos_token_id` may be a list).
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

#[derive(Debug, Default, Deserialize)]
struct RawRope {
    rope_type: Option<String>,
    #[serde(rename = "type")]
    legacy_type: Option<String>,
    rope_theta: Option<f64>,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<usize>,
    partial_rotary_factor: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_scaling: Option<RawRope>,
    rope_parameters: Option<RawRope>,
    partial_rotary_factor: Option<f64>,
    max_position_embeddings: usize,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    use_sliding_window: Option<bool>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<OneOrMany>,
    pad_token_id: Option<u32>,
}

impl LlamaConfig {
    /// Reads and validates `path` (a checkpoint's config.json).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, LlamaError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LlamaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let raw: RawConfig = serde_json::from_str(&text).map_err(|source| LlamaError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_raw(raw)
    }

    /// Parses and validates config.json text.
    pub fn from_json_str(text: &str) -> Result<Self, LlamaError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|source| LlamaError::Json {
            path: "config.json".into(),
            source,
        })?;
        Self::from_raw(raw)
    }

    /// The longest sequence (prompt + generated tokens) the model may see: the checkpoint's
    /// `max_position_embeddings`, times `factor` for dynamic RoPE, which exists to stretch it.
    pub fn max_context(&self) -> usize {
        match self.rope_scaling {
            RopeScaling::Dynamic { factor } => (self.max_position_embeddings as f64 * factor) as usize,
            _ => self.max_position_embeddings,
        }
    }

    /// Query heads per key/value head (1 without GQA).
    pub fn num_key_value_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    fn from_raw(raw: RawConfig) -> Result<Self, LlamaError> {
        let model_type = match raw.model_type.as_deref() {
            Some("llama") => ModelType::Llama,
            Some("qwen2") => ModelType::Qwen2,
            Some(other) => {
                return Err(LlamaError::config(
                    "model_type",
                    format!("must be `llama` or `qwen2`, got `{other}`"),
                ));
            }
            None => return Err(LlamaError::config("model_type", "is missing")),
        };
        positive("vocab_size", raw.vocab_size)?;
        positive("hidden_size", raw.hidden_size)?;
        positive("intermediate_size", raw.intermediate_size)?;
        positive("num_hidden_layers", raw.num_hidden_layers)?;
        positive("num_attention_heads", raw.num_attention_heads)?;
        positive("max_position_embeddings", raw.max_position_embeddings)?;
        let num_key_value_heads = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
        positive("num_key_value_heads", num_key_value_heads)?;
        if !raw.num_attention_heads.is_multiple_of(num_key_value_heads) {
            return Err(LlamaError::config(
                "num_key_value_heads",
                format!(
                    "must divide num_attention_heads ({}), got {num_key_value_heads}",
                    raw.num_attention_heads
                ),
            ));
        }
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None if raw.hidden_size.is_multiple_of(raw.num_attention_heads) => {
                raw.hidden_size / raw.num_attention_heads
            }
            None => {
                return Err(LlamaError::config(
                    "head_dim",
                    format!(
                        "is missing and hidden_size ({}) is not a multiple of num_attention_heads ({})",
                        raw.hidden_size, raw.num_attention_heads
                    ),
                ));
            }
        };
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(LlamaError::config(
                "head_dim",
                format!("must be even and > 0 for RoPE, got {head_dim}"),
            ));
        }
        if !(raw.rms_norm_eps > 0.0 && raw.rms_norm_eps.is_finite()) {
            return Err(LlamaError::config(
                "rms_norm_eps",
                format!("must be > 0, got {}", raw.rms_norm_eps),
            ));
        }
        match raw.hidden_act.as_deref() {
            None | Some("silu") | Some("swish") => {}
            Some(other) => {
                return Err(LlamaError::config(
                    "hidden_act",
                    format!("must be `silu`, got `{other}`"),
                ));
            }
        }
        if raw.use_sliding_window == Some(true) {
            return Err(LlamaError::config(
                "use_sliding_window",
                "sliding-window attention is not supported; it must be false",
            ));
        }

        // transformers 5 writes `rope_parameters`; older files `rope_theta` + `rope_scaling`.
        let rope = raw.rope_parameters.or(raw.rope_scaling).unwrap_or_default();
        let rope_theta = rope.rope_theta.or(raw.rope_theta).unwrap_or(10_000.0);
        if !(rope_theta > 0.0 && rope_theta.is_finite()) {
            return Err(LlamaError::config(
                "rope_theta",
                format!("must be > 0, got {rope_theta}"),
            ));
        }
        let partial = rope
            .partial_rotary_factor
            .or(raw.partial_rotary_factor)
            .unwrap_or(1.0);
        if partial != 1.0 {
            return Err(LlamaError::config(
                "partial_rotary_factor",
                format!("only 1.0 is supported, got {partial}"),
            ));
        }
        let rope_scaling = rope_scaling(&rope)?;

        let (qkv_bias, o_bias, mlp_bias) = match model_type {
            ModelType::Llama => {
                let attention_bias = raw.attention_bias.unwrap_or(false);
                (attention_bias, attention_bias, raw.mlp_bias.unwrap_or(false))
            }
            ModelType::Qwen2 => (true, false, false),
        };
        let eos_token_ids = match raw.eos_token_id {
            None => vec![],
            Some(OneOrMany::One(id)) => vec![id],
            Some(OneOrMany::Many(ids)) => ids,
        };

        Ok(LlamaConfig {
            model_type,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings: raw.max_position_embeddings,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            qkv_bias,
            o_bias,
            mlp_bias,
            bos_token_id: raw.bos_token_id,
            eos_token_ids,
            pad_token_id: raw.pad_token_id,
        })
    }
}

fn positive(field: &'static str, value: usize) -> Result<(), LlamaError> {
    if value == 0 {
        return Err(LlamaError::config(field, "must be > 0, got 0"));
    }
    Ok(())
}

fn rope_scaling(rope: &RawRope) -> Result<RopeScaling, LlamaError> {
    let kind = rope
        .rope_type
        .as_deref()
        .or(rope.legacy_type.as_deref())
        .unwrap_or("default");
    let factor = || -> Result<f64, LlamaError> {
        match rope.factor {
            Some(f) if f > 0.0 && f.is_finite() => Ok(f),
            Some(f) => Err(LlamaError::config(
                "rope_scaling.factor",
                format!("must be > 0, got {f}"),
            )),
            None => Err(LlamaError::config(
                "rope_scaling.factor",
                format!("is required for rope_type `{kind}`"),
            )),
        }
    };
    Ok(match kind {
        "default" => RopeScaling::Default,
        "linear" => RopeScaling::Linear { factor: factor()? },
        "dynamic" => RopeScaling::Dynamic { factor: factor()? },
        "llama3" => {
            let low = rope.low_freq_factor.ok_or_else(|| {
                LlamaError::config(
                    "rope_scaling.low_freq_factor",
                    "is required for rope_type `llama3`",
                )
            })?;
            let high = rope.high_freq_factor.ok_or_else(|| {
                LlamaError::config(
                    "rope_scaling.high_freq_factor",
                    "is required for rope_type `llama3`",
                )
            })?;
            let original = rope.original_max_position_embeddings.ok_or_else(|| {
                LlamaError::config(
                    "rope_scaling.original_max_position_embeddings",
                    "is required for rope_type `llama3`",
                )
            })?;
            if !(low > 0.0 && high > low) {
                return Err(LlamaError::config(
                    "rope_scaling.high_freq_factor",
                    format!("must be > low_freq_factor > 0, got high {high}, low {low}"),
                ));
            }
            positive("rope_scaling.original_max_position_embeddings", original)?;
            RopeScaling::Llama3 {
                factor: factor()?,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: original,
            }
        }
        other => {
            return Err(LlamaError::config(
                "rope_scaling.rope_type",
                format!("must be one of default, linear, dynamic, llama3; got `{other}`"),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = r#"{
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 49152,
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "rms_norm_eps": 1e-05,
        "rope_theta": 100000.0, "rope_scaling": null, "max_position_embeddings": 8192,
        "tie_word_embeddings": true, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "bfloat16"
    }"#;

    fn with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(SMOLLM2).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    fn err(text: &str) -> String {
        LlamaConfig::from_json_str(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_a_legacy_llama_config() {
        let c = LlamaConfig::from_json_str(SMOLLM2).unwrap();
        assert_eq!(c.model_type, ModelType::Llama);
        assert_eq!(c.head_dim, 64);
        assert_eq!(c.num_key_value_groups(), 3);
        assert_eq!(c.rope_theta, 100_000.0);
        assert_eq!(c.rope_scaling, RopeScaling::Default);
        assert!(c.tie_word_embeddings && !c.qkv_bias && !c.o_bias && !c.mlp_bias);
        assert_eq!(c.eos_token_ids, vec![2]);
        assert_eq!(c.max_context(), 8192);
    }

    #[test]
    fn reads_transformers_5_rope_parameters() {
        let text = with(
            "rope_parameters",
            r#"{"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}"#,
        );
        let c = LlamaConfig::from_json_str(&text).unwrap();
        assert_eq!(c.rope_theta, 500_000.0);
        assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));
    }

    #[test]
    fn legacy_type_key_and_dynamic_context() {
        let text = with("rope_scaling", r#"{"type": "dynamic", "factor": 2.0}"#);
        let c = LlamaConfig::from_json_str(&text).unwrap();
        assert_eq!(c.rope_scaling, RopeScaling::Dynamic { factor: 2.0 });
        assert_eq!(c.max_context(), 16384);
    }

    #[test]
    fn qwen2_has_qkv_bias_only_and_eos_lists() {
        let text = with("model_type", r#""qwen2""#);
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["eos_token_id"] = serde_json::json!([151643, 151645]);
        let c = LlamaConfig::from_json_str(&v.to_string()).unwrap();
        assert!(c.qkv_bias && !c.o_bias && !c.mlp_bias);
        assert_eq!(c.eos_token_ids, vec![151643, 151645]);
    }

    #[test]
    fn errors_name_the_field_and_the_limit() {
        assert!(err(&with("model_type", r#""gpt2""#)).contains("`model_type` must be `llama` or `qwen2`"));
        assert!(err(&with("num_key_value_heads", "4")).contains("`num_key_value_heads` must divide"));
        assert!(err(&with("hidden_act", r#""gelu""#)).contains("`hidden_act`"));
        assert!(err(&with("rms_norm_eps", "0.0")).contains("`rms_norm_eps` must be > 0"));
        assert!(err(&with("rope_scaling", r#"{"rope_type": "yarn", "factor": 4.0}"#)).contains("yarn"));
        assert!(
            err(&with("rope_scaling", r#"{"rope_type": "linear"}"#))
                .contains("`rope_scaling.factor` is required")
        );
        assert!(
            err(&with("rope_scaling", r#"{"rope_type": "llama3", "factor": 8.0}"#))
                .contains("low_freq_factor")
        );
        assert!(err(&with("head_dim", "63")).contains("`head_dim` must be even"));
        assert!(err(&with("use_sliding_window", "true")).contains("use_sliding_window"));
    }
}
