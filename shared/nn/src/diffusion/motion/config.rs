//! `config.json` of diffusers' `MotionAdapter` (the AnimateDiff motion modules, shipped
//! apart from the base UNet), and what a checkpoint of it holds.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::{
    diffusion::{DiffusionError, error::read_json, unet::PerBlock},
    weights::safetensors_names,
};

fn d_block_out_channels() -> Vec<i64> {
    vec![320, 640, 1280, 1280]
}
fn d_two() -> PerBlock<i64> {
    PerBlock::One(2)
}
fn d_one() -> PerBlock<i64> {
    PerBlock::One(1)
}
fn d_one_i() -> i64 {
    1
}
fn d_eight() -> PerBlock<i64> {
    PerBlock::One(8)
}
fn d_groups() -> i64 {
    32
}
fn d_max_seq_length() -> i64 {
    32
}
fn d_true() -> bool {
    true
}

/// diffusers' `MotionAdapter` config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MotionAdapterConfig {
    #[serde(default = "d_block_out_channels")]
    pub block_out_channels: Vec<i64>,
    #[serde(default = "d_two")]
    pub motion_layers_per_block: PerBlock<i64>,
    #[serde(default = "d_one")]
    pub motion_transformer_layers_per_block: PerBlock<i64>,
    #[serde(default = "d_one_i")]
    pub motion_mid_block_layers_per_block: i64,
    #[serde(default = "d_one")]
    pub motion_transformer_layers_per_mid_block: PerBlock<i64>,
    #[serde(default = "d_eight")]
    pub motion_num_attention_heads: PerBlock<i64>,
    /// Not used by `UNetMotionModel`, which normalises with the base UNet's
    /// `norm_num_groups` (the parameters' shapes do not depend on it).
    #[serde(default = "d_groups")]
    pub motion_norm_num_groups: i64,
    #[serde(default = "d_max_seq_length")]
    pub motion_max_seq_length: i64,
    #[serde(default = "d_true")]
    pub use_motion_mid_block: bool,
    /// Must be null: the adapters with their own `conv_in` (SparseCtrl, PIA) are not
    /// supported.
    #[serde(default)]
    pub conv_in_channels: Option<Value>,
}

/// The adapter's per-block values, in down-block order.
#[derive(Debug, Clone)]
pub struct ResolvedMotion {
    pub heads: Vec<i64>,
    /// Transformer layers of each block's motion modules.
    pub layers: Vec<i64>,
    /// Transformer layers of the mid block's motion module; `None` without one.
    pub mid_layers: Option<i64>,
}

impl MotionAdapterConfig {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DiffusionError> {
        read_json(path.as_ref())
    }

    /// Checks the adapter against a base UNet (`blocks` down blocks with
    /// `layers_per_block` resnets each) and resolves the per-block values.
    pub fn resolve(&self, blocks: usize, layers_per_block: &[i64]) -> Result<ResolvedMotion, DiffusionError> {
        if self.block_out_channels.len() != blocks {
            return Err(DiffusionError::config(
                "block_out_channels",
                format!(
                    "the motion adapter has {} blocks, the UNet {blocks}",
                    self.block_out_channels.len()
                ),
            ));
        }
        let motion_layers = self
            .motion_layers_per_block
            .expand(blocks, "motion_layers_per_block")?;
        if motion_layers != layers_per_block {
            return Err(DiffusionError::config(
                "motion_layers_per_block",
                format!("{motion_layers:?} differs from the UNet's layers_per_block {layers_per_block:?}"),
            ));
        }
        if self.conv_in_channels.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(DiffusionError::config(
                "conv_in_channels",
                "is not supported (adapters with their own conv_in): must be null",
            ));
        }
        if self.motion_mid_block_layers_per_block != 1 {
            return Err(DiffusionError::config(
                "motion_mid_block_layers_per_block",
                format!(
                    "must be 1 (UNetMotionModel's mid block), got {}",
                    self.motion_mid_block_layers_per_block
                ),
            ));
        }
        if self.motion_max_seq_length < 1 {
            return Err(DiffusionError::config("motion_max_seq_length", "must be >= 1"));
        }
        let heads = self
            .motion_num_attention_heads
            .expand(blocks, "motion_num_attention_heads")?;
        for (i, (&h, &c)) in heads.iter().zip(&self.block_out_channels).enumerate() {
            if h < 1 || c % h != 0 {
                return Err(DiffusionError::config(
                    "motion_num_attention_heads",
                    format!("[{i}]: {h} heads do not divide {c} channels"),
                ));
            }
        }
        let mid = self
            .motion_transformer_layers_per_mid_block
            .expand(1, "motion_transformer_layers_per_mid_block")?;
        Ok(ResolvedMotion {
            heads,
            layers: self
                .motion_transformer_layers_per_block
                .expand(blocks, "motion_transformer_layers_per_block")?,
            mid_layers: self.use_motion_mid_block.then_some(mid[0]),
        })
    }
}

/// What a motion adapter checkpoint holds besides the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotionLayout {
    pub max_seq_length: i64,
    /// The sinusoidal tables (`...pos_embed.pe`, persistent buffers in diffusers) are in
    /// the file.
    pub pe_in_checkpoint: bool,
}

impl MotionLayout {
    pub fn from_names<'a>(config: &MotionAdapterConfig, names: impl IntoIterator<Item = &'a str>) -> Self {
        MotionLayout {
            max_seq_length: config.motion_max_seq_length,
            pe_in_checkpoint: names.into_iter().any(|n| n.ends_with(".pos_embed.pe")),
        }
    }

    pub fn from_files(
        config: &MotionAdapterConfig,
        files: &[impl AsRef<Path>],
    ) -> Result<Self, DiffusionError> {
        let mut names = Vec::new();
        for file in files {
            names.extend(
                safetensors_names(file.as_ref())
                    .map_err(|(path, message)| DiffusionError::Safetensors { path, message })?,
            );
        }
        Ok(Self::from_names(config, names.iter().map(String::as_str)))
    }
}
