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
    model::{Latents, SampleEvent, SampleJob},
};
use futures::{StreamExt, stream::BoxStream};
use serde::Serialize;
use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};
use storyreel_llm::{CancelOnDrop, seed::SeedOrigin};
use storyreel_nn::clip_text::ClipTokenizer;
use storyreel_proto::common::Scheduler;
use storyreel_runtime::{JobInfo, ModelInfo, ModelState, StageStats};
use storyreel_stage::ModelWorker;
use storyreel_tensors::{DType, StageCache, Tensor, TensorRef, f16, stage_cache::find_output};
use tokio::sync::{mpsc, watch};

/// The scheduler a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SchedulerChoice {
    #[serde(serialize_with = "scheduler_name")]
    pub kind: Scheduler,
    pub karras_sigmas: bool,
}

fn scheduler_name<S: serde::Serializer>(kind: &Scheduler, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str_name())
}

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
    /// The call's one deadline (the adapter sets it).
    pub deadline: Option<Instant>,
    pub job: JobInfo,
}

/// The key frames of a scene.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyframeResult {
    pub latents: TensorRef,
    pub model: ModelInfo,
    pub seed: u64,
    pub steps_run: u32,
    pub stats: StageStats,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyframeEvent {
    /// `step` of `total` denoising steps done.
    Progress { step: u32, total: u32 },
    /// Last, once.
    Finished(Box<KeyframeResult>),
}

pub type KeyframeEvents = BoxStream<'static, Result<KeyframeEvent, KeyframeError>>;

#[async_trait::async_trait]
pub trait Keyframe: Send + Sync {
    /// Streams the progress of a generation, then its result.
    async fn generate(&self, request: KeyframeRequest) -> Result<KeyframeEvents, KeyframeError>;
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

/// The output's name in a cache entry and its tensor key.
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

/// Stores the latents: as the cache entry at `key`, else under the job.
async fn store_latents(
    cache: &StageCache,
    latents: Latents,
    key: Option<&storyreel_tensors::CacheKey>,
    job: &JobInfo,
) -> Result<TensorRef, KeyframeError> {
    let tensor = Tensor::from_slice(latents.shape, &latents.values)?;
    if let Some(key) = key {
        let refs = cache.fill(key, &[(LATENTS.to_string(), tensor)]).await?;
        return find_output(&refs, LATENTS)
            .ok_or_else(|| KeyframeError::Model(format!("the cache entry {key} has no `{LATENTS}`")));
    }
    let store = cache.store();
    let scene = job.scene_index.unwrap_or(0);
    let tensor_key = store
        .keys()
        .tensor(&job.job_id_for_keys(), crate::STAGE, scene, LATENTS)?;
    Ok(store.put(&tensor_key, &tensor, None).await?)
}

/// Steps that run: all, or the part of the schedule a reference's strength keeps.
fn steps_run(request: &KeyframeRequest) -> u32 {
    match &request.reference {
        Some(reference) => ((request.steps as f32 * reference.strength) as u32).clamp(1, request.steps),
        None => request.steps,
    }
}

#[async_trait::async_trait]
impl Keyframe for WorkerKeyframe {
    async fn generate(&self, request: KeyframeRequest) -> Result<KeyframeEvents, KeyframeError> {
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
        let key = self
            .cache
            .key(&model.cache_identity(), &params, &inputs, bypass)?;
        let steps = steps_run(&request);
        if let Some(key) = &key
            && let Some(refs) = self.cache.lookup(key).await?
            && let Some(latents) = find_output(&refs, LATENTS)
        {
            let result = KeyframeResult {
                latents,
                model,
                seed: request.seed,
                steps_run: steps,
                stats: StageStats {
                    cache_hit: true,
                    ..StageStats::default()
                },
            };
            return Ok(futures::stream::iter([Ok(KeyframeEvent::Finished(Box::new(result)))]).boxed());
        }
        let reference = self.reference(&request).await?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let (events, mut worker_events) = mpsc::channel(256);
        let started = Instant::now();
        self.worker.submit(SampleJob {
            prompt: request.prompt.clone(),
            negative_prompt: request.negative_prompt.clone(),
            seed: request.seed,
            steps: request.steps,
            guidance_scale: request.guidance_scale,
            scheduler: request.scheduler,
            frames: request.frames,
            width: request.width,
            height: request.height,
            reference,
            deadline: request
                .deadline
                .unwrap_or_else(|| started + Duration::from_secs(24 * 3600)),
            cancelled: cancelled.clone(),
            events,
            enqueued: started,
        })?;
        let (tx, rx) = mpsc::channel(64);
        let cache = self.cache.clone();
        tokio::spawn(async move {
            let mut queue_time = Duration::ZERO;
            while let Some(event) = worker_events.recv().await {
                let out = match event {
                    SampleEvent::Started { queue_time: q } => {
                        queue_time = q;
                        continue;
                    }
                    SampleEvent::Step { completed, total } => Ok(KeyframeEvent::Progress {
                        step: completed,
                        total,
                    }),
                    SampleEvent::Done(Err(err)) => Err(err),
                    SampleEvent::Done(Ok(latents)) => {
                        store_latents(&cache, latents, key.as_ref(), &request.job)
                            .await
                            .map(|latents| {
                                KeyframeEvent::Finished(Box::new(KeyframeResult {
                                    latents,
                                    model: model.clone(),
                                    seed: request.seed,
                                    steps_run: steps,
                                    stats: StageStats {
                                        cache_hit: false,
                                        queue_time,
                                        compute_time: started.elapsed().saturating_sub(queue_time),
                                    },
                                }))
                            })
                    }
                };
                let last = !matches!(out, Ok(KeyframeEvent::Progress { .. }));
                if tx.send(out).await.is_err() || last {
                    return;
                }
            }
        });
        let guard = CancelOnDrop(cancelled);
        Ok(
            futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
                rx.recv().await.map(|item| (item, (rx, guard)))
            })
            .boxed(),
        )
    }

    fn count_tokens(&self, text: &str) -> Result<usize, String> {
        self.tokenizer.count_tokens(text).map_err(|e| e.to_string())
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }
}
