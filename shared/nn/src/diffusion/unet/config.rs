//! `config.json` of diffusers' `UNet2DConditionModel`. Missing fields take diffusers'
//! defaults. Options the model does not implement (addition embeddings, other time
//! embeddings, other block types) are errors that name the field, never ignored.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::diffusion::{Activation, DiffusionError, error::read_json};

/// A field that is one value for every block or a list with one value per block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PerBlock<T> {
    One(T),
    Each(Vec<T>),
}

impl<T: Clone> PerBlock<T> {
    /// One value per block; errors when a list has the wrong length.
    pub fn expand(&self, blocks: usize, field: &'static str) -> Result<Vec<T>, DiffusionError> {
        match self {
            PerBlock::One(v) => Ok(vec![v.clone(); blocks]),
            PerBlock::Each(vs) if vs.len() == blocks => Ok(vs.clone()),
            PerBlock::Each(vs) => Err(DiffusionError::config(
                field,
                format!("has {} entries, one per down block ({blocks}) expected", vs.len()),
            )),
        }
    }
}

fn d_in_channels() -> i64 {
    4
}
fn d_flip_sin_to_cos() -> bool {
    true
}
fn d_down_block_types() -> Vec<String> {
    [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ]
    .map(String::from)
    .to_vec()
}
fn d_up_block_types() -> Vec<String> {
    [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ]
    .map(String::from)
    .to_vec()
}
fn d_mid_block_type() -> Option<String> {
    Some("UNetMidBlock2DCrossAttn".into())
}
fn d_block_out_channels() -> Vec<i64> {
    vec![320, 640, 1280, 1280]
}
fn d_layers_per_block() -> PerBlock<i64> {
    PerBlock::One(2)
}
fn d_one() -> i64 {
    1
}
fn d_one_f() -> f64 {
    1.0
}
fn d_norm_num_groups() -> Option<i64> {
    Some(32)
}
fn d_norm_eps() -> f64 {
    1e-5
}
fn d_cross_attention_dim() -> PerBlock<i64> {
    PerBlock::One(1280)
}
fn d_transformer_layers() -> PerBlock<i64> {
    PerBlock::One(1)
}
fn d_attention_head_dim() -> PerBlock<i64> {
    PerBlock::One(8)
}
fn d_false() -> PerBlock<bool> {
    PerBlock::One(false)
}
fn d_three() -> i64 {
    3
}
fn d_default() -> String {
    "default".into()
}
fn d_positional() -> String {
    "positional".into()
}

/// diffusers' `UNet2DConditionModel` config, the fields that shape the network.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UNet2DConditionConfig {
    #[serde(default)]
    pub sample_size: Option<i64>,
    #[serde(default = "d_in_channels")]
    pub in_channels: i64,
    #[serde(default = "d_in_channels")]
    pub out_channels: i64,
    #[serde(default)]
    pub center_input_sample: bool,
    #[serde(default = "d_flip_sin_to_cos")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    #[serde(default = "d_down_block_types")]
    pub down_block_types: Vec<String>,
    #[serde(default = "d_mid_block_type")]
    pub mid_block_type: Option<String>,
    #[serde(default = "d_up_block_types")]
    pub up_block_types: Vec<String>,
    #[serde(default = "d_false")]
    pub only_cross_attention: PerBlock<bool>,
    #[serde(default = "d_block_out_channels")]
    pub block_out_channels: Vec<i64>,
    #[serde(default = "d_layers_per_block")]
    pub layers_per_block: PerBlock<i64>,
    #[serde(default = "d_one")]
    pub downsample_padding: i64,
    #[serde(default = "d_one_f")]
    pub mid_block_scale_factor: f64,
    #[serde(default)]
    pub act_fn: Activation,
    #[serde(default = "d_norm_num_groups")]
    pub norm_num_groups: Option<i64>,
    #[serde(default = "d_norm_eps")]
    pub norm_eps: f64,
    #[serde(default = "d_cross_attention_dim")]
    pub cross_attention_dim: PerBlock<i64>,
    #[serde(default = "d_transformer_layers")]
    pub transformer_layers_per_block: PerBlock<i64>,
    /// Despite the name, the number of heads when `num_attention_heads` is absent (a
    /// long-standing diffusers naming; SD 1.5: 8, SD 2.1: [5, 10, 20, 20]).
    #[serde(default = "d_attention_head_dim")]
    pub attention_head_dim: PerBlock<i64>,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock<i64>>,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default)]
    pub upcast_attention: bool,
    #[serde(default = "d_default")]
    pub resnet_time_scale_shift: String,
    #[serde(default = "d_one_f")]
    pub resnet_out_scale_factor: f64,
    #[serde(default = "d_positional")]
    pub time_embedding_type: String,
    #[serde(default = "d_three")]
    pub conv_in_kernel: i64,
    #[serde(default = "d_three")]
    pub conv_out_kernel: i64,
    #[serde(default = "d_default")]
    pub attention_type: String,
    #[serde(default)]
    pub dual_cross_attention: bool,
    #[serde(default)]
    pub mid_block_only_cross_attention: Option<bool>,
    /// With `num_class_embeds`: the class (for the x4 upscaler, noise level) embedding
    /// added to the time embedding; see [`UNet2DConditionConfig::class_embedding`].
    #[serde(default)]
    pub class_embed_type: Option<Value>,
    #[serde(default)]
    pub num_class_embeds: Option<Value>,
    /// Options that must be absent (null): the model has no code for them.
    #[serde(default)]
    pub addition_embed_type: Option<Value>,
    #[serde(default)]
    pub encoder_hid_dim: Option<Value>,
    #[serde(default)]
    pub encoder_hid_dim_type: Option<Value>,
    #[serde(default)]
    pub time_embedding_dim: Option<Value>,
    #[serde(default)]
    pub time_embedding_act_fn: Option<Value>,
    #[serde(default)]
    pub timestep_post_act: Option<Value>,
    #[serde(default)]
    pub time_cond_proj_dim: Option<Value>,
    #[serde(default)]
    pub cross_attention_norm: Option<Value>,
    #[serde(default)]
    pub reverse_transformer_layers_per_block: Option<Value>,
    #[serde(default)]
    pub resnet_skip_time_act: bool,
    #[serde(default)]
    pub class_embeddings_concat: bool,
}

