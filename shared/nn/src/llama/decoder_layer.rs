//! `LlamaDecoderLayer`: pre-norm attention and MLP, each with a residual connection.

use super::{
    attention::{AttentionMask, LlamaAttention},
    config::LlamaConfig,
    kv_cache::KvCache,
    mlp::LlamaMlp,
    rms_norm::RmsNorm,
};
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct LlamaDecoderLayer {
    self_attn: LlamaAttention,
    mlp: LlamaMlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
}

impl LlamaDecoderLayer {
    pub fn new(path: nn::Path, config: &LlamaConfig, layer_idx: usize) -> Self {
        LlamaDecoderLayer {
            self_attn: LlamaAttention::new(&path / "self_attn", config, layer_idx),
            mlp: LlamaMlp::new(&path / "mlp", config),
            input_layernorm: RmsNorm::new(&path / "input_layernorm", config.hidden_size, config.rms_norm_eps),
            post_attention_layernorm: RmsNorm::new(
                &path / "post_attention_layernorm",
                config.hidden_size,
                config.rms_norm_eps,
            ),
        }
    }

    pub fn forward(
        &self,
        xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &AttentionMask,
        cache: Option<&mut KvCache>,
    ) -> Tensor {
        let mut hidden = self
            .self_attn
            .forward(&self.input_layernorm.forward(xs), cos, sin, mask, cache);
        hidden += xs;
        let mut out = self.mlp.forward(&self.post_attention_layernorm.forward(&hidden));
        out += &hidden;
        out
    }
}
