//! `LlamaRotaryEmbedding` and `apply_rotary_pos_emb`: rotary position embeddings.
//!
//! The inverse frequencies and the angles are computed in f32 with the same libtorch
//! operations transformers uses (so the same values come out), then cast to the model dtype.
//! Positions are explicit per token, which is what makes left-padded batches and the KV
//! cache work: a token's angle depends on its own position only.

use super::config::{LlamaConfig, RopeScaling};
use tch::{Device, Kind, Tensor};

#[derive(Debug)]
pub struct RotaryEmbedding {
    /// `(head_dim / 2)` f32 on the model device.
    inv_freq: Tensor,
    dim: i64,
    base: f64,
    scaling: RopeScaling,
    max_position_embeddings: i64,
}

impl RotaryEmbedding {
    pub fn new(config: &LlamaConfig, device: Device) -> Self {
        let dim = config.head_dim as i64;
        let base = config.rope_theta;
        let exponents =
            Tensor::arange_start_step(0, dim, 2, (Kind::Int64, device)).to_kind(Kind::Float) / dim;
        let default = Tensor::pow_scalar(base, &exponents).reciprocal();
        let inv_freq = match config.rope_scaling {
            RopeScaling::Default | RopeScaling::Dynamic { .. } => default,
            RopeScaling::Linear { factor } => default / factor,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let old = original_max_position_embeddings as f64;
                let low_freq_wavelen = old / low_freq_factor;
                let high_freq_wavelen = old / high_freq_factor;
                let wavelen = default.reciprocal() * (2.0 * std::f64::consts::PI);
                let scaled = default.where_self(&wavelen.le(low_freq_wavelen), &(&default / factor));
                let smooth =
                    (wavelen.reciprocal() * old - low_freq_factor) / (high_freq_factor - low_freq_factor);
                let smoothed = (-&smooth + 1.0) * &scaled / factor + &smooth * &scaled;
                let medium = wavelen
                    .ge(high_freq_wavelen)
                    .logical_and(&wavelen.le(low_freq_wavelen));
                smoothed.where_self(&medium, &scaled)
            }
        };
        RotaryEmbedding {
            inv_freq,
            dim,
            base,
            scaling: config.rope_scaling,
            max_position_embeddings: config.max_position_embeddings as i64,
        }
    }

    /// `cos` and `sin` of shape `(batch, seq, head_dim)` in `kind`, for `position_ids`
    /// `(batch, seq)`.
    pub fn cos_sin(&self, position_ids: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let inv_freq = match self.scaling {
            RopeScaling::Dynamic { factor } => self.dynamic_inv_freq(position_ids, factor),
            _ => self.inv_freq.shallow_clone(),
        };
        let freqs = position_ids.to_kind(Kind::Float).unsqueeze(-1) * inv_freq;
        let (cos, sin) = (freqs.cos(), freqs.sin());
        let cos = Tensor::cat(&[&cos, &cos], -1).to_kind(kind);
        let sin = Tensor::cat(&[&sin, &sin], -1).to_kind(kind);
        (cos, sin)
    }

    /// transformers' dynamic NTK update: once the longest position in the call reaches past
    /// `max_position_embeddings`, the base grows with it (computed in f32 like transformers).
    fn dynamic_inv_freq(&self, position_ids: &Tensor, factor: f64) -> Tensor {
        let seq_len = position_ids.max().int64_value(&[]) + 1;
        if seq_len <= self.max_position_embeddings {
            return self.inv_freq.shallow_clone();
        }
        let device = self.inv_freq.device();
        let dim = self.dim as f64;
        let seq_len = Tensor::from(seq_len).to_device(device);
        let grown = (seq_len * factor / self.max_position_embeddings - (factor - 1.0))
            .pow_tensor_scalar(dim / (dim - 2.0))
            * self.base;
        let exponents =
            Tensor::arange_start_step(0, self.dim, 2, (Kind::Int64, device)).to_kind(Kind::Float) / self.dim;
        grown.pow(&exponents).reciprocal()
    }
}

/// `x * cos + rotate_half(x) * sin` for `x` of shape `(batch, heads, seq, head_dim)` and
/// `cos`/`sin` of shape `(batch, seq, head_dim)`.
pub fn apply_rotary(xs: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let cos = cos.unsqueeze(1);
    let sin = sin.unsqueeze(1);
    xs * cos + rotate_half(xs) * sin
}

fn rotate_half(xs: &Tensor) -> Tensor {
    let half = xs.size()[3] / 2;
    let x1 = xs.narrow(-1, 0, half);
    let x2 = xs.narrow(-1, half, half);
    Tensor::cat(&[&x2.neg(), &x1], -1)
}
