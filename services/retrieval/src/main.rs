//! The retrieval process: config `[retrieval]`, telemetry, the sentence encoder, the
//! catalog and the tensor store, serving until SIGTERM/SIGINT.

fn main() -> anyhow::Result<()> {
    storyreel_stage::serve::main::<storyreel_retrieval::RetrievalStage>()
}
