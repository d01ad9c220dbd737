//! [`InterpolationModel`]: the motion UNet with the masked-conditioning input, and its
//! sampling loop (classifier-free guidance as the keyframe stage's).

use std::{ops::ControlFlow, path::Path};

use tch::{Kind, Tensor};

use super::{InputPart, InterpolationConfig};
use crate::{
    DType, DeviceSpec,
    diffusion::{
        DiffusionError,
        motion::MotionAdapterConfig,
        pipeline::StepProgress,
        schedulers::{Scheduler, SchedulerConfig, from_config},
        unet::{UNet, UNet2DConditionConfig},
    },
};

/// The config file of an interpolation model directory (beside `unet/`,
/// `motion_adapter/` and `scheduler/`, the diffusers layout of the keyframe model).
pub const CONFIG_FILE: &str = "interpolation_config.json";

#[derive(Debug)]
pub struct InterpolationModel {
    pub unet: UNet,
    pub config: InterpolationConfig,
    pub scheduler: SchedulerConfig,
}

/// One interpolation pass.
#[derive(Debug)]
pub struct InterpolationRequest<'a> {
    /// (B, C, T, h, w) key-frame latents (scaled as the UNet expects), T >= 2.
    pub key_latents: &'a Tensor,
    /// (B, S, D) text states of the prompts.
    pub cond: &'a Tensor,
    /// (B, S, D) negative prompt states, for `guidance_scale > 1`.
    pub uncond: Option<&'a Tensor>,
    /// (B * (T - 1), C, frames_between + 2, h, w) standard normal noise, one window per gap.
    pub noise: &'a Tensor,
    pub steps: usize,
    pub guidance_scale: f64,
}

impl InterpolationModel {
    /// Loads `dir/{unet,motion_adapter,scheduler}` and `dir/interpolation_config.json`.
    pub fn load(dir: &Path, device: DeviceSpec, dtype: DType) -> Result<Self, DiffusionError> {
        let unet_config = UNet2DConditionConfig::from_file(dir.join("unet/config.json"))?;
        let adapter = MotionAdapterConfig::from_file(dir.join("motion_adapter/config.json"))?;
        let config = InterpolationConfig::from_file(dir.join(CONFIG_FILE))?;
        config.validate(&unet_config)?;
        let weights = |d: &str| [dir.join(d).join("diffusion_pytorch_model.safetensors")];
        let unet = UNet::load_motion(
            &unet_config,
            &weights("unet"),
            &adapter,
            &weights("motion_adapter"),
            device,
            dtype,
        )?;
        let scheduler = SchedulerConfig::from_file(dir.join("scheduler/scheduler_config.json"))?;
        Ok(InterpolationModel {
            unet,
            config,
            scheduler,
        })
    }

    /// The mask (W, 1, F, h, w) and masked latents (W, C, F, h, w) of the W = B (T - 1)
    /// windows of `key_latents` (B, C, T, h, w): window `b (T - 1) + i` spans keys i and
    /// i + 1 of video b.
    pub fn conditioning(&self, key_latents: &Tensor) -> Result<(Tensor, Tensor), DiffusionError> {
        let size = key_latents.size();
        let [b, c, t, h, w] = size[..] else {
            return Err(DiffusionError::input(
                "key_latents",
                format!("must be (B, C, T, h, w), got shape {size:?}"),
            ));
        };
        if c != self.config.latent_channels || t < 2 || b < 1 {
            return Err(DiffusionError::input(
                "key_latents",
                format!(
                    "must have {} channels and T >= 2 frames, got shape {size:?}",
                    self.config.latent_channels
                ),
            ));
        }
        let f = self.config.window();
        let (kind, device) = (key_latents.kind(), key_latents.device());
        // (B, C, T-1, h, w) -> (B*(T-1), C, 1, h, w)
        let per_window = |x: Tensor| x.permute([0, 2, 1, 3, 4]).reshape([b * (t - 1), c, 1, h, w]);
        let first = per_window(key_latents.narrow(2, 0, t - 1));
        let last = per_window(key_latents.narrow(2, 1, t - 1));
        let between = Tensor::zeros([b * (t - 1), c, f - 2, h, w], (kind, device));
        let masked = Tensor::cat(&[first, between, last], 2);
        let mask = Tensor::zeros([b * (t - 1), 1, f, h, w], (kind, device));
        let _ = mask.narrow(2, 0, 1).fill_(1.0);
        let _ = mask.narrow(2, f - 1, 1).fill_(1.0);
        Ok((mask, masked))
    }

    /// The UNet's input: the three parts concatenated along the channels in the config's
    /// order.
    pub fn model_input(&self, sample: &Tensor, mask: &Tensor, masked: &Tensor) -> Tensor {
        let parts: Vec<&Tensor> = self
            .config
            .input_layout
            .iter()
            .map(|part| match part {
                InputPart::Sample => sample,
                InputPart::Mask => mask,
                InputPart::MaskedLatents => masked,
            })
            .collect();
        Tensor::cat(&parts, 1)
    }

