//! Retrieval's health follows its sentence encoder: SERVING while the encoder's model is
//! ready, NOT_SERVING once it has failed (a worker taken for broken after repeated
//! failures, or stopped), even though the catalog is still open.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use storyreel_retrieval::{
    CatalogRetrieval, Retrieval, RetrievalConfig, RetrievalError, RetrievalStage, SERVICE_NAME,
    catalog::{Catalog, CatalogOptions, EmbeddingModel},
    encoder::Embedder,
};
use storyreel_runtime::{ModelInfo, ModelState};
use storyreel_tensors::{MemoryStore, StoreConfig};
use storyreel_test_support::TestServer;
use tokio::sync::watch;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// An encoder whose state the test sets (the adapter's substitute, not a model).
struct StateEmbedder {
    model: EmbeddingModel,
    state: watch::Receiver<ModelState>,
}

#[async_trait::async_trait]
impl Embedder for StateEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }
    fn dimension(&self) -> usize {
        4
    }
    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.state.clone()
    }
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, RetrievalError> {
        Ok(texts.iter().map(|_| vec![0.5; 4]).collect())
    }
}

async fn status(server: &TestServer) -> ServingStatus {
    let mut health = HealthClient::new(server.channel().await);
    let request = HealthCheckRequest {
        service: SERVICE_NAME.into(),
    };
    health.check(request).await.unwrap().into_inner().status()
}

async fn eventually(server: &TestServer, want: ServingStatus) {
    let until = Instant::now() + Duration::from_secs(10);
    while status(server).await != want {
        assert!(Instant::now() < until, "health never became {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_encoder() {
    let model = EmbeddingModel {
        name: "test-encoder".into(),
        version: "1".into(),
        weights_sha256: "0".repeat(64),
    };
    let (state_tx, state) = watch::channel(ModelState::Ready(ModelInfo {
        name: model.name.clone(),
        version: model.version.clone(),
        ..Default::default()
    }));
    let embedder = Arc::new(StateEmbedder {
        model: model.clone(),
        state,
    });
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(
        dir.path(),
        CatalogOptions {
            embedding_model: model,
            embedding_dim: 4,
            writer_memory_bytes: 20 << 20,
            writer_threads: 1,
            ann: Default::default(),
        },
    )
    .unwrap();
    let config = RetrievalConfig::default();
    let store = Arc::new(MemoryStore::new(&StoreConfig::default()).unwrap());
    let service = Arc::new(CatalogRetrieval::new(
        catalog,
        embedder,
        store,
        config.search.clone(),
        config.ingest.clone(),
        dir.path().to_path_buf(),
    ));
    let server = TestServer::stage::<RetrievalStage>(config, service as Arc<dyn Retrieval>).await;
    eventually(&server, ServingStatus::Serving).await;

    state_tx.send_replace(ModelState::Failed("3 batches failed in a row".into()));
    eventually(&server, ServingStatus::NotServing).await;

    // an encoder that is gone entirely is not ready either
    state_tx.send_replace(ModelState::Ready(ModelInfo::default()));
    eventually(&server, ServingStatus::Serving).await;
    drop(state_tx);
    eventually(&server, ServingStatus::NotServing).await;
    server.shutdown().await;
}
