//! The prompt-rewriter process: config `[prompt_rewriter]`, telemetry, the CLIP tokenizer
//! and the model worker (loading in the background), serving until SIGTERM/SIGINT.

fn main() -> anyhow::Result<()> {
    storyreel_stage::serve::main::<storyreel_prompt_rewriter::PromptRewriterStage>()
}
