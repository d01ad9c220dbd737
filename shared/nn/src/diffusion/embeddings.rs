//! Timestep and position embeddings: diffusers' `get_timestep_embedding` (`Timesteps`),
//! `TimestepEmbedding` (`linear_1`, activation, `linear_2`) and the motion modules'
//! `SinusoidalPositionalEmbedding`.

use tch::{Kind, Tensor, nn, nn::Module};

use super::Activation;
use crate::layers::linear;

/// Sinusoidal embedding of (N,) timesteps into (N, dim), f32 (diffusers'
/// `get_timestep_embedding` with `scale = 1`, `max_period = 10000`).
pub fn timestep_embedding(timesteps: &Tensor, dim: i64, flip_sin_to_cos: bool, freq_shift: f64) -> Tensor {
    let half = dim / 2;
    let device = timesteps.device();
    let exponent =
        Tensor::arange(half, (Kind::Float, device)) * (-(10000f64.ln())) / (half as f64 - freq_shift);
    let args = timesteps.to_kind(Kind::Float).unsqueeze(1) * exponent.exp().unsqueeze(0);
    let (sin, cos) = (args.sin(), args.cos());
    let emb = if flip_sin_to_cos {
        Tensor::cat(&[cos, sin], -1)
    } else {
        Tensor::cat(&[sin, cos], -1)
    };
    if dim % 2 == 1 {
        emb.constant_pad_nd([0, 1, 0, 0])
    } else {
        emb
    }
}

/// diffusers' `TimestepEmbedding`: `linear_1`, activation, `linear_2`.
#[derive(Debug)]
pub struct TimestepEmbedding {
    linear_1: nn::Linear,
    linear_2: nn::Linear,
    act: Activation,
}

impl TimestepEmbedding {
    pub fn new(p: nn::Path, in_channels: i64, time_embed_dim: i64, act: Activation) -> Self {
        TimestepEmbedding {
            linear_1: linear(&p / "linear_1", in_channels, time_embed_dim),
            linear_2: linear(&p / "linear_2", time_embed_dim, time_embed_dim),
            act,
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        self.linear_2.forward(&self.act.apply(&self.linear_1.forward(xs)))
    }
}

/// The fixed table of diffusers' `SinusoidalPositionalEmbedding(dim, max_seq_length)`:
/// `pe[0, pos, 2i] = sin(pos * w_i)`, `pe[0, pos, 2i+1] = cos(pos * w_i)` with
/// `w_i = exp(-2i ln(10000) / dim)`; shape (1, max_seq_length, dim), f32.
pub fn sinusoidal_position_table(dim: i64, max_seq_length: i64, device: tch::Device) -> Tensor {
    let position = Tensor::arange(max_seq_length, (Kind::Float, device)).unsqueeze(1);
    let div_term =
        (Tensor::arange_start_step(0, dim, 2, (Kind::Float, device)) * (-(10000f64.ln()) / dim as f64)).exp();
    let args = position * div_term.unsqueeze(0);
    // Interleave: stack (sin, cos) on a new last axis and flatten it.
    Tensor::stack(&[args.sin(), args.cos()], -1)
        .view([max_seq_length, dim])
        .unsqueeze(0)
}
