//! The retrieval process: loads the `[retrieval]` config, starts telemetry, loads the
//! sentence encoder, opens the catalog and the tensor store, binds, and serves until
//! SIGTERM/SIGINT.

use anyhow::Context;
use storyreel_retrieval::{RetrievalConfig, run, start_service};
use storyreel_runtime::{config::Sources, server, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: RetrievalConfig =
        storyreel_runtime::config::load("retrieval", &Sources::from_env()).context("loading config")?;
    let _telemetry = telemetry::init("retrieval", env!("CARGO_PKG_VERSION"), &config.telemetry)?;
    let service = start_service(&config)
        .await
        .context("starting the retrieval service")?;
    let listener = server::bind(config.server.listen).await?;
    run(config, service, listener, shutdown::signal()).await?;
    Ok(())
}
