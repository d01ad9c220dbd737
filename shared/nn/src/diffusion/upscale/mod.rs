//! Text-guided x4 super-resolution, as diffusers' `StableDiffusionUpscalePipeline` (the
//! cascaded diffusion model's upscaler, stabilityai/stable-diffusion-x4-upscaler):
//!
//! 1. the prompt and the negative prompt are encoded by CLIP (classifier-free guidance
//!    when `guidance_scale > 1`, unconditional states first);
//! 2. the low-resolution image, in [-1, 1], is noised to `noise_level` by the DDPM
//!    `low_res_scheduler` (`sqrt(a) x + sqrt(1 - a) n`), and the level is the UNet's class
//!    label (noise-level conditioning);
//! 3. latents of the image's own size start as noise; at every step they are concatenated
//!    with the noised image (4 + 3 channels), the UNet predicts, guidance combines, the
//!    scheduler steps;
//! 4. the VAE decodes `latents / 0.08333` (the upscaler VAE's scaling factor, which
//!    diffusers imposes whatever the config says) to an image 4x the size (the VAE's
//!    upscale factor), mapped to [0, 1] and then to u8.
//!
//! Frames are upscaled one at a time, each optionally in overlapping tiles ([`tiles`]);
//! the noise of a frame is drawn at full frame size from the seed and each tile takes its
//! window of it, so tiling changes nothing but the seams. diffusers resizes an image whose
//! sides are not multiples of the VAE factor down to them; here every size is taken as it
//! is (the latents have the image's size; the UNet forwards odd sizes).
//!
//! - [`load`]: [`UpscalePaths`], strict loading of the diffusers directory, the DDPM
//!   [`LowResScheduler`];
//! - [`tiles`]: [`TileOptions`] and the blending of tile outputs;
//! - [`tiny`]: the seeded tiny random upscaler `make models` writes.

pub mod load;
pub mod tiles;
pub mod tiny;

use std::ops::ControlFlow;

use tch::{Kind, Tensor};

pub use load::{LowResScheduler, LowResSchedulerConfig, UpscalePaths};
pub use tiles::TileOptions;

use super::{
    DiffusionError,
    pipeline::{PromptEncoder, gaussian_noise},
    schedulers::{SchedulerConfig, from_config},
    unet::UNet,
    vae::AutoencoderKL,
};

/// The scaling factor of the x4 upscaler's VAE; diffusers' pipeline sets it whatever the
/// VAE config holds.
pub const UPSCALER_SCALING_FACTOR: f64 = 0.08333;

/// The loaded pipeline.
#[derive(Debug)]
pub struct UpscalePipeline {
    pub prompts: PromptEncoder,
    pub unet: UNet,
    pub vae: AutoencoderKL,
    /// The denoising scheduler's configuration (a request may replace it).
    pub scheduler: SchedulerConfig,
    pub low_res: LowResScheduler,
    /// The highest `noise_level` accepted (`model_index.json`; 350 for the published one).
    pub max_noise_level: i64,
}

/// Noise to use instead of the seeded draw (for parity with a reference run).
#[derive(Debug, Clone, Copy)]
pub struct UpscaleNoise<'a> {
    /// (F, 3, H, W): added to the low-resolution frames.
    pub image: &'a Tensor,
    /// (F, latent_channels, H, W): the initial latents (before `init_noise_sigma`).
    pub latents: &'a Tensor,
}

/// One upscaling request over a batch of frames.
#[derive(Debug, Clone, Copy)]
pub struct UpscaleRequest<'a> {
    pub prompt: &'a str,
    pub negative_prompt: &'a str,
    pub steps: usize,
    /// Classifier-free guidance runs when > 1 (as diffusers).
    pub guidance_scale: f64,
    /// 0..=`max_noise_level`.
    pub noise_level: i64,
    pub seed: u64,
    /// `None`: the pipeline's own scheduler.
    pub scheduler: Option<&'a SchedulerConfig>,
    /// `None`: each frame in one piece.
    pub tiles: Option<TileOptions>,
    /// `None`: noise drawn from `seed`.
    pub noise: Option<UpscaleNoise<'a>>,
}

/// Where a run is, reported after each denoising step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpscaleProgress {
    /// 0-based frame and tile, and their counts (tiles per frame).
    pub frame: usize,
    pub frames: usize,
    pub tile: usize,
    pub tiles: usize,
    /// Steps done in this tile (1-based) and the steps per tile.
    pub step: usize,
    pub steps: usize,
}

