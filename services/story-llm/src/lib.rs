//! story-llm: a story title S^I -> N scene texts S^D (paper eq. 1), over gRPC.
//!
//! - [`service`]: the plain trait [`StoryLlm`] and its types (no tonic);
//! - [`validation`]: wire request -> [`StoryRequest`], limits and defaults of the proto;
//! - [`prompting`]: the scene-by-scene chat prompts (DESIGN.md §9);
//! - [`parsing`]: model output -> usable, distinct scene texts;
//! - [`scoring`]: the best of a scene's candidates (well-formed, fluent, on the title,
//!   new);
//! - [`rounds`]: how a scene's later candidate rounds sample (hotter, fewer repeats);
//! - [`error`]: [`StoryLlmError`] and its error codes;
//! - [`grpc`]: the thin tonic adapter;
//! - [`cached`]: [`cached::CachedStoryLlm`], any [`StoryLlm`] behind the stage cache;
//! - [`model_service`]: [`ModelBackedStoryLlm`], the [`StoryLlm`] over the model worker
//!   of `storyreel_llm` (its own thread, static batching, cancellation);
//! - [`config`]: the `[story_llm]` table;
//! - [`StoryLlmStage`]: the stage on the shared skeleton (`storyreel_stage`): served
//!   until shutdown, ready while its model is.
//!
//! The model-backed [`StoryLlm`] ([`ModelBackedStoryLlm`], SmolLM2 on a batching worker
//! thread) is what [`StoryLlmStage`] starts.

pub mod cached;
pub mod config;
pub mod error;
pub mod grpc;
pub mod model_service;
pub mod parsing;
pub mod prompting;
pub mod relevance;
pub mod rounds;
pub mod scoring;
pub mod service;
pub mod validation;

pub use config::StoryLlmConfig;
pub use error::StoryLlmError;
pub use model_service::ModelBackedStoryLlm;
pub use service::{ModelState, Story, StoryEvent, StoryLlm, StoryRequest};

use std::sync::Arc;
use storyreel_llm::OutputCache;
use storyreel_proto::story_llm::story_llm_service_server::StoryLlmServiceServer;
use storyreel_runtime::with_message_limits;
use storyreel_stage::{Adapter, Stage, metrics::MODEL_BUCKETS};
use storyreel_tensors::StageCache;
use tokio::sync::watch;
use tonic::service::Routes;

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.story_llm.v1.StoryLlmService";
/// The stage name: process, metric label, thread name.
pub const STAGE: &str = "story-llm";

storyreel_stage::stage_config!(StoryLlmConfig);

/// The story-llm stage: served by `storyreel_stage::serve::serve::<StoryLlmStage>`, its
/// process is `storyreel_stage::serve::main::<StoryLlmStage>()`.
pub struct StoryLlmStage;

#[async_trait::async_trait]
impl Stage for StoryLlmStage {
    const NAME: &'static str = STAGE;
    const CONFIG_TABLE: &'static str = "story_llm";
    const SERVICE_NAME: &'static str = SERVICE_NAME;
    const LATENCY_BUCKETS: &'static [f64] = MODEL_BUCKETS;
    type Config = StoryLlmConfig;
    type Service = dyn StoryLlm;

    /// Opens the tensor store only when the stage cache is on.
    async fn start(config: &StoryLlmConfig) -> anyhow::Result<Arc<dyn StoryLlm>> {
        if !config.cache_outputs {
            return Ok(Arc::new(ModelBackedStoryLlm::start(config)?));
        }
        let store = storyreel_tensors::open_store(&config.tensors).await?;
        Self::start_with_store(config, store).await
    }

    async fn start_with_store(
        config: &StoryLlmConfig,
        store: Arc<dyn storyreel_tensors::TensorStore>,
    ) -> anyhow::Result<Arc<dyn StoryLlm>> {
        let model: Arc<dyn StoryLlm> = Arc::new(ModelBackedStoryLlm::start(config)?);
        if !config.cache_outputs {
            return Ok(model);
        }
        let cache = OutputCache::new(StageCache::new(store, STAGE, true));
        Ok(Arc::new(cached::CachedStoryLlm::new(model, cache)))
    }

    fn model_state(service: &dyn StoryLlm) -> watch::Receiver<ModelState> {
        service.model_state()
    }

    fn routes(service: Arc<dyn StoryLlm>, config: &StoryLlmConfig) -> Routes {
        let adapter = grpc::StoryLlmGrpc(Adapter::new(service, config));
        Routes::new(with_message_limits!(
            StoryLlmServiceServer::new(adapter),
            &config.server
        ))
    }
}
