//! What the real-model test files share: the service over the real SmolLM2 weights and
//! CLIP tokenizer (`make models` puts them in `${STORYREEL_CACHE}/models`), served over
//! gRPC on 127.0.0.1:0.

#![allow(dead_code)] // each test file uses a part

use std::sync::Arc;
use storyreel_prompt_rewriter::{
    ModelBackedPromptRewriter, PromptRewriter, PromptRewriterConfig, PromptRewriterStage,
};
use storyreel_proto::prompt_rewriter::prompt_rewriter_service_client::PromptRewriterServiceClient;
use storyreel_test_support::TestServer;
use tonic::transport::Channel;

pub fn config() -> PromptRewriterConfig {
    let mut config = PromptRewriterConfig::default();
    assert!(
        config.model_dir.join("model.safetensors").is_file(),
        "SmolLM2 is missing from {}: run `make models`",
        config.model_dir.display()
    );
    assert!(
        config.clip_tokenizer.is_file(),
        "the CLIP tokenizer is missing at {}: run `make models`",
        config.clip_tokenizer.display()
    );
    config.batching.max_batch_size = 8;
    config.batching.max_wait_ms = 50;
    config
}

pub struct Running {
    pub client: PromptRewriterServiceClient<Channel>,
    pub service: Arc<ModelBackedPromptRewriter>,
    server: TestServer,
}

impl Running {
    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Starts the service and its server; returns once the model is loaded.
pub async fn start() -> Running {
    let config = config();
    let service = Arc::new(ModelBackedPromptRewriter::start(&config).expect("starting the rewriter"));
    let info = service.wait_ready().await.expect("the model loads");
    assert_eq!(info.weights_sha256.len(), 64);
    let server =
        TestServer::stage::<PromptRewriterStage>(config, service.clone() as Arc<dyn PromptRewriter>).await;
    let client = PromptRewriterServiceClient::new(server.channel().await);
    Running {
        client,
        service,
        server,
    }
}
