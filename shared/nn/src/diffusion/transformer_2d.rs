//! diffusers' `Transformer2DModel` (continuous input) and its `BasicTransformerBlock`
//! (`norm_type = "layer_norm"`): the spatial self- and cross-attention of the UNet.
//!
//! VarStore paths: `norm` (GroupNorm), `proj_in` (1x1 conv, or linear with
//! `use_linear_projection`), `transformer_blocks.N.{norm1,attn1,norm2,attn2,norm3}`,
//! `transformer_blocks.N.ff.net.0.proj` (GEGLU), `transformer_blocks.N.ff.net.2`,
//! `proj_out`.

use tch::{Tensor, nn, nn::Module};

use super::{Attention, AttentionNaming, AttentionOptions};
use crate::layers::{conv2d, layer_norm, linear};

/// diffusers' `FeedForward(dim, activation_fn="geglu")`: `net.0.proj` (dim -> 2 * 4 dim),
/// `hidden * gelu(gate)`, `net.2` (4 dim -> dim).
#[derive(Debug)]
pub struct FeedForward {
    proj: nn::Linear,
    out: nn::Linear,
}

impl FeedForward {
    pub fn new(p: nn::Path, dim: i64) -> Self {
        let inner = 4 * dim;
        let net = &p / "net";
        FeedForward {
            proj: linear(&net / 0 / "proj", dim, 2 * inner),
            out: linear(&net / 2, inner, dim),
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let projected = self.proj.forward(xs);
        let halves = projected.chunk(2, -1);
        self.out.forward(&(&halves[0] * halves[1].gelu("none")))
    }
}

/// The arguments of a `BasicTransformerBlock`.
#[derive(Debug, Clone, Copy)]
pub struct BlockOptions {
    pub dim: i64,
    pub heads: i64,
    pub dim_head: i64,
    /// `None`: `attn2` is absent (the motion modules) ...
    pub cross_attention_dim: Option<i64>,
    /// ... or self-attention too (`double_self_attention`, the motion modules).
    pub double_self_attention: bool,
    /// `attn1` attends the context instead of itself.
    pub only_cross_attention: bool,
    pub upcast_attention: bool,
    /// Bias of the q/k/v projections (`attention_bias`).
    pub attention_bias: bool,
    pub naming: AttentionNaming,
}

/// `BasicTransformerBlock`: pre-norm self-attention, cross-attention and GEGLU
/// feed-forward, each with a residual; `pos_embed` (added after `norm1` and `norm2`) for
/// the motion modules.
#[derive(Debug)]
pub struct BasicTransformerBlock {
    norm1: nn::LayerNorm,
    attn1: Attention,
    norm2: Option<nn::LayerNorm>,
    attn2: Option<Attention>,
    norm3: nn::LayerNorm,
    ff: FeedForward,
    only_cross_attention: bool,
    /// (1, max_len, dim): the sinusoidal table added to the normed input of each attention.
    pos_embed: Option<Tensor>,
}

impl BasicTransformerBlock {
    pub fn new(p: nn::Path, o: BlockOptions, pos_embed: Option<Tensor>) -> Self {
        let attention = |name: &str, cross: Option<i64>| {
            let mut a = AttentionOptions::new(o.dim, o.heads, o.dim_head);
            a.cross_attention_dim = cross;
            a.bias = o.attention_bias;
            a.upcast = o.upcast_attention;
            a.naming = o.naming;
            Attention::new(&p / name, &a)
        };
        let attn1 = attention(
            "attn1",
            if o.only_cross_attention {
                o.cross_attention_dim
            } else {
                None
            },
        );
        let with_attn2 = o.cross_attention_dim.is_some() || o.double_self_attention;
        let attn2 = with_attn2.then(|| {
            attention(
                "attn2",
                if o.double_self_attention {
                    None
                } else {
                    o.cross_attention_dim
                },
            )
        });
        BasicTransformerBlock {
            norm1: layer_norm(&p / "norm1", o.dim, 1e-5),
            attn1,
            norm2: with_attn2.then(|| layer_norm(&p / "norm2", o.dim, 1e-5)),
            attn2,
            norm3: layer_norm(&p / "norm3", o.dim, 1e-5),
            ff: FeedForward::new(&p / "ff", o.dim),
            only_cross_attention: o.only_cross_attention,
            pos_embed,
        }
    }

