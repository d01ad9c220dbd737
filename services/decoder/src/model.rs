//! The VAE, Real-ESRGAN and the diffusion x4 upscaler on the stage's model worker: one
//! [`Work`] at a time, progress after each slice, frame or denoising step, and a stop at
//! the next one once the caller is gone, its deadline has passed or the worker is
//! stopping.

use crate::{error::DecoderError, service::DiffusionUpscale};
use std::ops::ControlFlow;
use storyreel_nn::{
    diffusion::{
        DiffusionError,
        upscale::{TileOptions as UpscaleTiles, UpscalePipeline, UpscaleRequest},
        vae::AutoencoderKL,
    },
    realesrgan::{RealEsrgan, RealEsrganModel, TileOptions},
};
use storyreel_stage::{
    BatchControl, StageModel,
    outputs::{ChannelJob, JobChannel, run_each},
};
use storyreel_tensors::{DType, Tensor as HostTensor, f16};
use tch::{Kind, Tensor};

/// What to compute.
#[derive(Debug)]
pub enum Work {
    /// u8 (F, 3, H, W) pixels -> scaled latents (1, 4, F, H/8, W/8) in `dtype`; with a
    /// seed, a sample of the posterior instead of its mean.
    Encode {
        pixels: HostTensor,
        sample_seed: Option<u64>,
        dtype: DType,
    },
    /// Scaled latents (1, 4, F, h, w) -> u8 (F, 3, 8h, 8w), `slice` frames per VAE pass.
    Decode { latents: HostTensor, slice: u32 },
    /// u8 (F, 3, H, W) -> u8 (F, 3, sH, sW), frame by frame, in tiles.
    Upsample {
        pixels: HostTensor,
        model: RealEsrganModel,
        tiles: TileOptions,
    },
    /// u8 (F, 3, H, W) -> u8 (F, 3, 4H, 4W) with the diffusion upscaler, frame by frame, in
    /// blended tiles.
    DiffusionUpsample {
        pixels: HostTensor,
        params: DiffusionUpscale,
        tiles: UpscaleTiles,
    },
}

pub type DecoderJob = ChannelJob<Work>;

/// The models the worker owns.
pub struct DecoderModels {
    pub vae: AutoencoderKL,
    pub x2: RealEsrgan,
    pub x4: RealEsrgan,
    pub upscaler: UpscalePipeline,
}

impl StageModel for DecoderModels {
    type Job = DecoderJob;

    fn run_batch(&mut self, batch: &mut [DecoderJob], control: &BatchControl) -> Result<(), String> {
        run_each(batch, control, |work, channel| self.run(work, channel, control));
        Ok(())
    }
}

fn model_err(err: impl std::fmt::Display) -> DecoderError {
    DecoderError::Model(err.to_string())
}

/// A host tensor as a tch float tensor of its shape.
fn to_tch(tensor: &HostTensor) -> Result<Tensor, DecoderError> {
    let shape: Vec<i64> = tensor.shape().iter().map(|&d| d as i64).collect();
    let flat = match tensor.dtype() {
        DType::U8 => Tensor::from_slice(tensor.as_bytes()).to_kind(Kind::Float),
        DType::F16 => {
            let values: Vec<f32> = tensor.to_vec::<f16>()?.into_iter().map(f16::to_f32).collect();
            Tensor::from_slice(&values)
        }
        _ => Tensor::from_slice(&tensor.to_vec::<f32>()?),
    };
    Ok(flat.reshape(&shape))
}

/// Floats in [0, 1] as u8 pixels (rounded, clamped).
fn to_pixels(unit: &Tensor) -> Result<HostTensor, DecoderError> {
    let shape: Vec<usize> = unit.size().iter().map(|&d| d as usize).collect();
    let bytes = Vec::<u8>::try_from(
        (unit * 255.0)
            .round()
            .clamp(0.0, 255.0)
            .to_kind(Kind::Uint8)
            .flatten(0, -1),
    )
    .map_err(model_err)?;
    Ok(HostTensor::new(DType::U8, shape, bytes)?)
}

impl DecoderModels {
    fn run(&self, work: &Work, job: &JobChannel, control: &BatchControl) -> Result<HostTensor, DecoderError> {
        match work {
            Work::Encode {
                pixels,
                sample_seed,
                dtype,
            } => self.encode(pixels, *sample_seed, *dtype),
            Work::Decode { latents, slice } => self.decode(job, control, latents, *slice),
            Work::Upsample { pixels, model, tiles } => self.upsample(job, control, pixels, *model, *tiles),
            Work::DiffusionUpsample {
                pixels,
                params,
                tiles,
            } => self.diffusion_upsample(job, control, pixels, params, *tiles),
        }
    }

