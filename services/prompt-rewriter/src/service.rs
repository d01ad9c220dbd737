//! The plain service trait (no tonic types) and its vocabulary: validated
//! [`RewriteRequest`] / [`KeywordsRequest`], and their results [`Rewrite`] / [`Keywords`].
//!
//! The gRPC adapter ([`crate::grpc`]) and the gateway's embedded mode both call
//! [`PromptRewriter`]; the model-backed implementation runs SmolLM2 on a worker thread.

use crate::error::PromptRewriterError;
use std::time::Instant;
pub use storyreel_llm::{Sampling, TokenUsage, seed::SeedOrigin};
pub use storyreel_runtime::{JobInfo, ModelInfo, ModelState, StageStats};
use tokio::sync::watch;

/// A scene text S^D, or a prompt S^P, with its scene index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SceneText {
    /// 0-7, distinct within a request.
    pub index: u32,
    /// Trimmed, 1-2000 characters.
    pub text: String,
}

/// A `Rewrite` request within the limits of `prompt_rewriter.proto`, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct RewriteRequest {
    /// Story title S^I, trimmed, 1-500 characters.
    pub title: String,
    /// 1-8 scenes, in request order.
    pub scenes: Vec<SceneText>,
    /// Visual style hint, trimmed, 1-64 characters; `None` when the request had none.
    pub style: Option<String>,
    /// Budget of each prompt and negative prompt in CLIP tokens, start and end included,
    /// 8-77.
    pub max_clip_tokens: usize,
    pub seed: u64,
    pub seed_origin: SeedOrigin,
    pub sampling: Sampling,
    /// The earliest of the job deadline, the gRPC deadline and the server's timeout.
    pub deadline: Option<Instant>,
    pub job: JobInfo,
}

/// A `Keywords` request, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordsRequest {
    /// 1-8 prompts S^P, in request order.
    pub prompts: Vec<SceneText>,
    /// 1-16.
    pub max_keywords: usize,
    pub seed: u64,
    pub seed_origin: SeedOrigin,
    pub sampling: Sampling,
    pub deadline: Option<Instant>,
    pub job: JobInfo,
}

/// Visual attributes of a scene (paper Fig. 3): lowercase short phrases, most important
/// first, each list 0-16 entries of 1-64 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SceneAttributes {
    pub visual_elements: Vec<String>,
    /// Colour names only (see [`crate::parsing::is_colour_phrase`]).
    pub colour_scheme: Vec<String>,
    pub shapes: Vec<String>,
    pub categories: Vec<String>,
}

/// The diffusion prompt S^P of one scene.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScenePrompt {
    pub scene_index: u32,
    /// At most `max_clip_tokens` CLIP tokens.
    pub prompt: String,
    pub prompt_clip_tokens: u32,
    pub negative_prompt: String,
    pub negative_prompt_clip_tokens: u32,
    /// What the prompt was built from.
    pub attributes: SceneAttributes,
}

/// The result of a rewrite: one prompt per requested scene, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    pub prompts: Vec<ScenePrompt>,
    pub model: ModelInfo,
    pub usage: TokenUsage,
    pub seed: u64,
    pub stats: StageStats,
}

/// Keywords S^K of one scene: 1-`max_keywords` lowercase terms, no duplicates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SceneKeywords {
    pub scene_index: u32,
    pub keywords: Vec<String>,
}

/// The result of a keyword extraction, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct Keywords {
    pub keywords: Vec<SceneKeywords>,
    pub model: ModelInfo,
    pub usage: TokenUsage,
    pub seed: u64,
    pub stats: StageStats,
}

/// Rewrites scenes into prompts and keywords. Shared by all requests
/// (`Arc<dyn PromptRewriter>`).
///
/// Cancellation: dropping a call's future cancels it; an implementation stops decoding
/// within one decode step. Past `request.deadline` it answers
/// [`PromptRewriterError::DeadlineExceeded`].
#[async_trait::async_trait]
pub trait PromptRewriter: Send + Sync + 'static {
    /// S^I + S^D -> per-scene S^P, negative prompt and attributes (paper eq. 2).
    async fn rewrite(&self, request: RewriteRequest) -> Result<Rewrite, PromptRewriterError>;

    /// S^P -> per-scene S^K (paper eq. 3).
    async fn keywords(&self, request: KeywordsRequest) -> Result<Keywords, PromptRewriterError>;

    /// The model's state; the server is ready exactly while it is [`ModelState::Ready`].
    fn model_state(&self) -> watch::Receiver<ModelState>;
}
