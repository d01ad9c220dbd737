//! The denoising loop of `AnimateDiffPipeline` (and of the SD pipelines for images):
//! classifier-free guidance (the paper's eq. 5: `uncond + s * (cond - uncond)`), an
//! optional start from given latents at a strength (diffusers' img2img / video-to-video
//! rule: noise them to the level of the first step kept, then denoise the rest: the
//! paper's reference-guided generation), and a per-step callback that reports progress
//! and may cancel.

use std::ops::ControlFlow;

use tch::Tensor;

use crate::diffusion::{DiffusionError, schedulers::Scheduler, unet::UNet};

/// What the loop needs besides the models.
#[derive(Debug)]
pub struct SampleInputs<'a> {
    /// (B, S, D) text states of the prompts.
    pub cond: &'a Tensor,
    /// (B, S, D) text states of the negative prompts; used when `guidance_scale > 1`.
    pub uncond: Option<&'a Tensor>,
    /// (B, C, F, h, w) standard normal noise: the initial latents (scaled by the
    /// scheduler's `init_noise_sigma`), or the noise added to `init_latents`.
    pub noise: &'a Tensor,
    /// (B, C, F, h, w) latents to start from (already scaled by the VAE's scaling factor),
    /// with `strength` in (0, 1]: 1 discards them entirely.
    pub init_latents: Option<(&'a Tensor, f64)>,
    pub steps: usize,
    /// Classifier-free guidance scale `s`; guidance runs when `s > 1` (as diffusers).
    pub guidance_scale: f64,
}

/// Reported after each step.
#[derive(Debug, Clone, Copy)]
pub struct StepProgress {
    /// Steps done so far in this run (1-based) and the steps this run takes.
    pub completed: usize,
    pub total: usize,
    pub timestep: f64,
}

/// The index of the first step run for `strength` (diffusers' `get_timesteps`): the last
/// `floor(steps * strength)` steps are run.
pub fn first_step(steps: usize, strength: f64) -> Result<usize, DiffusionError> {
    if !(strength > 0.0 && strength <= 1.0) {
        return Err(DiffusionError::input(
            "strength",
            format!("must be in (0, 1], got {strength}"),
        ));
    }
    let kept = ((steps as f64 * strength) as usize).min(steps);
    if kept == 0 {
        return Err(DiffusionError::input(
            "strength",
            format!("{strength} x {steps} steps leaves no step to run: raise one of them"),
        ));
    }
    Ok(steps - kept)
}

/// Runs the loop and returns the final (B, C, F, h, w) latents. `callback` may return
/// `ControlFlow::Break(())` to cancel ([`DiffusionError::Cancelled`]).
pub fn sample_video(
    unet: &UNet,
    scheduler: &mut dyn Scheduler,
    inputs: &SampleInputs<'_>,
    callback: &mut dyn FnMut(StepProgress, &Tensor) -> ControlFlow<()>,
) -> Result<Tensor, DiffusionError> {
    let noise = inputs.noise;
    let size = noise.size();
    if size.len() != 5 {
        return Err(DiffusionError::input(
            "noise",
            format!("must be (B, C, F, h, w), got shape {size:?}"),
        ));
    }
    let b = size[0];
    let guided = inputs.guidance_scale > 1.0;
    if inputs.cond.size().first() != Some(&b) {
        return Err(DiffusionError::input(
            "prompt_embeds",
            format!(
                "must hold {b} prompts (one per video), got shape {:?}",
                inputs.cond.size()
            ),
        ));
    }
    let context = match (guided, inputs.uncond) {
        (false, _) => inputs.cond.shallow_clone(),
        (true, Some(uncond)) if uncond.size() == inputs.cond.size() => Tensor::cat(&[uncond, inputs.cond], 0),
        (true, Some(uncond)) => {
            return Err(DiffusionError::input(
                "negative_prompt_embeds",
                format!(
                    "must have the prompts' shape {:?}, got {:?}",
                    inputs.cond.size(),
                    uncond.size()
                ),
            ));
        }
        (true, None) => {
            return Err(DiffusionError::input(
                "negative_prompt_embeds",
                "are needed for classifier-free guidance (guidance_scale > 1)",
            ));
        }
    };

    scheduler.set_timesteps(inputs.steps)?;
    let timesteps = scheduler.timesteps();
    let (start, mut latents) = match inputs.init_latents {
        None => (0, noise * scheduler.init_noise_sigma()),
        Some((init, strength)) => {
            if init.size() != size {
                return Err(DiffusionError::input(
                    "init_latents",
                    format!("must have the noise's shape {size:?}, got {:?}", init.size()),
                ));
            }
            let start = first_step(inputs.steps, strength)?;
            (start, scheduler.add_noise(init, noise, start))
        }
    };
    let total = timesteps.len() - start;
    tch::no_grad(|| {
        for (k, &t) in timesteps.iter().enumerate().skip(start) {
            let model_in = if guided {
                Tensor::cat(&[&latents, &latents], 0)
            } else {
                latents.shallow_clone()
            };
            let model_in = scheduler.scale_model_input(&model_in, k);
            let pred = unet.forward_video(&model_in, &Tensor::from(t), &context)?;
            let pred = pred.to_kind(latents.kind());
            let pred = if guided {
                let halves = pred.chunk(2, 0);
                &halves[0] + (&halves[1] - &halves[0]) * inputs.guidance_scale
            } else {
                pred
            };
            latents = scheduler.step(&pred, k, &latents);
            let progress = StepProgress {
                completed: k - start + 1,
                total,
                timestep: t,
            };
            if callback(progress, &latents).is_break() {
                return Err(DiffusionError::Cancelled {
                    completed: progress.completed,
                    total,
                });
            }
        }
        Ok(latents)
    })
}
