//! How the DAG reaches the stages: [`StageExecutor`], one method per stage call, in the
//! stages' own wire messages. The embedded mode implements it with the services' gRPC
//! adapters called in process (no network, the same validation and error codes); the
//! gateway's durable jobs implement it with one workflow activity per call, each a gRPC
//! call to the stage's service. The DAG never knows which.
//!
//! The futures need not be `Send`: a workflow's context is single-threaded (a workflow
//! runs on one thread, so that replaying its history is deterministic).

use futures::stream::BoxStream;
use storyreel_proto::{decoder, interpolation, keyframe, prompt_rewriter, retrieval, story_llm, tts};
use storyreel_runtime::ModelInfo;
use tonic::Status;

/// A streamed call's events.
pub type Events<T> = BoxStream<'static, Result<T, Status>>;

#[async_trait::async_trait(?Send)]
pub trait StageExecutor {
    /// story-llm GenerateStream: the scenes S^D as they are written.
    async fn story(
        &self,
        request: story_llm::GenerateStreamRequest,
    ) -> Result<Events<story_llm::GenerateStreamResponse>, Status>;

    /// prompt-rewriter Rewrite: S^D -> S^P.
    async fn rewrite(
        &self,
        request: prompt_rewriter::RewriteRequest,
    ) -> Result<prompt_rewriter::RewriteResponse, Status>;

    /// prompt-rewriter Keywords: S^P -> S^K.
    async fn keywords(
        &self,
        request: prompt_rewriter::KeywordsRequest,
    ) -> Result<prompt_rewriter::KeywordsResponse, Status>;

    /// retrieval Search: S^K (+ S^P) -> ranked clips and one clip's frames.
    async fn search(&self, request: retrieval::SearchRequest) -> Result<retrieval::SearchResponse, Status>;

    /// decoder Encode: pixels -> latents.
    async fn encode(&self, request: decoder::EncodeRequest) -> Result<decoder::EncodeResponse, Status>;

    /// keyframe Generate: S^P -> key-frame latents.
    async fn keyframe(
        &self,
        request: keyframe::GenerateRequest,
    ) -> Result<Events<keyframe::GenerateResponse>, Status>;

    /// interpolation Interpolate: key frames -> 4x / 16x frames.
    async fn interpolate(
        &self,
        request: interpolation::InterpolateRequest,
    ) -> Result<Events<interpolation::InterpolateResponse>, Status>;

    /// decoder Decode: latents -> u8 frames.
    async fn decode(
        &self,
        request: decoder::DecodeRequest,
    ) -> Result<Events<decoder::DecodeResponse>, Status>;

    /// decoder Upsample: u8 frames -> larger u8 frames.
    async fn upsample(
        &self,
        request: decoder::UpsampleRequest,
    ) -> Result<Events<decoder::UpsampleResponse>, Status>;

    /// tts Synthesize: scene text -> narration.
    async fn synthesize(&self, request: tts::SynthesizeRequest) -> Result<tts::SynthesizeResponse, Status>;

    /// The keyframe stage's model once it is ready: `auto` chooses the backend by it.
    async fn keyframe_model(&self) -> Result<ModelInfo, Status>;

    /// Seconds on the executor's clock, for the call records' timings only (nothing is
    /// decided by it). In process: the system clock. In a workflow: the workflow's own
    /// time, which its history fixes, so a replay records the same timings.
    fn now_s(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}
