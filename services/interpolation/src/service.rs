//! The plain service trait [`Interpolation`] (no tonic types), its request, and
//! [`WorkerInterpolation`]: the models on the worker, the tensor store and the stage cache
//! (`storyreel_stage::outputs`: a cache hit answers without the worker; otherwise the
//! frames are stored as the call's entry, or under
//! `storyreel:{job}:interpolation:{scene}:frames` when the cache is off for the call).

use crate::{
    error::InterpolationError,
    model::{InterpolationJob, Work},
};
use serde::Serialize;
use std::{sync::Arc, time::Instant};
use storyreel_nn::clip_text::ClipTokenizer;
use storyreel_runtime::seed::SeedOrigin;
use storyreel_runtime::{JobInfo, ModelInfo, ModelState};
use storyreel_stage::{
    ModelWorker,
    outputs::{JobChannel, OutputPlace, StageEvents, StageOutput, answered, forward},
    scheduler::SchedulerChoice,
};
use storyreel_tensors::{StageCache, TensorRef};
use tokio::sync::watch;

/// Where frames are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Space {
    /// The masked-conditioning latent model; 4x per pass.
    Latent,
    /// RIFE on pixels; 2x per pass.
    Pixel,
}

/// A validated Interpolate.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpolateRequest {
    pub job: JobInfo,
    pub deadline: Option<Instant>,
    pub key_frames: TensorRef,
    pub space: Space,
    /// 4 or 16.
    pub factor: u32,
    /// LATENT only.
    pub prompt: String,
    pub seed: u64,
    pub seed_origin: SeedOrigin,
    pub steps: u32,
    pub scheduler: SchedulerChoice,
}

#[async_trait::async_trait]
pub trait Interpolation: Send + Sync {
    /// Streams the progress of an interpolation, then the stored frames.
    async fn interpolate(&self, request: InterpolateRequest) -> Result<StageEvents, InterpolationError>;
    /// CLIP tokens of `text`, start and end included (request validation).
    fn count_tokens(&self, text: &str) -> Result<usize, String>;
    /// Readiness follows this.
    fn model_state(&self) -> watch::Receiver<ModelState>;
}

pub struct WorkerInterpolation {
    worker: Arc<ModelWorker<InterpolationJob>>,
    tokenizer: ClipTokenizer,
    cache: StageCache,
}

/// What a call's cache key covers besides its key frames and the models.
#[derive(Serialize)]
struct CacheParams<'a> {
    layout: u32,
    space: Space,
    factor: u32,
    /// LATENT only (the pixel path ignores them).
    latent: Option<(&'a str, u64, u32, SchedulerChoice)>,
}

impl WorkerInterpolation {
    pub fn new(worker: ModelWorker<InterpolationJob>, tokenizer: ClipTokenizer, cache: StageCache) -> Self {
        Self {
            worker: Arc::new(worker),
            tokenizer,
            cache,
        }
    }

    /// Waits until the models are loaded; why, when they could not be.
    pub async fn wait_ready(&self) -> Result<ModelInfo, InterpolationError> {
        Ok(self.worker.wait_ready().await?)
    }
}

#[async_trait::async_trait]
impl Interpolation for WorkerInterpolation {
    async fn interpolate(&self, request: InterpolateRequest) -> Result<StageEvents, InterpolationError> {
        let model = self.worker.ready_model()?;
        request.job.check_model_pin(&model)?;
        let latent = request.space == Space::Latent;
        let params = CacheParams {
            layout: 1,
            space: request.space,
            factor: request.factor,
            latent: latent.then_some((
                request.prompt.as_str(),
                request.seed,
                request.steps,
                request.scheduler,
            )),
        };
        // a latent call whose noise nobody seeded asks for a new sample
        let bypass = request.job.bypass_cache || (latent && request.seed_origin == SeedOrigin::Random);
        let place = OutputPlace {
            cache: self.cache.clone(),
            key: self
                .cache
                .key(&model.cache_identity(), &params, &[&request.key_frames], bypass)?,
            stage: crate::STAGE,
            name: "frames",
            job: request.job.clone(),
        };
        if let Some(tensor) = place.cached().await? {
            return Ok(answered(StageOutput::cache_hit(tensor, model)));
        }
        let keys = self.cache.store().get(&request.key_frames).await?;
        let work = match request.space {
            Space::Latent => Work::Latent {
                keys,
                prompt: request.prompt,
                seed: request.seed,
                steps: request.steps,
                scheduler: request.scheduler,
                passes: if request.factor == 16 { 2 } else { 1 },
            },
            Space::Pixel => Work::Pixel {
                frames: keys,
                doublings: if request.factor == 16 { 4 } else { 2 },
            },
        };
        let (channel, events) = JobChannel::new(request.deadline);
        let (submitted, cancelled) = (channel.enqueued, channel.cancelled.clone());
        self.worker.submit(InterpolationJob { work, channel })?;
        Ok(forward(events, place, model, submitted, cancelled))
    }

    fn count_tokens(&self, text: &str) -> Result<usize, String> {
        self.tokenizer.count_tokens(text).map_err(|e| e.to_string())
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }
}
