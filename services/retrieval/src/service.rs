//! The plain service trait [`Retrieval`] (no tonic types) and its implementation over a
//! catalog, an encoder and a tensor store: [`CatalogRetrieval`].

use crate::{
    catalog::{Boosts, Catalog, CatalogStats, EmbeddingModel, Filters},
    config::{IngestConfig, SearchConfig},
    encoder::Embedder,
    error::RetrievalError,
    frames,
    ingest::{self, ClipSpec, IngestEvent, IngestOptions, Ingestor},
    search::{self, Hit, Weights},
};
use futures::stream::BoxStream;
use serde::Serialize;
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};
use storyreel_runtime::{
    job::JobInfo,
    model::{ModelInfo, ModelState},
};
use storyreel_tensors::{DType, StageCache, Tensor, TensorRef, TensorStore, stage_cache::find_output};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    pub width: u32,
    pub height: u32,
    pub count: u32,
}

/// A validated Search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// Job id (`None`: an ad-hoc call; the server makes one for the tensor key), scene
    /// index (the tensor key's scene; unset: 0), model pin, request id.
    pub job: JobInfo,
    pub deadline: Option<Instant>,
    pub keywords: Vec<String>,
    /// Empty: rank by BM25 only.
    pub prompt: String,
    pub k: u32,
    pub candidates: u32,
    pub filters: Filters,
    pub frames: FrameSpec,
    pub skip_frames: bool,
    /// The hit whose frames are returned; `None`: the best.
    pub frames_clip_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    pub hits: Vec<Hit>,
    /// The winning clip's frames, u8 (F, 3, H, W); `None` when no hit or `skip_frames`.
    pub frames: Option<TensorRef>,
    pub frame_times_s: Vec<f64>,
    pub model: EmbeddingModel,
    pub candidates_considered: u32,
    /// The frames came from the stage cache.
    pub cache_hit: bool,
    /// Waiting for a search slot.
    pub queue_time: Duration,
    /// Embedding, ranking and frames.
    pub compute_time: Duration,
}

/// Catalog stats with the model they were made with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStats {
    pub catalog: CatalogStats,
    pub embedding_model: EmbeddingModel,
    pub embedding_dim: usize,
}

pub type IngestEvents = BoxStream<'static, Result<IngestEvent, RetrievalError>>;
pub type ClipStream = BoxStream<'static, Result<ClipSpec, RetrievalError>>;

#[async_trait::async_trait]
pub trait Retrieval: Send + Sync {
    /// Ranks the catalog for one scene and stores the best clip's frames.
    async fn search(&self, request: SearchRequest) -> Result<SearchResult, RetrievalError>;
    /// Ingests `clips`; events as they happen, the summary last.
    fn ingest(&self, options: IngestOptions, clips: ClipStream) -> IngestEvents;
    async fn stats(&self) -> Result<ServiceStats, RetrievalError>;
    /// Readiness follows this (the sentence encoder's state).
    fn model_state(&self) -> watch::Receiver<ModelState>;
}

/// [`Retrieval`] over an on-disk [`Catalog`].
pub struct CatalogRetrieval {
    catalog: Arc<Catalog>,
    embedder: Arc<dyn Embedder>,
    store: Arc<dyn TensorStore>,
    /// Reference frames by clip, size and count (`search.cache_outputs`).
    cache: StageCache,
    ingestor: Arc<Ingestor>,
    search: SearchConfig,
    slots: Arc<Semaphore>,
}

impl CatalogRetrieval {
    pub fn new(
        catalog: Arc<Catalog>,
        embedder: Arc<dyn Embedder>,
        store: Arc<dyn TensorStore>,
        search: SearchConfig,
        ingest: IngestConfig,
        media_root: PathBuf,
    ) -> Self {
        let ingestor = Arc::new(Ingestor::new(
            catalog.clone(),
            embedder.clone(),
            ingest,
            media_root,
        ));
        let slots = Arc::new(Semaphore::new(search.max_concurrent));
        let cache = StageCache::new(store.clone(), crate::STAGE, search.cache_outputs);
        CatalogRetrieval {
            catalog,
            embedder,
            store,
            cache,
            ingestor,
            search,
            slots,
        }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }
}

