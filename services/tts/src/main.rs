//! The tts process: loads the `[tts]` config, starts telemetry, loads the voices on the
//! synthesis worker, binds, and serves until SIGTERM/SIGINT.

use anyhow::Context;
use storyreel_runtime::{config::Sources, server, shutdown, telemetry};
use storyreel_tts::{Tts, TtsConfig, run, start_service};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: TtsConfig =
        storyreel_runtime::config::load("tts", &Sources::from_env()).context("loading config")?;
    let _telemetry = telemetry::init("tts", env!("CARGO_PKG_VERSION"), &config.telemetry)?;
    let service = start_service(&config).await.context("starting the voices")?;
    let listener = server::bind(config.server.listen).await?;
    run(
        config,
        service as std::sync::Arc<dyn Tts>,
        listener,
        shutdown::signal(),
    )
    .await?;
    Ok(())
}
