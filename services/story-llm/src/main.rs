//! The story-llm process: config `[story_llm]`, telemetry, the model worker (loading in
//! the background; ready once loaded), serving until SIGTERM/SIGINT.

fn main() -> anyhow::Result<()> {
    storyreel_stage::serve::main::<storyreel_story_llm::StoryLlmStage>()
}
