//! `config.json` of diffusers' `AutoencoderKL`. Missing fields take diffusers' defaults.

use std::path::Path;

use serde::Deserialize;

use crate::diffusion::{Activation, DiffusionError, error::read_json};

fn d_three() -> i64 {
    3
}
fn d_down() -> Vec<String> {
    vec!["DownEncoderBlock2D".into()]
}
fn d_up() -> Vec<String> {
    vec!["UpDecoderBlock2D".into()]
}
fn d_channels() -> Vec<i64> {
    vec![64]
}
fn d_one() -> i64 {
    1
}
fn d_four() -> i64 {
    4
}
fn d_groups() -> i64 {
    32
}
fn d_scaling() -> f64 {
    0.18215
}
fn d_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AutoencoderKLConfig {
    #[serde(default = "d_three")]
    pub in_channels: i64,
    #[serde(default = "d_three")]
    pub out_channels: i64,
    #[serde(default = "d_down")]
    pub down_block_types: Vec<String>,
    #[serde(default = "d_up")]
    pub up_block_types: Vec<String>,
    #[serde(default = "d_channels")]
    pub block_out_channels: Vec<i64>,
    #[serde(default = "d_one")]
    pub layers_per_block: i64,
    #[serde(default)]
    pub act_fn: Activation,
    #[serde(default = "d_four")]
    pub latent_channels: i64,
    #[serde(default = "d_groups")]
    pub norm_num_groups: i64,
    #[serde(default)]
    pub sample_size: Option<serde_json::Value>,
    /// Latents the UNet sees are `(z - shift_factor) * scaling_factor`.
    #[serde(default = "d_scaling")]
    pub scaling_factor: f64,
    #[serde(default)]
    pub shift_factor: Option<f64>,
    /// Run the VAE in f32 even when the pipeline runs in f16 (SD 1.5: true).
    #[serde(default = "d_true")]
    pub force_upcast: bool,
    #[serde(default = "d_true")]
    pub use_quant_conv: bool,
    #[serde(default = "d_true")]
    pub use_post_quant_conv: bool,
    #[serde(default = "d_true")]
    pub mid_block_add_attention: bool,
    /// Must be null (per-channel latent statistics are not supported).
    #[serde(default)]
    pub latents_mean: Option<serde_json::Value>,
    #[serde(default)]
    pub latents_std: Option<serde_json::Value>,
}

impl AutoencoderKLConfig {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DiffusionError> {
        let config: Self = read_json(path.as_ref())?;
        config.validate()?;
        Ok(config)
    }

    /// Spatial downsampling factor between pixels and latents (8 for SD).
    pub fn downscale(&self) -> i64 {
        1 << (self.block_out_channels.len() - 1)
    }

    pub fn validate(&self) -> Result<(), DiffusionError> {
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err(DiffusionError::config("block_out_channels", "must not be empty"));
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(DiffusionError::config(
                "down_block_types",
                format!("one down and one up block type per `block_out_channels` entry ({n}) expected"),
            ));
        }
        if let Some(t) = self.down_block_types.iter().find(|t| *t != "DownEncoderBlock2D") {
            return Err(DiffusionError::config(
                "down_block_types",
                format!("`{t}` is not supported (DownEncoderBlock2D)"),
            ));
        }
        if let Some(t) = self.up_block_types.iter().find(|t| *t != "UpDecoderBlock2D") {
            return Err(DiffusionError::config(
                "up_block_types",
                format!("`{t}` is not supported (UpDecoderBlock2D)"),
            ));
        }
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if c < 1 || c % self.norm_num_groups != 0 {
                return Err(DiffusionError::config(
                    "block_out_channels",
                    format!(
                        "[{i}] = {c} must be a positive multiple of `norm_num_groups` ({})",
                        self.norm_num_groups
                    ),
                ));
            }
        }
        if self.layers_per_block < 1 || self.latent_channels < 1 {
            return Err(DiffusionError::config(
                "layers_per_block",
                "and `latent_channels` must be >= 1",
            ));
        }
        for (field, v) in [
            ("latents_mean", &self.latents_mean),
            ("latents_std", &self.latents_std),
        ] {
            if v.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(DiffusionError::config(field, "is not supported: must be null"));
            }
        }
        Ok(())
    }
}
