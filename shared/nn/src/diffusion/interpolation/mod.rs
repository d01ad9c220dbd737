//! The interpolation LDM of Video LDM (Blattmann et al. 2023, §3 "Interpolation LDM"): the
//! video UNet (the motion UNet of [`crate::diffusion::unet`]) with a masked-conditioning
//! input. Between each pair of key frames it generates `frames_between` (3) frames: the
//! UNet sees, per window of `frames_between + 2` frames, the noisy latents concatenated
//! with a frame mask (1 at the two key frames) and the masked key-frame latents (the keys
//! at their positions, zeros elsewhere). One pass takes T key frames to 4(T - 1) + 1; two
//! passes to 16(T - 1) + 1 (the paper's T -> 4T -> 16T).
//!
//! - [`config`]: [`InterpolationConfig`] (`interpolation_config.json`): the latent
//!   channels, the frames per gap and the order of the three inputs in the UNet's input
//!   channels, so trained weights with either layout load;
//! - [`model`]: [`InterpolationModel`]: loading, the conditioning, the UNet call, sampling;
//! - [`tiny`]: the seeded tiny random default `make models` writes.

pub mod config;
pub mod model;
pub mod tiny;

pub use config::{InputPart, InterpolationConfig};
pub use model::{InterpolationModel, InterpolationRequest};