    fn add_pos(&self, xs: Tensor) -> Tensor {
        match &self.pos_embed {
            Some(pe) => {
                let len = xs.size()[1];
                &xs + pe.narrow(1, 0, len).to_kind(xs.kind())
            }
            None => xs,
        }
    }

    /// `xs`: (B, T, dim); `context`: (B, S, cross_attention_dim) for `attn2`.
    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Tensor {
        let normed = self.add_pos(self.norm1.forward(xs));
        let ctx1 = if self.only_cross_attention { context } else { None };
        let mut xs = self.attn1.forward(&normed, ctx1) + xs;
        if let (Some(norm2), Some(attn2)) = (&self.norm2, &self.attn2) {
            let normed = self.add_pos(norm2.forward(&xs));
            xs = attn2.forward(&normed, context) + xs;
        }
        self.ff.forward(&self.norm3.forward(&xs)) + xs
    }
}

/// `proj_in` / `proj_out`: a 1x1 convolution on (B, C, H, W), or a linear layer on tokens.
#[derive(Debug)]
enum Projection {
    Conv(nn::Conv2D),
    Linear(nn::Linear),
}

impl Projection {
    fn new(p: nn::Path, in_dim: i64, out_dim: i64, linear_projection: bool) -> Self {
        if linear_projection {
            Projection::Linear(linear(p, in_dim, out_dim))
        } else {
            Projection::Conv(conv2d(p, in_dim, out_dim, 1, 1, 0))
        }
    }
}

/// The arguments of a `Transformer2DModel`.
#[derive(Debug, Clone, Copy)]
pub struct Transformer2DOptions {
    pub in_channels: i64,
    pub heads: i64,
    pub dim_head: i64,
    pub num_layers: i64,
    pub cross_attention_dim: Option<i64>,
    pub norm_num_groups: i64,
    pub use_linear_projection: bool,
    pub only_cross_attention: bool,
    pub upcast_attention: bool,
    pub naming: AttentionNaming,
}

#[derive(Debug)]
pub struct Transformer2DModel {
    norm: nn::GroupNorm,
    proj_in: Projection,
    transformer_blocks: Vec<BasicTransformerBlock>,
    proj_out: Projection,
}

impl Transformer2DModel {
    pub fn new(p: nn::Path, o: Transformer2DOptions) -> Self {
        let inner = o.heads * o.dim_head;
        let block = BlockOptions {
            dim: inner,
            heads: o.heads,
            dim_head: o.dim_head,
            cross_attention_dim: o.cross_attention_dim,
            double_self_attention: false,
            only_cross_attention: o.only_cross_attention,
            upcast_attention: o.upcast_attention,
            attention_bias: false,
            naming: o.naming,
        };
        let blocks = &p / "transformer_blocks";
        Transformer2DModel {
            norm: crate::layers::group_norm(&p / "norm", o.norm_num_groups, o.in_channels, 1e-6),
            proj_in: Projection::new(&p / "proj_in", o.in_channels, inner, o.use_linear_projection),
            transformer_blocks: (0..o.num_layers)
                .map(|i| BasicTransformerBlock::new(&blocks / i, block, None))
                .collect(),
            proj_out: Projection::new(&p / "proj_out", inner, o.in_channels, o.use_linear_projection),
        }
    }

    /// `xs`: (B, C, H, W); `context`: (B, S, cross_attention_dim).
    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Tensor {
        let (b, _, h, w) = xs.size4().expect("Transformer2DModel input is (B, C, H, W)");
        let normed = self.norm.forward(xs);
        let to_tokens = |x: &Tensor| {
            let c = x.size()[1];
            x.permute([0, 2, 3, 1]).reshape([b, h * w, c])
        };
        let mut tokens = match &self.proj_in {
            Projection::Conv(conv) => to_tokens(&conv.forward(&normed)),
            Projection::Linear(lin) => lin.forward(&to_tokens(&normed)),
        };
        for block in &self.transformer_blocks {
            tokens = block.forward(&tokens, context);
        }
        let to_map = |t: &Tensor| {
            let c = t.size()[2];
            t.reshape([b, h, w, c]).permute([0, 3, 1, 2])
        };
        let out = match &self.proj_out {
            Projection::Conv(conv) => conv.forward(&to_map(&tokens).contiguous()),
            Projection::Linear(lin) => to_map(&lin.forward(&tokens)),
        };
        out + xs
    }
}
