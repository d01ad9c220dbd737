//! The sentence encoder (all-MiniLM-L6-v2, `storyreel_nn::bert::SentenceEncoder`) as a
//! [`StageModel`] on the stage's generic model worker (its own thread, bounded queue,
//! readiness, panic isolation, queue metrics). A job is the texts of one call; jobs
//! waiting together are embedded in one forward pass (up to `batch_size` texts), so
//! concurrent searches share it. A full queue is RESOURCE_EXHAUSTED.

use crate::{catalog::EmbeddingModel, config::EncoderConfig, error::RetrievalError};
use std::sync::{Arc, OnceLock};
use storyreel_nn::{
    DeviceSpec,
    bert::{SentenceEncoder, SentenceEncoderOptions},
};
use storyreel_runtime::{
    ModelInfo, ModelState,
    model_identity::{IdentityOverrides, identify_model_dir},
};
use storyreel_stage::{BatchControl, ModelWorker, StageModel, WorkerConfig, WorkerJob, WorkerSettings};
use tokio::sync::{oneshot, watch};

/// Texts -> unit-length embeddings. The service and ingest use this trait, so tests of the
/// adapter can substitute it.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    fn model(&self) -> &EmbeddingModel;
    fn dimension(&self) -> usize;
    /// Readiness follows this.
    fn model_state(&self) -> watch::Receiver<ModelState>;
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, RetrievalError>;
}

/// The texts of one call.
pub struct Job {
    texts: Vec<String>,
    span: tracing::Span,
    reply: Option<oneshot::Sender<Result<Vec<Vec<f32>>, RetrievalError>>>,
}

impl WorkerJob for Job {
    fn weight(&self) -> usize {
        self.texts.len()
    }

    fn fail(&mut self, error: storyreel_stage::WorkerError) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(error.into()));
        }
    }
}

struct Encoder(SentenceEncoder);

impl StageModel for Encoder {
    type Job = Job;

    fn run_batch(&mut self, batch: &mut [Job], _: &BatchControl) -> Result<(), String> {
        let texts: Vec<&str> = batch
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        let rows = self.0.embed(&texts).map_err(|e| e.to_string())?;
        let mut offset = 0;
        for job in batch {
            let n = job.texts.len();
            let _entered = job.span.enter();
            if let Some(reply) = job.reply.take() {
                let _ = reply.send(Ok(rows[offset..offset + n].to_vec()));
            }
            offset += n;
        }
        Ok(())
    }
}

/// The encoder on its model worker.
pub struct EncoderWorker {
    worker: ModelWorker<Job>,
    model: EmbeddingModel,
    dimension: usize,
}

impl EncoderWorker {
    /// Starts the worker and waits until the model is loaded (MiniLM: well under a
    /// second): the catalog is opened with its identity and dimension.
    pub fn start(config: &EncoderConfig) -> Result<Self, RetrievalError> {
        let device: DeviceSpec = config
            .device
            .parse()
            .map_err(|e: String| RetrievalError::NotReady { reason: e })?;
        let options = SentenceEncoderOptions {
            device,
            batch_size: config.batch_size,
            ..SentenceEncoderOptions::default()
        };
        let dir = config.model_dir.clone();
        let dimension = Arc::new(OnceLock::new());
        let loaded_dimension = dimension.clone();
        let settings = WorkerSettings::new(
            crate::STAGE,
            WorkerConfig {
                queue_capacity: config.queue_capacity,
                max_batch_size: config.batch_size,
                max_wait_ms: 0,
                threads: config.threads,
                keep_freed_memory: false,
                max_consecutive_failures: config.max_consecutive_failures,
            },
        );
        let worker = ModelWorker::spawn(settings, move || {
            let info = model_info(&dir).map_err(|e| e.to_string())?;
            let encoder = SentenceEncoder::load(&dir, &options)
                .map_err(|e| format!("loading {}: {e}", dir.display()))?;
            let _ = loaded_dimension.set(encoder.dimension() as usize);
            Ok((Encoder(encoder), info))
        })?;
        let info = futures::executor::block_on(worker.wait_ready())?;
        let dimension = *dimension.get().ok_or_else(|| RetrievalError::NotReady {
            reason: "the encoder loaded without a dimension".into(),
        })?;
        tracing::info!(model = %info.name, version = %info.version, dimension, "sentence encoder ready");
        Ok(EncoderWorker {
            worker,
            model: EmbeddingModel {
                name: info.name,
                version: info.version,
                weights_sha256: info.weights_sha256,
            },
            dimension,
        })
    }
}

#[async_trait::async_trait]
impl Embedder for EncoderWorker {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, RetrievalError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.worker.submit(Job {
            texts,
            span: tracing::Span::current(),
            reply: Some(reply),
        })?;
        answer.await.map_err(|_| RetrievalError::NotReady {
            reason: "the encoder worker stopped".into(),
        })?
    }
}

/// The encoder's identity (`storyreel_runtime::model_identity`).
pub fn model_info(dir: &std::path::Path) -> Result<ModelInfo, RetrievalError> {
    identify_model_dir(dir, IdentityOverrides::default()).map_err(|e| RetrievalError::NotReady {
        reason: e.to_string(),
    })
}
