//! Text-to-video sampling in latent space, as diffusers' `AnimateDiffPipeline` with
//! `output_type = "latent"` (the keyframe stage's job; decoding is the decoder stage's).
//!
//! - [`prompts`]: [`PromptEncoder`], CLIP conditioning of prompts and negative prompts;
//! - [`load`]: [`PipelinePaths`], loading from diffusers directories;
//! - [`gaussian_noise`] (from [`crate::noise`]): seeded noise reproducible on any machine;
//! - [`sampler`]: [`sample_video`], the loop (classifier-free guidance, start from given
//!   latents at a strength, per-step callback with cancellation).

pub mod load;
pub mod prompts;
pub mod sampler;

use std::ops::ControlFlow;

use tch::Tensor;

pub use crate::noise::gaussian_noise;
pub use load::PipelinePaths;
pub use prompts::PromptEncoder;
pub use sampler::{SampleInputs, StepProgress, first_step, sample_video};

use super::{
    DiffusionError,
    schedulers::{SchedulerConfig, from_config},
    unet::UNet,
};

/// The prompt encoder, the motion UNet and the scheduler configuration.
#[derive(Debug)]
pub struct VideoPipeline {
    pub prompts: PromptEncoder,
    pub unet: UNet,
    pub scheduler: SchedulerConfig,
}

/// One text-to-video (or reference-guided video-to-video) request.
#[derive(Debug)]
pub struct VideoRequest<'a> {
    /// One video per prompt.
    pub prompts: &'a [String],
    /// Empty, or one per prompt.
    pub negative_prompts: &'a [String],
    pub seed: u64,
    pub steps: usize,
    pub guidance_scale: f64,
    pub frames: i64,
    /// The latent size (pixels / the VAE's downscale factor).
    pub latent_height: i64,
    pub latent_width: i64,
    /// Scaled latents to start from and the strength.
    pub init_latents: Option<(&'a Tensor, f64)>,
    /// Replaces the seeded noise (for parity with a reference run).
    pub noise: Option<&'a Tensor>,
}

impl VideoPipeline {
    /// Generates (B, C, F, h, w) latents.
    pub fn generate(
        &self,
        request: &VideoRequest<'_>,
        callback: &mut dyn FnMut(StepProgress, &Tensor) -> ControlFlow<()>,
    ) -> Result<Tensor, DiffusionError> {
        let r = request;
        for (field, v) in [
            ("frames", r.frames),
            ("latent_height", r.latent_height),
            ("latent_width", r.latent_width),
        ] {
            if v < 1 {
                return Err(DiffusionError::input(field, format!("must be >= 1, got {v}")));
            }
        }
        if r.steps == 0 {
            return Err(DiffusionError::input("steps", "must be >= 1"));
        }
        let (cond, uncond) = self.prompts.encode_pair(r.prompts, r.negative_prompts)?;
        let channels = self.unet.config().in_channels;
        let shape = [
            r.prompts.len() as i64,
            channels,
            r.frames,
            r.latent_height,
            r.latent_width,
        ];
        let noise = match r.noise {
            Some(noise) => noise.to_device(self.unet.device()),
            None => gaussian_noise(r.seed, &shape, self.unet.device()),
        };
        if noise.size() != shape {
            return Err(DiffusionError::input(
                "noise",
                format!("must have shape {shape:?}, got {:?}", noise.size()),
            ));
        }
        let mut scheduler = from_config(&self.scheduler)?;
        let inputs = SampleInputs {
            cond: &cond,
            uncond: Some(&uncond),
            noise: &noise,
            init_latents: r.init_latents,
            steps: r.steps,
            guidance_scale: r.guidance_scale,
        };
        sample_video(&self.unet, scheduler.as_mut(), &inputs, callback)
    }
}
