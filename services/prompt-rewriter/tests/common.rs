//! What the real-model test files share: the service over the real SmolLM2 weights and
//! CLIP tokenizer (`make models` puts them in `${STORYREEL_CACHE}/models`), served over
//! gRPC on 127.0.0.1:0.

#![allow(dead_code)] // each test file uses a part

use std::sync::Arc;
use storyreel_prompt_rewriter::{ModelBackedPromptRewriter, PromptRewriter, PromptRewriterConfig};
use storyreel_proto::prompt_rewriter::prompt_rewriter_service_client::PromptRewriterServiceClient;
use tokio::{sync::oneshot, task::JoinHandle};
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
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), storyreel_runtime::server::ServerError>>,
}

impl Running {
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Starts the service and its server; returns once the model is loaded.
pub async fn start() -> Running {
    let config = config();
    let service = Arc::new(ModelBackedPromptRewriter::start(&config).expect("starting the rewriter"));
    let info = service.wait_ready().await.expect("the model loads");
    assert_eq!(info.weights_sha256.len(), 64);
    let listener = storyreel_runtime::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(storyreel_prompt_rewriter::run(
        config,
        service.clone() as Arc<dyn PromptRewriter>,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let client = PromptRewriterServiceClient::connect(endpoint).await.unwrap();
    Running {
        client,
        service,
        stop: Some(stop),
        task,
    }
}
