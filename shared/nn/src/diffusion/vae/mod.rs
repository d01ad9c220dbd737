//! diffusers' `AutoencoderKL`: the VAE between pixels and the UNet's latents (the decoder
//! stage's Encode and Decode).
//!
//! - [`config`]: [`AutoencoderKLConfig`] (`scaling_factor` and `shift_factor` included);
//! - [`blocks`]: `DownEncoderBlock2D`, `UpDecoderBlock2D`, `UNetMidBlock2D`;
//! - [`model`]: [`AutoencoderKL`]: encode to the latent Gaussian, decode in slices,
//!   video helpers over (B, C, F, H, W).

pub mod blocks;
pub mod config;
pub mod model;

pub use config::AutoencoderKLConfig;
pub use model::{AutoencoderKL, LatentDist};
