//! The keyframe process: config `[keyframe]`, telemetry, the video pipeline on its model
//! worker (loading in the background), serving until SIGTERM/SIGINT.

fn main() -> anyhow::Result<()> {
    storyreel_stage::serve::main::<storyreel_keyframe::KeyframeStage>()
}
