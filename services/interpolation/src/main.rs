//! The interpolation process: config `[interpolation]`, telemetry, the interpolation
//! model, its text encoder and RIFE on their model worker (loading in the background),
//! serving until SIGTERM/SIGINT.

fn main() -> anyhow::Result<()> {
    storyreel_stage::serve::main::<storyreel_interpolation::InterpolationStage>()
}
