//! diffusers' `AnimateDiffTransformer3D`, the motion module: attention over the frame axis
//! at every spatial position, with sinusoidal frame positions (the temporal layers of a
//! Video LDM, interleaved after each spatial block).
//!
//! VarStore paths: `norm` (GroupNorm), `proj_in`, `transformer_blocks.N.{norm1, attn1,
//! norm2, attn2, norm3, ff}` (both attentions are self-attention over frames:
//! `double_self_attention`), `transformer_blocks.N.pos_embed.pe` (the sinusoidal table, a
//! persistent buffer in diffusers; computed here when a checkpoint leaves it out),
//! `proj_out`.

use tch::{Tensor, nn, nn::Module};

use crate::{
    diffusion::{
        AttentionNaming,
        embeddings::sinusoidal_position_table,
        transformer_2d::{BasicTransformerBlock, BlockOptions},
    },
    layers::{group_norm, linear},
};

/// The arguments of one motion module.
#[derive(Debug, Clone, Copy)]
pub struct MotionModuleOptions {
    pub in_channels: i64,
    pub heads: i64,
    pub num_layers: i64,
    pub norm_num_groups: i64,
    pub max_seq_length: i64,
    /// The checkpoint carries `pos_embed.pe`: declare it (loaded, strict) rather than
    /// compute it.
    pub pe_in_checkpoint: bool,
    pub naming: AttentionNaming,
}

#[derive(Debug)]
pub struct AnimateDiffTransformer3D {
    norm: nn::GroupNorm,
    proj_in: nn::Linear,
    transformer_blocks: Vec<BasicTransformerBlock>,
    proj_out: nn::Linear,
}

impl AnimateDiffTransformer3D {
    pub fn new(p: nn::Path, o: MotionModuleOptions) -> Self {
        let dim = o.in_channels;
        let block = BlockOptions {
            dim,
            heads: o.heads,
            dim_head: dim / o.heads,
            cross_attention_dim: None,
            double_self_attention: true,
            only_cross_attention: false,
            upcast_attention: false,
            attention_bias: false,
            naming: o.naming,
        };
        let blocks = &p / "transformer_blocks";
        let transformer_blocks = (0..o.num_layers)
            .map(|i| {
                let bp = &blocks / i;
                let pe = if o.pe_in_checkpoint {
                    (&bp / "pos_embed").var("pe", &[1, o.max_seq_length, dim], nn::Init::Const(0.))
                } else {
                    sinusoidal_position_table(dim, o.max_seq_length, p.device())
                };
                BasicTransformerBlock::new(bp, block, Some(pe))
            })
            .collect();
        AnimateDiffTransformer3D {
            norm: group_norm(&p / "norm", o.norm_num_groups, o.in_channels, 1e-6),
            proj_in: linear(&p / "proj_in", o.in_channels, dim),
            transformer_blocks,
            proj_out: linear(&p / "proj_out", dim, o.in_channels),
        }
    }

    /// `xs`: (B*F, C, H, W), frames of each video consecutive.
    pub fn forward(&self, xs: &Tensor, num_frames: i64) -> Tensor {
        let (bf, c, h, w) = xs.size4().expect("motion module input is (B*F, C, H, W)");
        let b = bf / num_frames;
        let video = xs.reshape([b, num_frames, c, h, w]).permute([0, 2, 1, 3, 4]);
        let normed = self.norm.forward(&video);
        let tokens = normed
            .permute([0, 3, 4, 2, 1])
            .reshape([b * h * w, num_frames, c]);
        let mut tokens = self.proj_in.forward(&tokens);
        for block in &self.transformer_blocks {
            tokens = block.forward(&tokens, None);
        }
        let out = self
            .proj_out
            .forward(&tokens)
            .reshape([b, h, w, num_frames, c])
            .permute([0, 3, 4, 1, 2])
            .reshape([bf, c, h, w]);
        out + xs
    }
}