impl UpscaleProgress {
    /// Steps done over the whole request.
    pub fn completed(&self) -> usize {
        (self.frame * self.tiles + self.tile) * self.steps + self.step
    }

    /// Steps the whole request takes.
    pub fn total(&self) -> usize {
        self.frames * self.tiles * self.steps
    }
}

/// The seed of frame `frame`'s noise.
pub fn frame_seed(seed: u64, frame: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(frame as u64)
}

/// What every tile of a request shares.
struct Shared<'a> {
    context: Tensor,
    guided: bool,
    guidance_scale: f64,
    steps: usize,
    noise_level: i64,
    scheduler: &'a SchedulerConfig,
}

impl UpscalePipeline {
    /// The output size over the input size (the VAE's upscale factor: 4 for the x4
    /// upscaler).
    pub fn scale(&self) -> i64 {
        self.vae.config().downscale()
    }

    /// Upscales u8 (F, 3, H, W) frames to u8 (F, 3, sH, sW), s = [`Self::scale`].
    /// `callback` runs after every step and may cancel ([`DiffusionError::Cancelled`]).
    pub fn upscale(
        &self,
        frames: &Tensor,
        request: &UpscaleRequest<'_>,
        callback: &mut dyn FnMut(UpscaleProgress, &Tensor) -> ControlFlow<()>,
    ) -> Result<Tensor, DiffusionError> {
        let unit = self.upscale_unit(frames, request, callback)?;
        Ok((unit * 255.0).round().clamp(0.0, 255.0).to_kind(Kind::Uint8))
    }

    /// [`Self::upscale`] before quantisation: f32 (F, 3, sH, sW) in [0, 1], on the CPU.
    pub fn upscale_unit(
        &self,
        frames: &Tensor,
        request: &UpscaleRequest<'_>,
        callback: &mut dyn FnMut(UpscaleProgress, &Tensor) -> ControlFlow<()>,
    ) -> Result<Tensor, DiffusionError> {
        let (f, h, w) = self.check(frames, request)?;
        let device = self.unet.device();
        let latent_channels = self.vae.config().latent_channels;
        let (cond, uncond) = self
            .prompts
            .encode_pair(&[request.prompt], &[request.negative_prompt])?;
        let guided = request.guidance_scale > 1.0;
        let shared = Shared {
            context: if guided {
                Tensor::cat(&[uncond, cond], 0)
            } else {
                cond
            },
            guided,
            guidance_scale: request.guidance_scale,
            steps: request.steps,
            noise_level: request.noise_level,
            scheduler: request.scheduler.unwrap_or(&self.scheduler),
        };
        let tiles = request.tiles.unwrap_or(TileOptions {
            tile: h.max(w),
            overlap: 0,
        });
        tiles.validate()?;
        let grid = tiles::grid(h, w, tiles);
        let scale = self.scale();
        let mut outputs = Vec::with_capacity(f as usize);
        tch::no_grad(|| {
            for i in 0..f {
                // [0, 255] -> [0, 1] -> [-1, 1], as diffusers' image processor
                let image = (frames.get(i).to_kind(Kind::Float) / 255.0 * 2.0 - 1.0).to_device(device);
                let (image_noise, latent_noise) = match request.noise {
                    Some(noise) => (
                        noise.image.get(i).to_device(device),
                        noise.latents.get(i).to_device(device),
                    ),
                    None => {
                        // image noise first, then the latents', as diffusers draws them
                        let seed = frame_seed(request.seed, i as usize);
                        let noise = gaussian_noise(seed, &[3 + latent_channels, h, w], device);
                        (noise.narrow(0, 0, 3), noise.narrow(0, 3, latent_channels))
                    }
                };
                let mut blend = tiles::Blend::new(3, h, w, scale, tiles.overlap, device);
                for (t, &(rows, columns)) in grid.iter().enumerate() {
                    let window = |x: &Tensor| {
                        x.narrow(1, rows.start, rows.len())
                            .narrow(2, columns.start, columns.len())
                            .unsqueeze(0)
                    };
                    let mut on_step = |step: usize, latents: &Tensor| {
                        let progress = UpscaleProgress {
                            frame: i as usize,
                            frames: f as usize,
                            tile: t,
                            tiles: grid.len(),
                            step,
                            steps: request.steps,
                        };
                        match callback(progress, latents) {
                            ControlFlow::Continue(()) => Ok(()),
                            ControlFlow::Break(()) => Err(DiffusionError::Cancelled {
                                completed: progress.completed(),
                                total: progress.total(),
                            }),
                        }
                    };
                    let latents = self.denoise(
                        &shared,
                        &window(&image),
                        &window(&image_noise),
                        &window(&latent_noise),
                        &mut on_step,
                    )?;
                    let unit = self.decode(&latents)?;
                    blend.add(rows, columns, &unit.squeeze_dim(0));
                }
                outputs.push(blend.finish().to_device(tch::Device::Cpu));
            }
            Ok(Tensor::stack(&outputs, 0))
        })
    }

