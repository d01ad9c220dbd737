//! Video latent diffusion: the keyframe stage's models in the diffusers layout,
//! so that SD 1.5 / SD 2.1 UNets, AnimateDiff motion adapters and AutoencoderKL files load
//! unchanged (VarStore paths equal diffusers' attribute names; configs are the
//! checkpoints' own `config.json`; loading is strict).
//!
//! - [`unet`]: `UNet2DConditionModel` and the motion UNet (`UNetMotionModel`);
//! - [`motion`]: the AnimateDiff motion adapter config and temporal transformer;
//! - [`vae`]: `AutoencoderKL` (encode, decode in frame slices);
//! - [`schedulers`]: DDIM, Euler discrete, DPM-Solver++ 2M behind one trait;
//! - [`pipeline`]: prompt conditioning and the guided sampling loop (`AnimateDiffPipeline`);
//! - [`tiny_model`]: the seeded tiny random keyframe model `make models` writes;
//! - [`interpolation`]: the interpolation LDM (masked-conditioning motion UNet, T -> 4T);
//! - [`upscale`]: the x4 upscaler pipeline (`StableDiffusionUpscalePipeline`) and its tiny
//!   random model;
//! - building blocks: [`attention`], [`transformer_2d`], [`resnet`], [`embeddings`],
//!   [`activation`], [`naming`] (the two attention key namings).

pub mod activation;
pub mod attention;
pub mod embeddings;
pub mod error;
pub mod interpolation;
pub mod motion;
pub mod naming;
pub mod pipeline;
pub mod resnet;
pub mod schedulers;
pub mod tiny_model;
pub mod transformer_2d;
pub mod unet;
pub mod upscale;
pub mod vae;

pub use activation::Activation;
pub use attention::{Attention, AttentionOptions};
pub use error::DiffusionError;
pub use naming::AttentionNaming;