    /// The noise prediction for `sample` (W, C, F, h, w) of the windows of `key_latents`;
    /// `context` (W, S, D) per window.
    pub fn forward(
        &self,
        sample: &Tensor,
        key_latents: &Tensor,
        timestep: &Tensor,
        context: &Tensor,
    ) -> Result<Tensor, DiffusionError> {
        let (mask, masked) = self.conditioning(key_latents)?;
        self.check_sample(sample, &mask)?;
        let input = self.model_input(&sample.to_kind(mask.kind()), &mask, &masked);
        self.unet.forward_video(&input, timestep, context)
    }

    fn check_sample(&self, sample: &Tensor, mask: &Tensor) -> Result<(), DiffusionError> {
        let want = [
            mask.size()[0],
            self.config.latent_channels,
            mask.size()[2],
            mask.size()[3],
            mask.size()[4],
        ];
        if sample.size() != want {
            return Err(DiffusionError::input(
                "sample",
                format!(
                    "must be {want:?} (one window per key-frame gap), got {:?}",
                    sample.size()
                ),
            ));
        }
        Ok(())
    }

    /// One pass: samples the frames between each pair of key frames and returns the
    /// (B, C, (T - 1)(frames_between + 1) + 1, h, w) latents, the key frames (as given) at
    /// every `frames_between + 1`-th position.
    pub fn interpolate(
        &self,
        request: &InterpolationRequest<'_>,
        callback: &mut dyn FnMut(StepProgress) -> ControlFlow<()>,
    ) -> Result<Tensor, DiffusionError> {
        let keys = request.key_latents;
        let (mask, masked) = self.conditioning(keys)?;
        let size = keys.size();
        let (b, c, t, h, w) = (size[0], size[1], size[2], size[3], size[4]);
        self.check_sample(request.noise, &mask)?;
        let guided = request.guidance_scale > 1.0;
        let per_window = |x: &Tensor| x.repeat_interleave_self_int(t - 1, 0, None);
        if request.cond.size().first() != Some(&b) {
            return Err(DiffusionError::input(
                "prompt_embeds",
                format!("must hold {b} prompts, got shape {:?}", request.cond.size()),
            ));
        }
        let context = match (guided, request.uncond) {
            (false, _) => per_window(request.cond),
            (true, Some(u)) if u.size() == request.cond.size() => {
                Tensor::cat(&[per_window(u), per_window(request.cond)], 0)
            }
            (true, _) => {
                return Err(DiffusionError::input(
                    "negative_prompt_embeds",
                    format!(
                        "are needed with the prompts' shape {:?} for guidance_scale > 1",
                        request.cond.size()
                    ),
                ));
            }
        };
        let (mask2, masked2) = if guided {
            (
                Tensor::cat(&[&mask, &mask], 0),
                Tensor::cat(&[&masked, &masked], 0),
            )
        } else {
            (mask.shallow_clone(), masked.shallow_clone())
        };
        let mut scheduler: Box<dyn Scheduler> = from_config(&self.scheduler)?;
        scheduler.set_timesteps(request.steps)?;
        let timesteps = scheduler.timesteps();
        let mut latents = request.noise.to_kind(Kind::Float) * scheduler.init_noise_sigma();
        let total = timesteps.len();
        tch::no_grad(|| -> Result<(), DiffusionError> {
            for (k, &step_t) in timesteps.iter().enumerate() {
                let x = if guided {
                    Tensor::cat(&[&latents, &latents], 0)
                } else {
                    latents.shallow_clone()
                };
                let x = scheduler.scale_model_input(&x, k);
                let input = self.model_input(&x.to_kind(mask2.kind()), &mask2, &masked2);
                let pred = self
                    .unet
                    .forward_video(&input, &Tensor::from(step_t), &context)?
                    .to_kind(latents.kind());
                let pred = if guided {
                    let halves = pred.chunk(2, 0);
                    &halves[0] + (&halves[1] - &halves[0]) * request.guidance_scale
                } else {
                    pred
                };
                latents = scheduler.step(&pred, k, &latents);
                let progress = StepProgress {
                    completed: k + 1,
                    total,
                    timestep: step_t,
                };
                if callback(progress).is_break() {
                    return Err(DiffusionError::Cancelled {
                        completed: k + 1,
                        total,
                    });
                }
            }
            Ok(())
        })?;
        // stitch: each window without its last frame, the given keys in place, then the last key
        let f = self.config.window();
        let frames = latents.narrow(2, 1, f - 2).reshape([b, t - 1, c, f - 2, h, w]);
        let firsts = keys
            .narrow(2, 0, t - 1)
            .permute([0, 2, 1, 3, 4])
            .unsqueeze(3)
            .to_kind(frames.kind());
        let body = Tensor::cat(&[firsts, frames], 3) // (B, T-1, C, F-1, h, w)
            .permute([0, 2, 1, 3, 4, 5])
            .reshape([b, c, (t - 1) * (f - 1), h, w]);
        Ok(Tensor::cat(
            &[body, keys.narrow(2, t - 1, 1).to_kind(Kind::Float)],
            2,
        ))
    }
}
