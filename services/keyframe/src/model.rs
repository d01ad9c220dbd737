//! The video pipeline on the stage's model worker: one [`SampleJob`] at a time, progress
//! after every denoising step, and a stop at the next step once the caller is gone, its
//! deadline has passed or the worker is stopping.

use crate::{error::KeyframeError, service::SchedulerChoice};
use std::ops::ControlFlow;
use storyreel_nn::diffusion::{
    DiffusionError,
    pipeline::{VideoPipeline, VideoRequest},
};
use storyreel_stage::{
    BatchControl, StageModel,
    outputs::{ChannelJob, JobChannel, run_each},
};
use storyreel_tensors::Tensor as HostTensor;
use tch::Tensor;

/// Reference latents as the worker takes them: f32 values, row-major, and their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Latents {
    pub values: Vec<f32>,
    pub shape: Vec<usize>,
}

/// One video to sample.
pub struct Sample {
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
    pub steps: u32,
    pub guidance_scale: f32,
    pub scheduler: SchedulerChoice,
    pub frames: u32,
    pub width: u32,
    pub height: u32,
    /// Scaled reference latents, (1, 4, F or 1, h, w), and the strength.
    pub reference: Option<(Latents, f32)>,
    /// A preview every this many steps (and after the last); 0: none.
    pub preview_every: u32,
}

/// The usual fixed linear map from Stable Diffusion's 4 latent channels to RGB (one row
/// per channel), for previews: a look at the composition, not a decode.
const LATENT_RGB: [[f32; 3]; 4] = [
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
];

/// u8 RGB (F, 3, h, w) of latents (1, 4, F, h, w) by [`LATENT_RGB`].
pub fn preview(latents: &Tensor) -> Result<HostTensor, KeyframeError> {
    let size = latents.size();
    if size.len() != 5 || size[1] != 4 {
        return Err(KeyframeError::Model(format!(
            "no preview of latents shaped {size:?}"
        )));
    }
    let flat: Vec<f32> = LATENT_RGB.iter().flatten().copied().collect();
    let map = Tensor::from_slice(&flat)
        .reshape([4, 3])
        .to_device(latents.device());
    // (4, F, h, w) -> (F, h, w, 4) x (4, 3) -> (F, 3, h, w), [-1, 1] -> [0, 255]
    let rgb = latents
        .squeeze_dim(0)
        .to_kind(tch::Kind::Float)
        .permute([1, 2, 3, 0])
        .matmul(&map)
        .permute([0, 3, 1, 2]);
    let pixels = ((rgb + 1.0) * 127.5)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(tch::Kind::Uint8);
    let shape: Vec<usize> = pixels.size().iter().map(|&d| d as usize).collect();
    let bytes =
        Vec::<u8>::try_from(pixels.flatten(0, -1)).map_err(|e| KeyframeError::Model(e.to_string()))?;
    Ok(HostTensor::new(storyreel_tensors::DType::U8, shape, bytes)?)
}

/// A video to sample, on the worker's queue.
pub type SampleJob = ChannelJob<Sample>;

/// The pipeline, as the worker's model.
pub struct KeyframeModel {
    pub pipeline: VideoPipeline,
}

impl StageModel for KeyframeModel {
    type Job = SampleJob;

    fn run_batch(&mut self, batch: &mut [SampleJob], control: &BatchControl) -> Result<(), String> {
        run_each(batch, control, |sample, channel| {
            self.sample(sample, channel, control)
        });
        Ok(())
    }
}

impl KeyframeModel {
    fn sample(
        &mut self,
        job: &Sample,
        channel: &JobChannel,
        control: &BatchControl,
    ) -> Result<HostTensor, KeyframeError> {
        let default = self.pipeline.scheduler.clone();
        self.pipeline.scheduler = job.scheduler.apply(&default);
        let result = self.run(job, channel, control);
        self.pipeline.scheduler = default;
        result
    }

    fn run(
        &self,
        job: &Sample,
        channel: &JobChannel,
        control: &BatchControl,
    ) -> Result<HostTensor, KeyframeError> {
        let device = self.pipeline.unet.device();
        let init = job.reference.as_ref().map(|(latents, strength)| {
            let shape: Vec<i64> = latents.shape.iter().map(|&d| d as i64).collect();
            let tensor = Tensor::from_slice(&latents.values)
                .reshape(&shape)
                .to_device(device);
            // one latent image stands for every frame
            let tensor = if shape[2] == 1 {
                tensor.repeat([1, 1, job.frames as i64, 1, 1])
            } else {
                tensor
            };
            (tensor, *strength as f64)
        });
        let prompts = [job.prompt.clone()];
        let negative = [job.negative_prompt.clone()];
        let request = VideoRequest {
            prompts: &prompts,
            negative_prompts: &negative,
            seed: job.seed,
            steps: job.steps as usize,
            guidance_scale: job.guidance_scale as f64,
            frames: job.frames as i64,
            latent_height: job.height as i64 / 8,
            latent_width: job.width as i64 / 8,
            init_latents: init.as_ref().map(|(t, s)| (t, *s)),
            noise: None,
        };
        let every = job.preview_every as usize;
        let mut callback = |progress: storyreel_nn::diffusion::pipeline::StepProgress, latents: &Tensor| {
            channel.progress(progress.completed, progress.total);
            if every > 0 && (progress.completed.is_multiple_of(every) || progress.completed == progress.total)
            {
                // a preview that cannot be made is skipped, not a failed call
                if let Ok(image) = preview(latents) {
                    channel.preview(progress.completed, image);
                }
            }
            if channel.stopped(control) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let latents = self
            .pipeline
            .generate(&request, &mut callback)
            .map_err(|err| match err {
                DiffusionError::Cancelled { .. } => KeyframeError::Cancelled,
                other => KeyframeError::Model(other.to_string()),
            })?;
        let shape: Vec<usize> = latents.size().iter().map(|&d| d as usize).collect();
        let values = Vec::<f32>::try_from(latents.to_kind(tch::Kind::Float).flatten(0, -1))
            .map_err(|e| KeyframeError::Model(e.to_string()))?;
        Ok(HostTensor::from_slice(shape, &values)?)
    }
}
