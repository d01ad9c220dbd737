//! The story-llm process: loads the `[story_llm]` config, starts telemetry, binds, and
//! serves until SIGTERM/SIGINT.

use anyhow::Context;
use std::sync::Arc;
use storyreel_runtime::{config::Sources, server, shutdown, telemetry};
use storyreel_story_llm::{
    ModelState, StoryLlm, StoryLlmConfig, StoryLlmError, StoryRequest, run, service::StoryEventStream,
};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: StoryLlmConfig =
        storyreel_runtime::config::load("story_llm", &Sources::from_env()).context("loading config")?;
    let _telemetry = telemetry::init("story-llm", env!("CARGO_PKG_VERSION"), &config.telemetry)?;
    let listener = server::bind(config.server.listen).await?;
    let service: Arc<dyn StoryLlm> = Arc::new(NoModelBackend::new());
    run(config, service, listener, shutdown::signal()).await?;
    Ok(())
}

/// The model-backed implementation (SmolLM2 on a batching worker thread, issue 7) is not
/// wired in yet. Until it is, the process serves health and reflection but is never
/// ready, and every call is UNAVAILABLE: it writes no stories, real or canned.
struct NoModelBackend {
    state: watch::Sender<ModelState>,
}

impl NoModelBackend {
    fn new() -> Self {
        let reason = "no model backend is wired into this build yet (issue 7)";
        tracing::error!(reason, "story-llm cannot serve");
        Self {
            state: watch::Sender::new(ModelState::Failed(reason.into())),
        }
    }
}

#[async_trait::async_trait]
impl StoryLlm for NoModelBackend {
    async fn generate_stream(&self, _request: StoryRequest) -> Result<StoryEventStream, StoryLlmError> {
        Err(StoryLlmError::NotReady {
            reason: "no model backend is wired into this build yet".into(),
        })
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.state.subscribe()
    }
}
