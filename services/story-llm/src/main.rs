//! The story-llm process: loads the `[story_llm]` config, starts telemetry, starts the
//! model worker (the model loads in the background; the server is ready once it has),
//! binds, and serves until SIGTERM/SIGINT.

use anyhow::Context;
use std::sync::Arc;
use storyreel_runtime::{config::Sources, server, shutdown, telemetry};
use storyreel_story_llm::{ModelBackedStoryLlm, StoryLlm, StoryLlmConfig, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: StoryLlmConfig =
        storyreel_runtime::config::load("story_llm", &Sources::from_env()).context("loading config")?;
    let _telemetry = telemetry::init("story-llm", env!("CARGO_PKG_VERSION"), &config.telemetry)?;
    let service: Arc<dyn StoryLlm> =
        Arc::new(ModelBackedStoryLlm::start(&config).context("starting the model worker")?);
    let listener = server::bind(config.server.listen).await?;
    run(config, service, listener, shutdown::signal()).await?;
    Ok(())
}
