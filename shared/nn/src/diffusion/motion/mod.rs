//! AnimateDiff motion modules: diffusers' `MotionAdapter` config and its
//! `AnimateDiffTransformer3D` temporal transformer (the UNet blocks interleave them; see
//! [`crate::diffusion::unet`]).

pub mod config;
pub mod transformer_3d;

pub use config::{MotionAdapterConfig, MotionLayout, ResolvedMotion};
pub use transformer_3d::{AnimateDiffTransformer3D, MotionModuleOptions};
