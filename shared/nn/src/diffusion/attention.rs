//! diffusers' `Attention` with its default processor (`AttnProcessor2_0`): multi-head
//! scaled dot-product attention over tokens, self- or cross-, optionally preceded by a
//! GroupNorm over channels and followed by a residual connection (the VAE's form).
//!
//! VarStore paths: `to_q`, `to_k`, `to_v`, `to_out.0` (or the legacy `query`, `key`,
//! `value`, `proj_attn`: [`AttentionNaming`]) and `group_norm` when present.

use tch::{Kind, Tensor, nn, nn::Module};

use super::AttentionNaming;
use crate::layers::{group_norm, linear_opt_bias};

/// The constructor arguments of diffusers' `Attention` that the supported models use.
#[derive(Debug, Clone)]
pub struct AttentionOptions {
    pub query_dim: i64,
    /// `None` for self-attention (keys and values from the queries' input).
    pub cross_attention_dim: Option<i64>,
    pub heads: i64,
    pub dim_head: i64,
    /// Bias of `to_q`, `to_k`, `to_v`.
    pub bias: bool,
    /// Bias of `to_out.0`.
    pub out_bias: bool,
    /// Compute the attention scores in f32 when the weights are f16/bf16 (SD 2.1's
    /// `upcast_attention`; also the VAE's `upcast_softmax`). No effect in f32.
    pub upcast: bool,
    /// `(groups, eps)` of a GroupNorm applied before the projections (the VAE).
    pub group_norm: Option<(i64, f64)>,
    /// Add the input to the output (the VAE).
    pub residual_connection: bool,
    /// The output is divided by this.
    pub rescale_output_factor: f64,
    pub naming: AttentionNaming,
}

impl AttentionOptions {
    pub fn new(query_dim: i64, heads: i64, dim_head: i64) -> Self {
        AttentionOptions {
            query_dim,
            cross_attention_dim: None,
            heads,
            dim_head,
            bias: false,
            out_bias: true,
            upcast: false,
            group_norm: None,
            residual_connection: false,
            rescale_output_factor: 1.0,
            naming: AttentionNaming::Current,
        }
    }
}

#[derive(Debug)]
pub struct Attention {
    to_q: nn::Linear,
    to_k: nn::Linear,
    to_v: nn::Linear,
    to_out: nn::Linear,
    group_norm: Option<nn::GroupNorm>,
    heads: i64,
    dim_head: i64,
    upcast: bool,
    residual_connection: bool,
    rescale_output_factor: f64,
}

impl Attention {
    pub fn new(p: nn::Path, o: &AttentionOptions) -> Self {
        let inner = o.heads * o.dim_head;
        let kv_dim = o.cross_attention_dim.unwrap_or(o.query_dim);
        let at = |segments: &[&str]| segments.iter().fold(p.clone(), |p, s| &p / *s);
        let [q, k, v, out] = o.naming.segments();
        Attention {
            to_q: linear_opt_bias(at(q), o.query_dim, inner, o.bias),
            to_k: linear_opt_bias(at(k), kv_dim, inner, o.bias),
            to_v: linear_opt_bias(at(v), kv_dim, inner, o.bias),
            to_out: linear_opt_bias(at(out), inner, o.query_dim, o.out_bias),
            group_norm: o
                .group_norm
                .map(|(groups, eps)| group_norm(&p / "group_norm", groups, o.query_dim, eps)),
            heads: o.heads,
            dim_head: o.dim_head,
            upcast: o.upcast,
            residual_connection: o.residual_connection,
            rescale_output_factor: o.rescale_output_factor,
        }
    }

    /// `xs`: (B, T, query_dim) tokens, or (B, C, H, W) feature maps (attended as H*W
    /// tokens and returned in that shape). `context`: (B, S, cross_attention_dim) for
    /// cross-attention, `None` for self-attention.
    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Tensor {
        let spatial = xs.dim() == 4;
        let shape = xs.size();
        let tokens = if spatial {
            let (b, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
            xs.view([b, c, h * w]).transpose(1, 2)
        } else {
            xs.shallow_clone()
        };
        let residual = tokens.shallow_clone();
        let normed = match &self.group_norm {
            Some(norm) => norm.forward(&tokens.transpose(1, 2)).transpose(1, 2),
            None => tokens,
        };
        let context = context.unwrap_or(&normed);
        let b = normed.size()[0];
        let heads = |x: Tensor| x.view([b, -1, self.heads, self.dim_head]).transpose(1, 2);
        let q = heads(self.to_q.forward(&normed));
        let k = heads(self.to_k.forward(context));
        let v = heads(self.to_v.forward(context));
        let attended = if self.upcast && q.kind() != Kind::Float {
            let kind = q.kind();
            sdpa(
                &q.to_kind(Kind::Float),
                &k.to_kind(Kind::Float),
                &v.to_kind(Kind::Float),
            )
            .to_kind(kind)
        } else {
            sdpa(&q, &k, &v)
        };
        let attended = attended
            .transpose(1, 2)
            .reshape([b, -1, self.heads * self.dim_head]);
        let mut out = self.to_out.forward(&attended);
        if self.residual_connection {
            out += residual;
        }
        if self.rescale_output_factor != 1.0 {
            out /= self.rescale_output_factor;
        }
        if spatial {
            out.transpose(1, 2).reshape(shape.as_slice())
        } else {
            out
        }
    }
}

/// Scaled dot-product attention over (B, heads, T, d) with the default `1/sqrt(d)` scale.
fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    Tensor::scaled_dot_product_attention::<Tensor>(q, k, v, None, 0.0, false, None, false)
}
