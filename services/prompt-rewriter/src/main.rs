//! The prompt-rewriter process: loads the `[prompt_rewriter]` config, starts telemetry,
//! loads the CLIP tokenizer and starts the model worker (the model loads in the
//! background; the server is ready once it has), binds, and serves until SIGTERM/SIGINT.

use anyhow::Context;
use std::sync::Arc;
use storyreel_prompt_rewriter::{ModelBackedPromptRewriter, PromptRewriter, PromptRewriterConfig, run};
use storyreel_runtime::{config::Sources, server, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: PromptRewriterConfig =
        storyreel_runtime::config::load("prompt_rewriter", &Sources::from_env()).context("loading config")?;
    let _telemetry = telemetry::init("prompt-rewriter", env!("CARGO_PKG_VERSION"), &config.telemetry)?;
    let service: Arc<dyn PromptRewriter> =
        Arc::new(ModelBackedPromptRewriter::start(&config).context("starting the prompt rewriter")?);
    let listener = server::bind(config.server.listen).await?;
    run(config, service, listener, shutdown::signal()).await?;
    Ok(())
}
