//! The sentence encoder (all-MiniLM-L6-v2, `storyreel_nn::bert::SentenceEncoder`) on its
//! own OS thread: tch tensors are not Sync, so the model lives on one thread that loops on
//! a bounded channel of jobs, each with its texts, the caller's span and a oneshot reply.
//! Jobs waiting together are embedded in one call (up to `batch_size` texts), so
//! concurrent searches share forward passes. A full queue is RESOURCE_EXHAUSTED.

use crate::{catalog::EmbeddingModel, config::EncoderConfig, error::RetrievalError};
use std::path::Path;
use storyreel_nn::{
    DeviceSpec,
    bert::{SentenceEncoder, SentenceEncoderOptions},
};
use tokio::sync::{mpsc, oneshot};

/// Texts -> unit-length embeddings. The service and ingest use this trait, so tests of the
/// adapter can substitute it.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    fn model(&self) -> &EmbeddingModel;
    fn dimension(&self) -> usize;
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, RetrievalError>;
}

struct Job {
    texts: Vec<String>,
    span: tracing::Span,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
}

/// The model worker thread and its queue.
pub struct EncoderWorker {
    jobs: mpsc::Sender<Job>,
    model: EmbeddingModel,
    dimension: usize,
    capacity: usize,
}

impl EncoderWorker {
    /// Starts the worker and waits until the model is loaded (MiniLM: well under a second).
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
        let model = model_identity(&dir)?;
        let (jobs, mut queue) = mpsc::channel::<Job>(config.queue_capacity);
        let (loaded_tx, loaded_rx) = std::sync::mpsc::sync_channel(1);
        let batch_size = config.batch_size;
        let threads = config.threads;
        std::thread::Builder::new()
            .name("retrieval-encoder".into())
            .spawn(move || {
                if threads > 0 {
                    tch::set_num_threads(threads as i32);
                }
                let encoder = match SentenceEncoder::load(&dir, &options) {
                    Ok(encoder) => {
                        let _ = loaded_tx.send(Ok(encoder.dimension() as usize));
                        encoder
                    }
                    Err(e) => {
                        let _ = loaded_tx.send(Err(format!("loading {}: {e}", dir.display())));
                        return;
                    }
                };
                while let Some(first) = queue.blocking_recv() {
                    let mut batch = vec![first];
                    let mut texts = batch[0].texts.len();
                    while texts < batch_size {
                        match queue.try_recv() {
                            Ok(job) => {
                                texts += job.texts.len();
                                batch.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    run_batch(&encoder, batch);
                }
                tracing::info!("encoder worker stopped");
            })
            .map_err(|e| RetrievalError::NotReady {
                reason: format!("cannot start the encoder thread: {e}"),
            })?;
        let dimension = loaded_rx
            .recv()
            .map_err(|_| RetrievalError::NotReady {
                reason: "the encoder thread died while loading".into(),
            })?
            .map_err(|reason| RetrievalError::NotReady { reason })?;
        tracing::info!(model = %model.name, version = %model.version, dimension, "sentence encoder ready");
        Ok(EncoderWorker {
            jobs,
            model,
            dimension,
            capacity: config.queue_capacity,
        })
    }
}

fn run_batch(encoder: &SentenceEncoder, batch: Vec<Job>) {
    let texts: Vec<&str> = batch
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let result = encoder.embed(&texts).map_err(|e| e.to_string());
    let mut offset = 0;
    for job in batch {
        let n = job.texts.len();
        let _entered = job.span.enter();
        let reply = match &result {
            Ok(rows) => Ok(rows[offset..offset + n].to_vec()),
            Err(e) => Err(e.clone()),
        };
        offset += n;
        let _ = job.reply.send(reply);
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

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, RetrievalError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts,
            span: tracing::Span::current(),
            reply,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => RetrievalError::Overloaded {
                what: "the encoder queue",
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => RetrievalError::NotReady {
                reason: "the encoder worker stopped".into(),
            },
        })?;
        answer
            .await
            .map_err(|_| RetrievalError::NotReady {
                reason: "the encoder worker stopped".into(),
            })?
            .map_err(RetrievalError::Encoder)
    }
}

/// Name (the directory's), version (the `make models` stamp, else the digest's prefix) and
/// SHA-256 of `model.safetensors`.
pub fn model_identity(dir: &Path) -> Result<EmbeddingModel, RetrievalError> {
    let weights = dir.join("model.safetensors");
    let weights_sha256 =
        storyreel_runtime::model::sha256_file(&weights).map_err(|e| RetrievalError::NotReady {
            reason: format!("reading {}: {e} (run `make models`)", weights.display()),
        })?;
    let version = std::fs::read_to_string(dir.join(".stamp"))
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| weights_sha256[..12].to_string());
    Ok(EmbeddingModel {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sentence-encoder".into()),
        version,
        weights_sha256,
    })
}
