//! The plain service trait [`Decoder`] (no tonic types), its vocabulary, and
//! [`WorkerDecoder`]: the models on the worker, the tensor store and the stage cache.
//!
//! Every call reads its input tensor from the store, runs on the worker (progress per
//! slice or frame for Decode and Upsample, per denoising step for the diffusion
//! upscaler), and stores its output: as a content-addressed stage-cache entry (the same
//! input, parameters, seed and model are then a cache hit), or, with
//! `context.bypass_cache`, `cache_outputs = false` or a diffusion seed drawn at random,
//! under `storyreel:{job}:{stage}:{scene}:{name}`. A call that did not finish stores
//! nothing.

use crate::{
    error::DecoderError,
    model::{DecoderJob, Work},
};
use serde::Serialize;
use std::{sync::Arc, time::Instant};
use storyreel_nn::clip_text::ClipTokenizer;
use storyreel_nn::{
    diffusion::upscale::TileOptions as UpscaleTiles,
    realesrgan::{RealEsrganModel, TileOptions},
};
use storyreel_runtime::seed::SeedOrigin;
use storyreel_runtime::{JobInfo, ModelInfo, ModelState, StageStats};
use storyreel_stage::{
    ModelWorker,
    outputs::{JobChannel, OutputPlace, StageEvents, StageOutput, answered, finished, forward},
    scheduler::SchedulerChoice,
    worker::WorkerCounters,
};
use storyreel_tensors::{DType, StageCache, TensorRef};
use tokio::sync::watch;

/// A validated Encode.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeRequest {
    pub job: JobInfo,
    pub deadline: Option<Instant>,
    /// u8 (F, 3, H, W).
    pub pixels: TensorRef,
    /// `Some(seed)`: sample the posterior with it.
    pub sample_seed: Option<u64>,
    pub seed_origin: SeedOrigin,
    /// F32 or F16.
    pub latent_dtype: DType,
}

/// A validated Decode.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeRequest {
    pub job: JobInfo,
    pub deadline: Option<Instant>,
    /// f16 or f32 (1, 4, F, h, w), scaled.
    pub latents: TensorRef,
    pub slice_frames: u32,
}

/// An upsampler.
#[derive(Debug, Clone, PartialEq)]
pub enum Upsampler {
    /// The input, unchanged.
    None,
    RealEsrgan(RealEsrganModel),
    /// The diffusion x4 upscaler with these options.
    Diffusion(DiffusionUpscale),
}

/// The validated options of the diffusion x4 upscaler (`DiffusionUpscaleParams`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffusionUpscale {
    pub prompt: String,
    pub negative_prompt: String,
    pub steps: u32,
    pub guidance_scale: f32,
    pub noise_level: u32,
    pub seed: u64,
    #[serde(skip)]
    pub seed_origin: SeedOrigin,
    pub scheduler: SchedulerChoice,
}

/// A validated Upsample.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsampleRequest {
    pub job: JobInfo,
    pub deadline: Option<Instant>,
    /// u8 (F, 3, H, W).
    pub pixels: TensorRef,
    pub upsampler: Upsampler,
    pub tile_size: u32,
    pub tile_overlap: u32,
}

#[async_trait::async_trait]
pub trait Decoder: Send + Sync {
    /// Pixels -> scaled latents.
    async fn encode(&self, request: EncodeRequest) -> Result<StageOutput, DecoderError>;
    /// Latents -> pixels, progress per slice.
    async fn decode(&self, request: DecodeRequest) -> Result<StageEvents, DecoderError>;
    /// Pixels -> upsampled pixels, progress per frame (per denoising step for the
    /// diffusion upscaler).
    async fn upsample(&self, request: UpsampleRequest) -> Result<StageEvents, DecoderError>;
    /// CLIP tokens of `text` by the diffusion upscaler's tokenizer, start and end included
    /// (request validation).
    fn count_tokens(&self, text: &str) -> Result<usize, String>;
    /// Readiness follows this.
    fn model_state(&self) -> watch::Receiver<ModelState>;
}

/// [`Decoder`] over the model worker, the tensor store and the stage cache.
pub struct WorkerDecoder {
    worker: Arc<ModelWorker<DecoderJob>>,
    /// The diffusion upscaler's tokenizer.
    tokenizer: ClipTokenizer,
    cache: StageCache,
}

/// What a call's cache key covers besides its input and the model.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum CacheParams {
    Encode {
        layout: u32,
        sample_seed: Option<u64>,
        dtype: &'static str,
    },
    Decode {
        layout: u32,
    },
    Upsample {
        layout: u32,
        model: String,
        tile: u32,
        overlap: u32,
    },
    DiffusionUpsample {
        layout: u32,
        #[serde(flatten)]
        params: DiffusionUpscale,
        tile: u32,
        overlap: u32,
    },
}

/// The tensor key's stage and name of an output that is not cached.
struct Destination {
    stage: &'static str,
    name: &'static str,
}