    /// The denoising loop on one (1, 3, h, w) image in [-1, 1]; returns the final latents.
    fn denoise(
        &self,
        shared: &Shared<'_>,
        image: &Tensor,
        image_noise: &Tensor,
        latent_noise: &Tensor,
        on_step: &mut dyn FnMut(usize, &Tensor) -> Result<(), DiffusionError>,
    ) -> Result<Tensor, DiffusionError> {
        let image = self.low_res.add_noise(image, image_noise, shared.noise_level)?;
        let batch = if shared.guided { 2 } else { 1 };
        let image = if shared.guided {
            Tensor::cat(&[&image, &image], 0)
        } else {
            image
        };
        let labels = Tensor::from_slice(&vec![shared.noise_level; batch]).to_device(image.device());
        let mut scheduler = from_config(shared.scheduler)?;
        scheduler.set_timesteps(shared.steps)?;
        let mut latents = latent_noise * scheduler.init_noise_sigma();
        for (k, &t) in scheduler.timesteps().iter().enumerate() {
            let model_in = if shared.guided {
                Tensor::cat(&[&latents, &latents], 0)
            } else {
                latents.shallow_clone()
            };
            let model_in = scheduler.scale_model_input(&model_in, k);
            let model_in = Tensor::cat(&[&model_in, &image], 1);
            let pred = self
                .unet
                .forward_with_class(&model_in, &Tensor::from(t), &shared.context, Some(&labels))?
                .to_kind(latents.kind());
            let pred = if shared.guided {
                let halves = pred.chunk(2, 0);
                &halves[0] + (&halves[1] - &halves[0]) * shared.guidance_scale
            } else {
                pred
            };
            latents = scheduler.step(&pred, k, &latents);
            on_step(k + 1, &latents)?;
        }
        Ok(latents)
    }

    /// (N, C, h, w) latents -> (N, 3, sh, sw) f32 in [0, 1].
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor, DiffusionError> {
        let image = self.vae.decode(&(latents / UPSCALER_SCALING_FACTOR), 1)?;
        Ok((image.to_kind(Kind::Float) * 0.5 + 0.5).clamp(0.0, 1.0))
    }

    /// The request against the frames and the models; (F, H, W).
    fn check(&self, frames: &Tensor, r: &UpscaleRequest<'_>) -> Result<(i64, i64, i64), DiffusionError> {
        let size = frames.size();
        let [f, 3, h, w] = size[..] else {
            return Err(DiffusionError::input(
                "frames",
                format!("must be (F, 3, H, W), got shape {size:?}"),
            ));
        };
        if frames.kind() != Kind::Uint8 {
            return Err(DiffusionError::input(
                "frames",
                format!("must be u8, got {:?}", frames.kind()),
            ));
        }
        if f < 1 || h < 1 || w < 1 {
            return Err(DiffusionError::input(
                "frames",
                format!("must not be empty, got shape {size:?}"),
            ));
        }
        if r.steps == 0 {
            return Err(DiffusionError::input("steps", "must be >= 1"));
        }
        if !(r.guidance_scale.is_finite() && r.guidance_scale >= 0.0) {
            return Err(DiffusionError::input(
                "guidance_scale",
                format!("must be finite and >= 0, got {}", r.guidance_scale),
            ));
        }
        if !(0..=self.max_noise_level).contains(&r.noise_level) {
            return Err(DiffusionError::input(
                "noise_level",
                format!("must be in 0..={}, got {}", self.max_noise_level, r.noise_level),
            ));
        }
        if let Some(noise) = r.noise {
            let latent = self.vae.config().latent_channels;
            for (input, tensor, c) in [
                ("noise.image", noise.image, 3),
                ("noise.latents", noise.latents, latent),
            ] {
                if tensor.size() != [f, c, h, w] {
                    return Err(DiffusionError::input(
                        input,
                        format!("must have shape {:?}, got {:?}", [f, c, h, w], tensor.size()),
                    ));
                }
            }
        }
        Ok((f, h, w))
    }
}
