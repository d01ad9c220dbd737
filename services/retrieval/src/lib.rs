//! retrieval: keywords S^K + prompt S^P -> ranked reference clips and the best clip's
//! frames (paper §3, reference-guided video retrieval), over gRPC.
//!
//! - [`catalog`]: the clip catalog on disk (tantivy index + memory-mapped embeddings);
//! - [`ingest`]: clips -> probed (ffprobe), sampled (ffmpeg), embedded, indexed;
//! - [`search`]: BM25 candidates, embedding re-rank, weighted fusion;
//! - [`frames`]: stored frames -> the u8 (F, 3, H, W) reference tensor;
//! - [`media`]: ffprobe and ffmpeg as child processes with a timeout;
//! - [`encoder`]: the sentence encoder on its worker thread;
//! - [`service`]: the plain trait [`Retrieval`] and [`CatalogRetrieval`];
//! - [`validation`]: wire requests -> typed requests, limits of the proto;
//! - [`grpc`]: the thin tonic adapter; [`config`]: the `[retrieval]` table;
//! - [`manifest`]: JSONL clip manifests (`storyreel-ingest`);
//! - [`synthetic`]: a seeded caption generator for scale tests and benchmarks.

pub mod catalog;
pub mod config;
pub mod encoder;
pub mod error;
pub mod frames;
pub mod grpc;
pub mod ingest;
pub mod manifest;
pub mod media;
pub mod search;
pub mod service;
pub mod synthetic;
pub mod validation;

pub use config::RetrievalConfig;
pub use error::RetrievalError;
pub use service::{CatalogRetrieval, Retrieval};

use catalog::{Catalog, CatalogOptions};
use encoder::{Embedder, EncoderWorker};
use std::{future::Future, sync::Arc};
use storyreel_runtime::{GrpcServer, server::ServerError};
use tokio::net::TcpListener;
use tonic::service::Routes;

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.retrieval.v1.RetrievalService";

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
        },
    )?;
    Ok((catalog, Arc::new(encoder)))
}

/// The model-backed service of `config`: encoder, catalog, tensor store.
pub async fn start_service(config: &RetrievalConfig) -> Result<Arc<CatalogRetrieval>, RetrievalError> {
    let store = storyreel_tensors::open_store(&config.tensors).await?;
    let (catalog, encoder) = open_catalog(config)?;
    Ok(Arc::new(CatalogRetrieval::new(
        catalog,
        encoder,
        store,
        config.search.clone(),
        config.ingest.clone(),
        config.catalog.media_root.clone(),
    )))
}

/// Serves `service` on `listener` until `shutdown` resolves, then drains in-flight calls.
/// The service is ready when constructed (the encoder has loaded), so health is SERVING
/// from the start.
pub async fn run(
    config: RetrievalConfig,
    service: Arc<dyn Retrieval>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let server = GrpcServer::new(config.server.clone())
        .await
        .with_descriptor_set(storyreel_proto::FILE_DESCRIPTOR_SET);
    let health = server.health();
    health.register(SERVICE_NAME).await;
    health.set_ready(true).await;
    let routes = Routes::new(grpc::RetrievalGrpc::new(service, &config).into_server(&config.server));
    server.serve(listener, routes, shutdown).await
}