    fn encode(
        &self,
        pixels: &HostTensor,
        sample_seed: Option<u64>,
        dtype: DType,
    ) -> Result<HostTensor, DecoderError> {
        let images = to_tch(pixels)? / 127.5 - 1.0;
        let dist = self.vae.encode(&images).map_err(model_err)?;
        let z = match sample_seed {
            Some(seed) => {
                let noise = storyreel_nn::noise::gaussian_noise(seed, &dist.mean.size(), dist.mean.device());
                dist.sample(&noise.to_kind(dist.mean.kind()))
            }
            None => dist.mean.shallow_clone(),
        };
        // (F, 4, h, w) -> (1, 4, F, h, w)
        let latents = self
            .vae
            .scale_latents(&z)
            .permute([1, 0, 2, 3])
            .unsqueeze(0)
            .to_kind(Kind::Float)
            .contiguous();
        let shape: Vec<usize> = latents.size().iter().map(|&d| d as usize).collect();
        let values = Vec::<f32>::try_from(latents.flatten(0, -1)).map_err(model_err)?;
        Ok(match dtype {
            DType::F16 => {
                let halves: Vec<f16> = values.into_iter().map(f16::from_f32).collect();
                HostTensor::from_slice(shape, &halves)?
            }
            _ => HostTensor::from_slice(shape, &values)?,
        })
    }

    fn decode(
        &self,
        job: &JobChannel,
        control: &BatchControl,
        latents: &HostTensor,
        slice: u32,
    ) -> Result<HostTensor, DecoderError> {
        let latents = to_tch(latents)?;
        let frames = latents.size()[2];
        let mut parts = Vec::new();
        let mut done = 0;
        while done < frames {
            job.check(control)?;
            let n = (slice as i64).min(frames - done);
            let video = self
                .vae
                .decode_video(&latents.narrow(2, done, n), n)
                .map_err(model_err)?;
            // (1, 3, n, H, W) in [-1, 1] -> (n, 3, H, W) in [0, 1]
            parts.push(((video.squeeze_dim(0).permute([1, 0, 2, 3]) + 1.0) / 2.0).to_kind(Kind::Float));
            done += n;
            job.progress(done as usize, frames as usize);
        }
        to_pixels(&Tensor::cat(&parts, 0))
    }

    fn upsample(
        &self,
        job: &JobChannel,
        control: &BatchControl,
        pixels: &HostTensor,
        model: RealEsrganModel,
        tiles: TileOptions,
    ) -> Result<HostTensor, DecoderError> {
        let net = match model {
            RealEsrganModel::AnimeVideoV3X2 => &self.x2,
            _ => &self.x4,
        };
        let images = to_tch(pixels)? / 255.0;
        let frames = images.size()[0];
        let mut parts = Vec::with_capacity(frames as usize);
        for i in 0..frames {
            job.check(control)?;
            let frame = images.narrow(0, i, 1).to_device(net.device());
            parts.push(
                net.upscale(&frame, tiles)
                    .map_err(model_err)?
                    .to_kind(Kind::Float),
            );
            job.progress(i as usize + 1, frames as usize);
        }
        to_pixels(&Tensor::cat(&parts, 0))
    }

    fn diffusion_upsample(
        &self,
        job: &JobChannel,
        control: &BatchControl,
        pixels: &HostTensor,
        params: &DiffusionUpscale,
        tiles: UpscaleTiles,
    ) -> Result<HostTensor, DecoderError> {
        let shape: Vec<i64> = pixels.shape().iter().map(|&d| d as i64).collect();
        let frames = Tensor::from_slice(pixels.as_bytes()).reshape(&shape);
        let scheduler = params.scheduler.apply(&self.upscaler.scheduler);
        let request = UpscaleRequest {
            prompt: &params.prompt,
            negative_prompt: &params.negative_prompt,
            steps: params.steps as usize,
            guidance_scale: params.guidance_scale as f64,
            noise_level: params.noise_level as i64,
            seed: params.seed,
            scheduler: Some(&scheduler),
            tiles: Some(tiles),
            noise: None,
        };
        job.check(control)?;
        let mut callback = |progress: storyreel_nn::diffusion::upscale::UpscaleProgress, _: &Tensor| {
            job.progress(progress.completed(), progress.total());
            if job.stopped(control) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let out = self
            .upscaler
            .upscale(&frames, &request, &mut callback)
            .map_err(|err| match err {
                DiffusionError::Cancelled { .. } => DecoderError::Cancelled,
                other => model_err(other),
            })?;
        let shape: Vec<usize> = out.size().iter().map(|&d| d as usize).collect();
        let bytes = Vec::<u8>::try_from(out.flatten(0, -1)).map_err(model_err)?;
        Ok(HostTensor::new(DType::U8, shape, bytes)?)
    }
}