impl WorkerDecoder {
    pub fn new(worker: ModelWorker<DecoderJob>, tokenizer: ClipTokenizer, cache: StageCache) -> Self {
        Self {
            worker: Arc::new(worker),
            tokenizer,
            cache,
        }
    }

    /// Waits until the models are loaded; why, when they could not be.
    pub async fn wait_ready(&self) -> Result<ModelInfo, DecoderError> {
        Ok(self.worker.wait_ready().await?)
    }

    /// The model worker's counters (batches, failures, jobs cut short).
    pub fn worker_counters(&self) -> &Arc<WorkerCounters> {
        self.worker.counters()
    }

    /// Runs `work` on the worker (the input read from the store) and stores its output;
    /// a cache hit answers from the entry without the worker.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        job: &JobInfo,
        deadline: Option<Instant>,
        input: &TensorRef,
        params: CacheParams,
        bypass: bool,
        destination: Destination,
        work: impl FnOnce(storyreel_tensors::Tensor) -> Work,
    ) -> Result<StageEvents, DecoderError> {
        let model = self.worker.ready_model()?;
        job.check_model_pin(&model)?;
        let place = OutputPlace {
            cache: self.cache.clone(),
            key: self.cache.key(
                &model.cache_identity(),
                &params,
                &[input],
                job.bypass_cache || bypass,
            )?,
            stage: destination.stage,
            name: destination.name,
            job: job.clone(),
        };
        if let Some(tensor) = place.cached().await? {
            return Ok(answered(StageOutput::cache_hit(tensor, model)));
        }
        let input = self.cache.store().get(input).await?;
        let (channel, events) = JobChannel::new(deadline);
        let (submitted, cancelled) = (channel.enqueued, channel.cancelled.clone());
        self.worker.submit(DecoderJob {
            work: work(input),
            channel,
        })?;
        Ok(forward(events, place, model, submitted, cancelled))
    }
}

#[async_trait::async_trait]
impl Decoder for WorkerDecoder {
    async fn encode(&self, request: EncodeRequest) -> Result<StageOutput, DecoderError> {
        let params = CacheParams::Encode {
            layout: 1,
            sample_seed: request.sample_seed,
            dtype: request.latent_dtype.as_str(),
        };
        // a posterior sample with a seed nobody chose is a new sample
        let unseeded = request.sample_seed.is_some() && request.seed_origin == SeedOrigin::Random;
        let destination = Destination {
            stage: "reference_encode",
            name: "latents",
        };
        let (sample_seed, dtype) = (request.sample_seed, request.latent_dtype);
        let events = self
            .run(
                &request.job,
                request.deadline,
                &request.pixels,
                params,
                unseeded,
                destination,
                |pixels| Work::Encode {
                    pixels,
                    sample_seed,
                    dtype,
                },
            )
            .await?;
        finished(events).await
    }

    async fn decode(&self, request: DecodeRequest) -> Result<StageEvents, DecoderError> {
        let destination = Destination {
            stage: "decode",
            name: "frames",
        };
        let slice = request.slice_frames;
        self.run(
            &request.job,
            request.deadline,
            &request.latents,
            CacheParams::Decode { layout: 1 },
            false,
            destination,
            |latents| Work::Decode { latents, slice },
        )
        .await
    }

    async fn upsample(&self, request: UpsampleRequest) -> Result<StageEvents, DecoderError> {
        let tiles = TileOptions {
            tile: request.tile_size as i64,
            overlap: request.tile_overlap as i64,
        };
        let destination = Destination {
            stage: "upsample",
            name: "frames",
        };
        let (tile, overlap) = (request.tile_size, request.tile_overlap);
        match request.upsampler {
            Upsampler::None => {
                // NONE: the input is the output, nothing runs
                Ok(answered(StageOutput {
                    tensor: request.pixels,
                    model: None,
                    stats: StageStats::default(),
                }))
            }
            Upsampler::RealEsrgan(model) => {
                let params = CacheParams::Upsample {
                    layout: 1,
                    model: format!("{model:?}"),
                    tile,
                    overlap,
                };
                self.run(
                    &request.job,
                    request.deadline,
                    &request.pixels,
                    params,
                    false,
                    destination,
                    |pixels| Work::Upsample { pixels, model, tiles },
                )
                .await
            }
            Upsampler::Diffusion(params) => {
                // a sample with a seed nobody chose is a new sample
                let unseeded = params.seed_origin == SeedOrigin::Random;
                let key = CacheParams::DiffusionUpsample {
                    layout: 1,
                    params: params.clone(),
                    tile,
                    overlap,
                };
                let tiles = UpscaleTiles {
                    tile: tiles.tile,
                    overlap: tiles.overlap,
                };
                self.run(
                    &request.job,
                    request.deadline,
                    &request.pixels,
                    key,
                    unseeded,
                    destination,
                    |pixels| Work::DiffusionUpsample {
                        pixels,
                        params,
                        tiles,
                    },
                )
                .await
            }
        }
    }

    fn count_tokens(&self, text: &str) -> Result<usize, String> {
        self.tokenizer.count_tokens(text).map_err(|e| e.to_string())
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }
}