/// The class embedding diffusers builds from `class_embed_type` and `num_class_embeds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassEmbedding {
    /// Neither is set.
    None,
    /// `class_embed_type` null, `num_class_embeds` n: `nn.Embedding(n, time_embed_dim)`
    /// (the x4 upscaler's noise level, n = 1000).
    Table(i64),
    /// `class_embed_type` "timestep": the labels go through the sinusoidal projection and a
    /// `TimestepEmbedding`.
    Timestep,
}

/// Per down block (in down order) values, resolved from the config.
#[derive(Debug, Clone)]
pub struct ResolvedBlocks {
    pub layers_per_block: Vec<i64>,
    pub transformer_layers: Vec<i64>,
    pub cross_attention_dim: Vec<i64>,
    pub num_heads: Vec<i64>,
    pub only_cross_attention: Vec<bool>,
}

impl UNet2DConditionConfig {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DiffusionError> {
        let config: Self = read_json(path.as_ref())?;
        config.validate()?;
        Ok(config)
    }

    pub fn time_embed_dim(&self) -> i64 {
        self.block_out_channels[0] * 4
    }

    /// Resolves the per-block fields (ints broadcast to lists).
    pub fn blocks(&self) -> Result<ResolvedBlocks, DiffusionError> {
        let n = self.block_out_channels.len();
        let heads = self
            .num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim);
        Ok(ResolvedBlocks {
            layers_per_block: self.layers_per_block.expand(n, "layers_per_block")?,
            transformer_layers: self
                .transformer_layers_per_block
                .expand(n, "transformer_layers_per_block")?,
            cross_attention_dim: self.cross_attention_dim.expand(n, "cross_attention_dim")?,
            num_heads: heads.expand(n, "num_attention_heads")?,
            only_cross_attention: self.only_cross_attention.expand(n, "only_cross_attention")?,
        })
    }

    pub fn class_embedding(&self) -> Result<ClassEmbedding, DiffusionError> {
        let kind = self.class_embed_type.as_ref().filter(|v| !v.is_null());
        let count = self.num_class_embeds.as_ref().filter(|v| !v.is_null());
        match (kind, count) {
            (None, None) => Ok(ClassEmbedding::None),
            (None, Some(n)) => match n.as_i64() {
                Some(n) if n >= 1 => Ok(ClassEmbedding::Table(n)),
                _ => Err(DiffusionError::config(
                    "num_class_embeds",
                    format!("must be a positive integer, got {n}"),
                )),
            },
            (Some(Value::String(t)), _) if t == "timestep" => Ok(ClassEmbedding::Timestep),
            (Some(other), _) => Err(DiffusionError::config(
                "class_embed_type",
                format!("{other} is not supported (null with `num_class_embeds`, or \"timestep\")"),
            )),
        }
    }

    /// Checks every field the model relies on; errors name the field.
    pub fn validate(&self) -> Result<(), DiffusionError> {
        self.class_embedding()?;
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err(DiffusionError::config("block_out_channels", "must not be empty"));
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(DiffusionError::config(
                "down_block_types",
                format!(
                    "{} down and {} up block types for {n} `block_out_channels`: one each expected",
                    self.down_block_types.len(),
                    self.up_block_types.len()
                ),
            ));
        }
        for t in &self.down_block_types {
            if !matches!(t.as_str(), "CrossAttnDownBlock2D" | "DownBlock2D") {
                return Err(DiffusionError::config(
                    "down_block_types",
                    format!("`{t}` is not supported (CrossAttnDownBlock2D, DownBlock2D)"),
                ));
            }
        }
        for t in &self.up_block_types {
            if !matches!(t.as_str(), "CrossAttnUpBlock2D" | "UpBlock2D") {
                return Err(DiffusionError::config(
                    "up_block_types",
                    format!("`{t}` is not supported (CrossAttnUpBlock2D, UpBlock2D)"),
                ));
            }
        }
        match self.mid_block_type.as_deref() {
            Some("UNetMidBlock2DCrossAttn") => {}
            other => {
                return Err(DiffusionError::config(
                    "mid_block_type",
                    format!("{other:?} is not supported (UNetMidBlock2DCrossAttn)"),
                ));
            }
        }
        let nulls = [
            ("addition_embed_type", &self.addition_embed_type),
            ("encoder_hid_dim", &self.encoder_hid_dim),
            ("encoder_hid_dim_type", &self.encoder_hid_dim_type),
            ("time_embedding_dim", &self.time_embedding_dim),
            ("time_embedding_act_fn", &self.time_embedding_act_fn),
            ("timestep_post_act", &self.timestep_post_act),
            ("time_cond_proj_dim", &self.time_cond_proj_dim),
            ("cross_attention_norm", &self.cross_attention_norm),
            (
                "reverse_transformer_layers_per_block",
                &self.reverse_transformer_layers_per_block,
            ),
        ];
        for (field, value) in nulls {
            if value.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(DiffusionError::config(
                    field,
                    "is not supported: must be null or absent",
                ));
            }
        }
        let flags = [
            ("dual_cross_attention", self.dual_cross_attention),
            ("resnet_skip_time_act", self.resnet_skip_time_act),
            ("class_embeddings_concat", self.class_embeddings_concat),
        ];
        for (field, on) in flags {
            if on {
                return Err(DiffusionError::config(field, "is not supported: must be false"));
            }
        }
        for (field, value, want) in [
            (
                "resnet_time_scale_shift",
                &self.resnet_time_scale_shift,
                "default",
            ),
            ("time_embedding_type", &self.time_embedding_type, "positional"),
            ("attention_type", &self.attention_type, "default"),
        ] {
            if value != want {
                return Err(DiffusionError::config(
                    field,
                    format!("`{value}` is not supported (`{want}`)"),
                ));
            }
        }
        for (field, k) in [
            ("conv_in_kernel", self.conv_in_kernel),
            ("conv_out_kernel", self.conv_out_kernel),
        ] {
            if k < 1 || k % 2 == 0 {
                return Err(DiffusionError::config(
                    field,
                    format!("must be odd and >= 1, got {k}"),
                ));
            }
        }
        let Some(groups) = self.norm_num_groups else {
            return Err(DiffusionError::config(
                "norm_num_groups",
                "null is not supported (the blocks need GroupNorm)",
            ));
        };
        let blocks = self.blocks()?;
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if c < 1 || c % groups != 0 {
                return Err(DiffusionError::config(
                    "block_out_channels",
                    format!("[{i}] = {c} must be a positive multiple of `norm_num_groups` ({groups})"),
                ));
            }
            if blocks.num_heads[i] < 1 || c % blocks.num_heads[i] != 0 {
                return Err(DiffusionError::config(
                    "attention_head_dim",
                    format!("[{i}]: {} heads do not divide {c} channels", blocks.num_heads[i]),
                ));
            }
        }
        if self.in_channels < 1 || self.out_channels < 1 {
            return Err(DiffusionError::config("in_channels", "channels must be >= 1"));
        }
        Ok(())
    }
}
