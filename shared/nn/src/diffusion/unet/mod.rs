//! diffusers' `UNet2DConditionModel` and, with a motion adapter, `UNetMotionModel`.
//!
//! - [`config`]: [`UNet2DConditionConfig`], the UNet's `config.json` (SD 1.5 and SD 2.1:
//!   per-block head counts, linear projections, upcast attention);
//! - [`blocks`]: the down, mid and up blocks, with or without motion modules;
//! - [`model`]: [`UNet`], loading (strict, either attention naming) and the forward passes
//!   on (N, C, H, W) images and (B, C, F, H, W) videos.

pub mod blocks;
pub mod config;
pub mod model;

pub use config::{ClassEmbedding, PerBlock, ResolvedBlocks, UNet2DConditionConfig};
pub use model::UNet;
