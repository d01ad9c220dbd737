//! `interpolation_config.json`: how the masked-conditioning input is laid out.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diffusion::{DiffusionError, error::read_json, unet::UNet2DConditionConfig};

/// One of the three parts concatenated along the channel axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputPart {
    /// The noisy latents (`latent_channels`).
    Sample,
    /// 1 at key frames, 0 at frames to generate (1 channel).
    Mask,
    /// The key frames' latents at their positions, zeros elsewhere (`latent_channels`).
    MaskedLatents,
}

fn d_latent_channels() -> i64 {
    4
}
fn d_frames_between() -> i64 {
    3
}
fn d_layout() -> Vec<InputPart> {
    vec![InputPart::Sample, InputPart::Mask, InputPart::MaskedLatents]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterpolationConfig {
    #[serde(default = "d_latent_channels")]
    pub latent_channels: i64,
    /// Frames generated between two key frames.
    #[serde(default = "d_frames_between")]
    pub frames_between: i64,
    /// The order of the parts in the UNet's input channels.
    #[serde(default = "d_layout")]
    pub input_layout: Vec<InputPart>,
}

impl Default for InterpolationConfig {
    fn default() -> Self {
        InterpolationConfig {
            latent_channels: d_latent_channels(),
            frames_between: d_frames_between(),
            input_layout: d_layout(),
        }
    }
}

impl InterpolationConfig {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DiffusionError> {
        read_json(path.as_ref())
    }

    /// The frames of one window: two key frames and the ones between.
    pub fn window(&self) -> i64 {
        self.frames_between + 2
    }

    /// Checks the layout and that the UNet's channels match it; errors name the field.
    pub fn validate(&self, unet: &UNet2DConditionConfig) -> Result<(), DiffusionError> {
        if self.latent_channels < 1 {
            return Err(DiffusionError::config("latent_channels", "must be >= 1"));
        }
        if !(1..=16).contains(&self.frames_between) {
            return Err(DiffusionError::config(
                "frames_between",
                format!("is {}, must be in 1..=16", self.frames_between),
            ));
        }
        let mut parts = self.input_layout.clone();
        parts.sort_by_key(|p| *p as u8);
        parts.dedup();
        if parts.len() != 3 || self.input_layout.len() != 3 {
            return Err(DiffusionError::config(
                "input_layout",
                format!(
                    "{:?} must name sample, mask and masked_latents once each",
                    self.input_layout
                ),
            ));
        }
        let want = 2 * self.latent_channels + 1;
        if unet.in_channels != want {
            return Err(DiffusionError::config(
                "in_channels",
                format!(
                    "the UNet takes {}, the masked-conditioning input has {want}",
                    unet.in_channels
                ),
            ));
        }
        if unet.out_channels != self.latent_channels {
            return Err(DiffusionError::config(
                "out_channels",
                format!(
                    "the UNet gives {}, the latents have {}",
                    unet.out_channels, self.latent_channels
                ),
            ));
        }
        Ok(())
    }
}
