//! The interpolation models on the stage's model worker: the masked-conditioning latent
//! model (with the keyframe pipeline's CLIP text encoder) and RIFE. One [`Work`] at a
//! time, progress per denoising step (LATENT) or frame pair (PIXEL), a stop at the next
//! one once the caller is gone, its deadline has passed or the worker is stopping.

use crate::error::InterpolationError;
use std::ops::ControlFlow;
use storyreel_nn::{
    diffusion::{
        DiffusionError,
        interpolation::{InterpolationModel, InterpolationRequest},
        pipeline::{PromptEncoder, gaussian_noise},
    },
    rife::{Rife, RifeOptions},
};
use storyreel_stage::{
    BatchControl, StageModel,
    outputs::{ChannelJob, JobChannel, run_each},
    scheduler::SchedulerChoice,
};
use storyreel_tensors::{DType, Tensor as HostTensor, f16};
use tch::{Kind, Tensor};

/// What to compute.
#[derive(Debug)]
pub enum Work {
    /// Scaled key latents (1, 4, T, h, w) -> (1, 4, (T - 1) 4^passes + 1, h, w), in the
    /// keys' dtype.
    Latent {
        keys: HostTensor,
        prompt: String,
        seed: u64,
        steps: u32,
        scheduler: SchedulerChoice,
        passes: u32,
    },
    /// u8 key frames (T, 3, H, W) -> (((T - 1) 2^doublings + 1), 3, H, W) with RIFE.
    Pixel { frames: HostTensor, doublings: u32 },
}

pub type InterpolationJob = ChannelJob<Work>;

/// The models the worker owns.
pub struct InterpolationModels {
    pub latent: InterpolationModel,
    pub prompts: PromptEncoder,
    pub rife: Rife,
}

impl StageModel for InterpolationModels {
    type Job = InterpolationJob;

    fn run_batch(&mut self, batch: &mut [InterpolationJob], control: &BatchControl) -> Result<(), String> {
        run_each(batch, control, |work, channel| self.run(work, channel, control));
        Ok(())
    }
}

fn model_err(err: impl std::fmt::Display) -> InterpolationError {
    InterpolationError::Model(err.to_string())
}

fn shape_of(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

impl InterpolationModels {
    fn run(
        &mut self,
        work: &Work,
        job: &JobChannel,
        control: &BatchControl,
    ) -> Result<HostTensor, InterpolationError> {
        match work {
            Work::Latent {
                keys,
                prompt,
                seed,
                steps,
                scheduler,
                passes,
            } => {
                let default = self.latent.scheduler.clone();
                self.latent.scheduler = scheduler.apply(&default);
                let result = self.latent(job, control, keys, prompt, *seed, *steps, *passes);
                self.latent.scheduler = default;
                result
            }
            Work::Pixel { frames, doublings } => self.pixel(job, control, frames, *doublings),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn latent(
        &self,
        job: &JobChannel,
        control: &BatchControl,
        keys: &HostTensor,
        prompt: &str,
        seed: u64,
        steps: u32,
        passes: u32,
    ) -> Result<HostTensor, InterpolationError> {
        let shape: Vec<i64> = keys.shape().iter().map(|&d| d as i64).collect();
        let values: Vec<f32> = match keys.dtype() {
            DType::F16 => keys.to_vec::<f16>()?.into_iter().map(f16::to_f32).collect(),
            _ => keys.to_vec::<f32>()?,
        };
        let device = self.latent.unet.device();
        let mut latents = Tensor::from_slice(&values).reshape(&shape).to_device(device);
        let cond = self.prompts.encode(&[prompt]).map_err(model_err)?;
        let window = self.latent.config.window();
        let total = (steps * passes) as usize;
        for pass in 0..passes {
            let size = latents.size();
            let (t, h, w) = (size[2], size[3], size[4]);
            let noise_shape = [t - 1, size[1], window, h, w];
            // one seed per pass, so a 16x call's first pass is the 4x call's
            let noise = gaussian_noise(seed.wrapping_add(pass as u64), &noise_shape, device);
            let request = InterpolationRequest {
                key_latents: &latents,
                cond: &cond,
                uncond: None,
                noise: &noise,
                steps: steps as usize,
                guidance_scale: 1.0,
            };
            let before = (pass * steps) as usize;
            let mut callback = |progress: storyreel_nn::diffusion::pipeline::StepProgress| {
                job.progress(before + progress.completed, total);
                if job.stopped(control) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            latents = self
                .latent
                .interpolate(&request, &mut callback)
                .map_err(|err| match err {
                    DiffusionError::Cancelled { .. } => InterpolationError::Cancelled,
                    other => model_err(other),
                })?;
        }
        let shape = shape_of(&latents);
        let values = Vec::<f32>::try_from(latents.to_kind(Kind::Float).flatten(0, -1)).map_err(model_err)?;
        Ok(match keys.dtype() {
            DType::F16 => {
                let halves: Vec<f16> = values.into_iter().map(f16::from_f32).collect();
                HostTensor::from_slice(shape, &halves)?
            }
            _ => HostTensor::from_slice(shape, &values)?,
        })
    }

    fn pixel(
        &self,
        job: &JobChannel,
        control: &BatchControl,
        frames: &HostTensor,
        doublings: u32,
    ) -> Result<HostTensor, InterpolationError> {
        let shape: Vec<i64> = frames.shape().iter().map(|&d| d as i64).collect();
        let mut clip = Tensor::from_slice(frames.as_bytes())
            .to_kind(Kind::Float)
            .reshape(&shape)
            .to_device(self.rife.device())
            / 255.0;
        // pairs over all passes: (T - 1) + 2 (T - 1) + 4 (T - 1) ...
        let gaps = (shape[0] - 1) as usize;
        let total: usize = (0..doublings).map(|d| gaps << d).sum();
        let mut done = 0;
        for _ in 0..doublings {
            let t = clip.size()[0];
            let mut out = Vec::with_capacity((2 * t - 1) as usize);
            for i in 0..t - 1 {
                job.check(control)?;
                let (a, b) = (clip.narrow(0, i, 1), clip.narrow(0, i + 1, 1));
                let middle = self
                    .rife
                    .interpolate(&a, &b, 0.5, RifeOptions::default())
                    .map_err(model_err)?;
                out.push(a);
                out.push(middle);
                done += 1;
                job.progress(done, total);
            }
            out.push(clip.narrow(0, t - 1, 1));
            clip = Tensor::cat(&out, 0);
        }
        let pixels = (clip * 255.0).round().clamp(0.0, 255.0).to_kind(Kind::Uint8);
        let shape = shape_of(&pixels);
        let bytes = Vec::<u8>::try_from(pixels.flatten(0, -1)).map_err(model_err)?;
        Ok(HostTensor::new(DType::U8, shape, bytes)?)
    }
}
