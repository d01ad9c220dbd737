//! prompt-rewriter: story scenes S^D -> diffusion prompts S^P with negative prompts and
//! visual attributes (paper eq. 2, Fig. 3), and prompts -> search keywords S^K (eq. 3),
//! over gRPC.
//!
//! - [`service`]: the plain trait [`PromptRewriter`] and its types (no tonic);
//! - [`validation`]: wire requests -> validated requests, the proto's limits and defaults;
//! - [`prompting`]: one short chat prompt per field of a scene;
//! - [`parsing`]: model output -> descriptions, attribute lists, colours, keywords;
//! - [`compose`]: S^P from the fields within the CLIP token budget;
//! - [`error`]: [`PromptRewriterError`] and its error codes;
//! - [`grpc`]: the thin tonic adapter;
//! - [`cached`]: [`cached::CachedPromptRewriter`], any [`PromptRewriter`] behind the stage
//!   cache;
//! - [`model_service`]: [`ModelBackedPromptRewriter`], over the batching model worker of
//!   `storyreel_llm` and the CLIP tokenizer;
//! - [`config`]: the `[prompt_rewriter]` table;
//! - [`PromptRewriterStage`]: the stage on the shared skeleton (`storyreel_stage`):
//!   served until shutdown, ready while its model is.

pub mod cached;
pub mod compose;
pub mod config;
pub mod error;
pub mod grpc;
pub mod model_service;
pub mod parsing;
pub mod prompting;
pub mod service;
pub mod validation;

pub use config::PromptRewriterConfig;
pub use error::PromptRewriterError;
pub use model_service::ModelBackedPromptRewriter;
pub use service::{Keywords, KeywordsRequest, ModelState, PromptRewriter, Rewrite, RewriteRequest};

use std::sync::Arc;
use storyreel_llm::OutputCache;
use storyreel_proto::prompt_rewriter::prompt_rewriter_service_server::PromptRewriterServiceServer;
use storyreel_runtime::with_message_limits;
use storyreel_stage::{Adapter, Stage, metrics::MODEL_BUCKETS};
use storyreel_tensors::StageCache;
use tokio::sync::watch;
use tonic::service::Routes;

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.prompt_rewriter.v1.PromptRewriterService";
/// The stage name: process, metric label, thread name.
pub const STAGE: &str = "prompt-rewriter";

storyreel_stage::stage_config!(PromptRewriterConfig);

/// The prompt-rewriter stage: served by `storyreel_stage::serve::serve::<PromptRewriterStage>`,
/// its process is `storyreel_stage::serve::main::<PromptRewriterStage>()`.
pub struct PromptRewriterStage;

#[async_trait::async_trait]
impl Stage for PromptRewriterStage {
    const NAME: &'static str = STAGE;
    const CONFIG_TABLE: &'static str = "prompt_rewriter";
    const SERVICE_NAME: &'static str = SERVICE_NAME;
    const LATENCY_BUCKETS: &'static [f64] = MODEL_BUCKETS;
    type Config = PromptRewriterConfig;
    type Service = dyn PromptRewriter;

    /// Opens the tensor store only when the stage cache is on.
    async fn start(config: &PromptRewriterConfig) -> anyhow::Result<Arc<dyn PromptRewriter>> {
        if !config.cache_outputs {
            return Ok(Arc::new(ModelBackedPromptRewriter::start(config)?));
        }
        let store = storyreel_tensors::open_store(&config.tensors).await?;
        Self::start_with_store(config, store).await
    }

    async fn start_with_store(
        config: &PromptRewriterConfig,
        store: Arc<dyn storyreel_tensors::TensorStore>,
    ) -> anyhow::Result<Arc<dyn PromptRewriter>> {
        let model: Arc<dyn PromptRewriter> = Arc::new(ModelBackedPromptRewriter::start(config)?);
        if !config.cache_outputs {
            return Ok(model);
        }
        let cache = OutputCache::new(StageCache::new(store, STAGE, true));
        Ok(Arc::new(cached::CachedPromptRewriter::new(
            model,
            cache,
            &config.negative_prompt,
        )))
    }

    fn model_state(service: &dyn PromptRewriter) -> watch::Receiver<ModelState> {
        service.model_state()
    }

    fn routes(service: Arc<dyn PromptRewriter>, config: &PromptRewriterConfig) -> Routes {
        let adapter = grpc::PromptRewriterGrpc(Adapter::new(service, config));
        Routes::new(with_message_limits!(
            PromptRewriterServiceServer::new(adapter),
            &config.server
        ))
    }
}