#[async_trait::async_trait]
impl Retrieval for CatalogRetrieval {
    async fn search(&self, request: SearchRequest) -> Result<SearchResult, RetrievalError> {
        let served = self.embedder.model();
        request.job.check_model_pin(&ModelInfo {
            name: served.name.clone(),
            version: served.version.clone(),
            weights_sha256: served.weights_sha256.clone(),
            components: Vec::new(),
            random_init: false,
        })?;
        let queued = Instant::now();
        let _slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| RetrievalError::Overloaded {
                what: "the search pool",
                capacity: self.search.max_concurrent,
            })?;
        let started = Instant::now();
        let catalog = self.catalog.clone();
        let boosts = Boosts {
            caption: self.search.caption_boost,
            tags: self.search.tags_boost,
        };
        let weights = Weights {
            bm25: self.search.bm25_weight,
            embedding: self.search.embedding_weight,
        };
        let (keywords, filters, candidates) = (
            request.keywords.clone(),
            request.filters.clone(),
            request.candidates as usize,
        );
        // BM25 on the blocking pool while the encoder thread embeds the prompt.
        let bm25 = ingest::blocking(move || {
            let snapshot = catalog.snapshot();
            let found = snapshot.bm25(&keywords, boosts, &filters, candidates)?;
            Ok((snapshot, found))
        });
        let embed = async {
            if request.prompt.is_empty() {
                return Ok(None);
            }
            let mut rows = self.embedder.embed(vec![request.prompt.clone()]).await?;
            rows.pop()
                .map(Some)
                .ok_or_else(|| RetrievalError::Internal("no prompt embedding".into()))
        };
        let (bm25, prompt_embedding) = tokio::join!(bm25, embed);
        let (snapshot, found) = bm25?;
        let prompt_embedding = prompt_embedding?;
        let k = request.k as usize;
        let (dense_params, filters) = (self.search.dense(), request.filters.clone());
        // The dense candidates need the prompt embedding, so they follow it.
        let ranking = ingest::blocking(move || {
            let prompt = prompt_embedding.as_deref();
            let dense = search::dense_candidates(&snapshot, prompt, &filters, k, dense_params)?;
            search::rerank(&snapshot, found, dense, prompt, k, weights)
        })
        .await?;

        let chosen = match &request.frames_clip_id {
            None => ranking.hits.first(),
            Some(id) => Some(
                ranking
                    .hits
                    .iter()
                    .find(|hit| &hit.record.clip_id == id)
                    .ok_or_else(|| RetrievalError::NotAHit {
                        clip_id: id.clone(),
                        hits: ranking.hits.len(),
                    })?,
            ),
        };
        let (frames, frame_times_s, cache_hit) = match chosen {
            Some(hit) if !request.skip_frames => {
                let (frames, times, cached) = self.frames(hit, &request).await?;
                (Some(frames), times, cached)
            }
            _ => (None, Vec::new(), false),
        };
        let compute_time = started.elapsed();
        let model = self.embedder.model().clone();
        metrics::histogram!(
            "storyreel_retrieval_search_seconds",
            "model_version" => model.version.clone(),
            "frames" => if frames.is_some() { "yes" } else { "no" },
        )
        .record(compute_time.as_secs_f64());
        metrics::histogram!("storyreel_retrieval_candidates").record(ranking.candidates_considered as f64);
        Ok(SearchResult {
            hits: ranking.hits,
            frames,
            frame_times_s,
            model,
            candidates_considered: ranking.candidates_considered,
            cache_hit,
            queue_time: started - queued,
            compute_time,
        })
    }

    fn ingest(&self, options: IngestOptions, clips: ClipStream) -> IngestEvents {
        let (events_tx, mut events_rx) = mpsc::channel(64);
        let (out_tx, out_rx) = mpsc::channel(64);
        let ingestor = self.ingestor.clone();
        let forward_tx = out_tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                let _ = forward_tx.send(Ok(event)).await;
            }
        });
        tokio::spawn(async move {
            let result = ingestor.run(options, clips, events_tx).await;
            let _ = forward.await;
            if let Err(e) = result {
                let _ = out_tx.send(Err(e)).await;
            }
        });
        Box::pin(ReceiverStream::new(out_rx))
    }

    async fn stats(&self) -> Result<ServiceStats, RetrievalError> {
        let catalog = self.catalog.clone();
        let stats = ingest::blocking(move || catalog.stats()).await?;
        Ok(ServiceStats {
            catalog: stats,
            embedding_model: self.embedder.model().clone(),
            embedding_dim: self.embedder.dimension(),
        })
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.embedder.model_state()
    }
}

