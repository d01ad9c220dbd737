//! The decoder process: config `[decoder]`, telemetry, the VAE and Real-ESRGAN on their
//! model worker (loading in the background), serving until SIGTERM/SIGINT.

fn main() -> anyhow::Result<()> {
    storyreel_stage::serve::main::<storyreel_decoder::DecoderStage>()
}
