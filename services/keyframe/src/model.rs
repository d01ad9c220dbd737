//! The video pipeline on the stage's model worker: one [`SampleJob`] at a time, progress
//! after every denoising step, and a stop at the next step once the caller is gone, its
//! deadline has passed or the worker is stopping.

use crate::{error::KeyframeError, service::SchedulerChoice};
use std::ops::ControlFlow;
use storyreel_nn::diffusion::{
    DiffusionError,
    pipeline::{VideoPipeline, VideoRequest},
};
use storyreel_stage::{BatchControl, StageModel, WorkerError, WorkerJob, outputs::JobChannel};
use storyreel_tensors::Tensor as HostTensor;
use tch::Tensor;

/// Reference latents as the worker takes them: f32 values, row-major, and their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Latents {
    pub values: Vec<f32>,
    pub shape: Vec<usize>,
}

/// One video to sample.
pub struct SampleJob {
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
    pub channel: JobChannel,
}

impl WorkerJob for SampleJob {
    fn fail(&mut self, error: WorkerError) {
        self.channel.done(Err(error.into()));
    }
}

/// The pipeline, as the worker's model.
pub struct KeyframeModel {
    pub pipeline: VideoPipeline,
}

impl StageModel for KeyframeModel {
    type Job = SampleJob;

    fn run_batch(&mut self, batch: &mut [SampleJob], control: &BatchControl) -> Result<(), String> {
        for job in batch.iter() {
            job.channel.started(control);
            let result = job
                .channel
                .check(control)
                .and_then(|()| self.sample(job, control));
            job.channel.done(result);
        }
        Ok(())
    }
}

impl KeyframeModel {
    fn sample(&mut self, job: &SampleJob, control: &BatchControl) -> Result<HostTensor, KeyframeError> {
        let default = self.pipeline.scheduler.clone();
        self.pipeline.scheduler = job.scheduler.apply(&default);
        let result = self.run(job, control);
        self.pipeline.scheduler = default;
        result
    }

    fn run(&self, job: &SampleJob, control: &BatchControl) -> Result<HostTensor, KeyframeError> {
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
        let mut callback = |progress: storyreel_nn::diffusion::pipeline::StepProgress, _: &Tensor| {
            job.channel.progress(progress.completed, progress.total);
            if job.channel.stopped(control) {
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