/// What shapes a clip's reference frames: the cache entry's parameters.
#[derive(Serialize)]
struct FramesKey<'a> {
    /// The entry layout: `frames` (u8 (F, 3, H, W)) and `times` (i64 microseconds).
    layout: u32,
    clip_id: &'a str,
    /// A re-ingest rewrites the stored frames: its time is part of the key.
    ingest_time_us: i64,
    width: u32,
    height: u32,
    count: u32,
}

/// The frames' maker, as the cache key's model: decoding and scaling with ffmpeg.
const FRAMES_MAKER: &str = "retrieval-frames:ffmpeg-scale-crop:1";

impl CatalogRetrieval {
    /// The reference frames of `best` for `request`: from the stage cache when an entry
    /// exists, else decoded, stored and (cache on) kept as the entry. Returns the frames,
    /// their times and whether they were a cache hit.
    async fn frames(
        &self,
        best: &Hit,
        request: &SearchRequest,
    ) -> Result<(TensorRef, Vec<f64>, bool), RetrievalError> {
        let spec = request.frames;
        let params = FramesKey {
            layout: 1,
            clip_id: &best.record.clip_id,
            ingest_time_us: best
                .record
                .ingest_time
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0),
            width: spec.width,
            height: spec.height,
            count: spec.count,
        };
        let key = self
            .cache
            .key(FRAMES_MAKER, &params, &[], request.job.bypass_cache)?;
        if let Some(key) = &key
            && let Some(refs) = self.cache.lookup(key).await?
        {
            if let (Some(frames), Some(times)) = (find_output(&refs, "frames"), find_output(&refs, "times")) {
                let micros: Vec<i64> = self.store.get(&times).await?.to_vec()?;
                let mut times: Vec<f64> = micros.iter().map(|&us| us as f64 / 1e6).collect();
                times.truncate(frames.shape.first().copied().unwrap_or(0));
                return Ok((frames, times, true));
            }
            self.cache.count_unfit();
        }
        let (tensor, times) = self.load_frames(&best.record.clip_id, spec).await?;
        // whole microseconds, as the entry keeps them, so a hit answers the same times
        let micros: Vec<i64> = times.iter().map(|t| (t * 1e6).round() as i64).collect();
        let times: Vec<f64> = micros.iter().map(|&us| us as f64 / 1e6).collect();
        if let Some(key) = &key {
            let stored = if micros.is_empty() { vec![0] } else { micros };
            let times_tensor = Tensor::from_slice(vec![stored.len()], &stored)?;
            let refs = self
                .cache
                .fill(key, &[("frames".into(), tensor), ("times".into(), times_tensor)])
                .await?;
            if let Some(frames) = find_output(&refs, "frames") {
                return Ok((frames, times, false));
            }
            return Err(RetrievalError::Internal(format!(
                "the frames cache entry {key} has no `frames`"
            )));
        }
        let job = request.job.job_id_for_keys();
        let key =
            self.store
                .keys()
                .tensor(&job, crate::STAGE, request.job.scene_index.unwrap_or(0), "frames")?;
        Ok((self.store.put(&key, &tensor, None).await?, times, false))
    }

    async fn load_frames(
        &self,
        clip_id: &str,
        spec: FrameSpec,
    ) -> Result<(Tensor, Vec<f64>), RetrievalError> {
        let tools = self.ingestor.tools.clone();
        let dir = self.catalog.frames_dir();
        let id = clip_id.to_string();
        let frames = ingest::blocking(move || {
            frames::reference_frames(&tools, &dir, &id, spec.width, spec.height, spec.count)
        })
        .await?;
        let shape = [
            frames.count as usize,
            3,
            frames.height as usize,
            frames.width as usize,
        ];
        let tensor = Tensor::new(DType::U8, shape, frames.data)?;
        Ok((tensor, frames.times_s))
    }
}
