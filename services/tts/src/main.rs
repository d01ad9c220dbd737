//! The tts process: config `[tts]`, telemetry, the voices on the synthesis worker, serving
//! until SIGTERM/SIGINT.

fn main() -> anyhow::Result<()> {
    storyreel_stage::serve::main::<storyreel_tts::TtsStage>()
}
