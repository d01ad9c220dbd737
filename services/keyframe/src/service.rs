//! The plain service trait [`Keyframe`] (no tonic types), its vocabulary, and
//! [`WorkerKeyframe`]: the video pipeline on the model worker, the tensor store and the
//! stage cache.
//!
//! A call reads its reference latents (if any) from the store, samples on the worker
//! (progress per step), and stores the key-frame latents: under a content-addressed
//! stage-cache entry for a seeded request (the same request on the same model is then a
//! cache hit, nothing sampled), else under `storyreel:{job}:keyframe:{scene}:latents`.
//! Dropping the event stream (the caller went away) stops sampling at the next step; a
//! call that did not finish stores nothing.

use crate::{
    error::KeyframeError,
    model::{Latents, Sample, SampleJob},
};
use serde::Serialize;
use std::{sync::Arc, time::Instant};
use storyreel_nn::clip_text::ClipTokenizer;
use storyreel_runtime::seed::SeedOrigin;
use storyreel_runtime::{JobInfo, ModelInfo, ModelState};
pub use storyreel_stage::scheduler::SchedulerChoice;
use storyreel_stage::{
    ModelWorker,
    outputs::{JobChannel, OutputPlace, StageEvents, StageOutput, answered, forward},
    worker::WorkerCounters,
};
use storyreel_tensors::{DType, StageCache, TensorRef, f16};
use tokio::sync::watch;

/// Latents to start from, and how strongly they are noised.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub latents: TensorRef,
    pub strength: f32,
}

/// A validated Generate.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyframeRequest {
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
    pub seed_origin: SeedOrigin,
    pub steps: u32,
    pub guidance_scale: f32,
    pub scheduler: SchedulerChoice,
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub reference: Option<Reference>,
    /// A preview every this many steps (and after the last); 0: none.
    pub preview_every: u32,
    /// The call's one deadline (the adapter sets it).
    pub deadline: Option<Instant>,
    pub job: JobInfo,
}

#[async_trait::async_trait]
pub trait Keyframe: Send + Sync {
    /// Streams the progress of a generation (denoising steps) and its previews, then its
    /// stored latents.
    async fn generate(&self, request: KeyframeRequest) -> Result<StageEvents, KeyframeError>;
    /// CLIP tokens of `text`, start and end included (request validation).
    fn count_tokens(&self, text: &str) -> Result<usize, String>;
    /// Readiness follows this.
    fn model_state(&self) -> watch::Receiver<ModelState>;
}

/// [`Keyframe`] over the model worker, the tensor store and the stage cache.
pub struct WorkerKeyframe {
    worker: Arc<ModelWorker<SampleJob>>,
    tokenizer: ClipTokenizer,
    cache: StageCache,
}

/// The output's name in a cache entry and in its tensor key.
const LATENTS: &str = "latents";
/// The cache entry layout; bumped when it changes.
const LAYOUT: u32 = 1;

#[derive(Serialize)]
struct CacheParams<'a> {
    layout: u32,
    prompt: &'a str,
    negative_prompt: &'a str,
    seed: u64,
    steps: u32,
    guidance_scale: f32,
    scheduler: SchedulerChoice,
    width: u32,
    height: u32,
    frames: u32,
    reference_strength: Option<f32>,
}

impl WorkerKeyframe {
    pub fn new(worker: ModelWorker<SampleJob>, tokenizer: ClipTokenizer, cache: StageCache) -> Self {
        Self {
            worker: Arc::new(worker),
            tokenizer,
            cache,
        }
    }

    /// Waits until the pipeline is loaded; why, when it could not be.
    pub async fn wait_ready(&self) -> Result<ModelInfo, KeyframeError> {
        Ok(self.worker.wait_ready().await?)
    }

    /// The model worker's counters (batches, failures, jobs cut short).
    pub fn worker_counters(&self) -> &Arc<WorkerCounters> {
        self.worker.counters()
    }

    /// The reference latents as f32 values.
    async fn reference(&self, request: &KeyframeRequest) -> Result<Option<(Latents, f32)>, KeyframeError> {
        let Some(reference) = &request.reference else {
            return Ok(None);
        };
        let tensor = self.cache.store().get(&reference.latents).await?;
        let values = match tensor.dtype() {
            DType::F16 => tensor.to_vec::<f16>()?.into_iter().map(f16::to_f32).collect(),
            _ => tensor.to_vec::<f32>()?,
        };
        let latents = Latents {
            values,
            shape: tensor.shape().to_vec(),
        };
        Ok(Some((latents, reference.strength)))
    }
}

/// Steps that run: all, or the part of the schedule a reference's strength keeps.
pub fn steps_run(request: &KeyframeRequest) -> u32 {
    match &request.reference {
        Some(reference) => ((request.steps as f32 * reference.strength) as u32).clamp(1, request.steps),
        None => request.steps,
    }
}

#[async_trait::async_trait]
impl Keyframe for WorkerKeyframe {
    async fn generate(&self, request: KeyframeRequest) -> Result<StageEvents, KeyframeError> {
        let model = self.worker.ready_model()?;
        request.job.check_model_pin(&model)?;
        let params = CacheParams {
            layout: LAYOUT,
            prompt: &request.prompt,
            negative_prompt: &request.negative_prompt,
            seed: request.seed,
            steps: request.steps,
            guidance_scale: request.guidance_scale,
            scheduler: request.scheduler,
            width: request.width,
            height: request.height,
            frames: request.frames,
            reference_strength: request.reference.as_ref().map(|r| r.strength),
        };
        let inputs: Vec<&TensorRef> = request.reference.iter().map(|r| &r.latents).collect();
        let bypass = request.job.bypass_cache || request.seed_origin == SeedOrigin::Random;
        let place = OutputPlace {
            cache: self.cache.clone(),
            key: self
                .cache
                .key(&model.cache_identity(), &params, &inputs, bypass)?,
            stage: crate::STAGE,
            name: LATENTS,
            job: request.job.clone(),
        };
        if let Some(tensor) = place.cached().await? {
            return Ok(answered(StageOutput::cache_hit(tensor, model)));
        }
        let reference = self.reference(&request).await?;
        let (channel, events) = JobChannel::new(request.deadline);
        let (submitted, cancelled) = (channel.enqueued, channel.cancelled.clone());
        let work = Sample {
            prompt: request.prompt,
            negative_prompt: request.negative_prompt,
            seed: request.seed,
            steps: request.steps,
            guidance_scale: request.guidance_scale,
            scheduler: request.scheduler,
            frames: request.frames,
            width: request.width,
            height: request.height,
            reference,
            preview_every: request.preview_every,
        };
        self.worker.submit(SampleJob { work, channel })?;
        Ok(forward(events, place, model, submitted, cancelled))
    }

    fn count_tokens(&self, text: &str) -> Result<usize, String> {
        self.tokenizer.count_tokens(text).map_err(|e| e.to_string())
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }
}
