//! retrieval: keywords S^K + prompt S^P -> ranked reference clips and the best clip's
//! frames (paper §3, reference-guided video retrieval), over gRPC.
//!
//! - [`catalog`]: the clip catalog on disk (tantivy index + memory-mapped embeddings);
//! - [`ingest`]: clips -> probed (ffprobe), sampled (ffmpeg), embedded, indexed;
//! - [`search`]: BM25 and dense (HNSW) candidates, embedding re-rank, weighted fusion;
//! - [`frames`]: stored frames -> the u8 (F, 3, H, W) reference tensor;
//! - [`media`]: ffprobe and ffmpeg as child processes with a timeout;
//! - [`media_root`]: a clip's `video_uri` confined to the media root;
//! - [`encoder`]: the sentence encoder on the stage's model worker;
//! - [`service`]: the plain trait [`Retrieval`] and [`CatalogRetrieval`];
//! - [`validation`]: wire requests -> typed requests, limits of the proto;
//! - [`grpc`]: the thin tonic adapter; [`config`]: the `[retrieval]` table;
//! - [`manifest`]: JSONL clip manifests (`storyreel-ingest`);
//! - [`synthetic`]: a seeded caption generator for scale tests and benchmarks;
//! - [`synthetic_embeddings`]: caption-like vectors for synthetic clips, composed from
//!   the encoder's vectors of their parts;
//! - [`RetrievalStage`]: the stage on the shared skeleton (`storyreel_stage`).

pub mod catalog;
pub mod config;
pub mod encoder;
pub mod error;
pub mod frames;
pub mod grpc;
pub mod ingest;
pub mod manifest;
pub mod media;
pub mod media_root;
pub mod search;
pub mod service;
pub mod synthetic;
pub mod synthetic_embeddings;
pub mod validation;

pub use config::RetrievalConfig;
pub use error::RetrievalError;
pub use service::{CatalogRetrieval, Retrieval};

use catalog::{Catalog, CatalogOptions};
use encoder::{Embedder, EncoderWorker};
use std::sync::Arc;
use storyreel_proto::retrieval::retrieval_service_server::RetrievalServiceServer;
use storyreel_runtime::ModelState;
use storyreel_runtime::with_message_limits;
use storyreel_stage::{Adapter, Stage, metrics::FAST_BUCKETS};
use tokio::sync::watch;
use tonic::service::Routes;

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.retrieval.v1.RetrievalService";
/// The stage name: process, metric label, thread name, tensor keys.
pub const STAGE: &str = "retrieval";

/// Starts the encoder worker and opens the catalog for `config` (no tensor store).
pub fn open_catalog(config: &RetrievalConfig) -> Result<(Arc<Catalog>, Arc<dyn Embedder>), RetrievalError> {
    let encoder = EncoderWorker::start(&config.encoder)?;
    let catalog = Catalog::open(
        &config.catalog.dir,
        CatalogOptions {
            embedding_model: encoder.model().clone(),
            embedding_dim: encoder.dimension(),
            writer_memory_bytes: config.catalog.writer_memory_mb << 20,
            writer_threads: config.catalog.writer_threads,
            ann: config.catalog.ann(),
        },
    )?;
    Ok((catalog, Arc::new(encoder)))
}

/// The model-backed service of `config`: encoder, catalog, tensor store.
pub async fn start_service(config: &RetrievalConfig) -> Result<Arc<CatalogRetrieval>, RetrievalError> {
    let store = storyreel_tensors::open_store(&config.tensors).await?;
    start_service_on(config, store).await
}

/// [`start_service`] on a store the caller shares (the embedded pipeline's).
pub async fn start_service_on(
    config: &RetrievalConfig,
    store: Arc<dyn storyreel_tensors::TensorStore>,
) -> Result<Arc<CatalogRetrieval>, RetrievalError> {
    let (catalog, encoder) = open_catalog(config)?;
    // The HNSW graph is built before serving, so the first searches do not pay for it
    // (`storyreel-ingest`, which never searches, leaves it unbuilt).
    let building = catalog.clone();
    ingest::blocking(move || building.build_dense_index()).await?;
    Ok(Arc::new(CatalogRetrieval::new(
        catalog,
        encoder,
        store,
        config.search.clone(),
        config.ingest.clone(),
        config.catalog.media_root.clone(),
    )))
}

storyreel_stage::stage_config!(RetrievalConfig);

/// The retrieval stage: served by `storyreel_stage::serve::serve::<RetrievalStage>`, its
/// process is `storyreel_stage::serve::main::<RetrievalStage>()`. Health follows the
/// sentence encoder's state.
pub struct RetrievalStage;

#[async_trait::async_trait]
impl Stage for RetrievalStage {
    const NAME: &'static str = STAGE;
    const CONFIG_TABLE: &'static str = "retrieval";
    const SERVICE_NAME: &'static str = SERVICE_NAME;
    const LATENCY_BUCKETS: &'static [f64] = FAST_BUCKETS;
    type Config = RetrievalConfig;
    type Service = dyn Retrieval;

    async fn start_with_store(
        config: &RetrievalConfig,
        store: Arc<dyn storyreel_tensors::TensorStore>,
    ) -> anyhow::Result<Arc<dyn Retrieval>> {
        Ok(start_service_on(config, store).await?)
    }

    fn model_state(service: &dyn Retrieval) -> watch::Receiver<ModelState> {
        service.model_state()
    }

    fn routes(service: Arc<dyn Retrieval>, config: &RetrievalConfig) -> Routes {
        let adapter = grpc::RetrievalGrpc(Adapter::new(service, config));
        Routes::new(with_message_limits!(
            RetrievalServiceServer::new(adapter),
            &config.server
        ))
    }
}
