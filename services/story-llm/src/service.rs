//! The plain service trait (no tonic types) and its vocabulary: the validated
//! [`StoryRequest`], the finished [`Story`], the [`StoryEvent`]s of a streamed generation,
//! and the [`ModelState`] that drives readiness.
//!
//! The gRPC adapter ([`crate::grpc`]) and the gateway's embedded mode both call
//! [`StoryLlm`]; the model-backed implementation runs SmolLM2 on a worker thread.

use crate::error::StoryLlmError;
use futures::{StreamExt, stream::BoxStream};
use std::time::Instant;
pub use storyreel_llm::{Sampling, TokenUsage, seed::SeedOrigin};
pub use storyreel_runtime::{JobInfo, ModelInfo, ModelState, StageStats};
use tokio::sync::watch;

/// A story request whose every field is within the limits of `story_llm.proto` and has
/// its server default applied. [`crate::validation`] builds it from the wire request;
/// code that builds one itself must keep to the same limits.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryRequest {
    /// Story title S^I, trimmed, 1-500 characters.
    pub title: String,
    /// Number of scenes, 1-8.
    pub n_scenes: usize,
    /// Style hint, trimmed, 1-64 characters; `None` when the request had none.
    pub style: Option<String>,
    /// BCP-47 language tag, e.g. `en`, `pt-BR`.
    pub language: String,
    /// Seed of the first attempt (later attempts derive theirs, see [`crate::seed`]).
    pub seed: u64,
    /// Where `seed` came from.
    pub seed_origin: SeedOrigin,
    pub sampling: Sampling,
    /// The earliest of the job deadline, the gRPC deadline and the server's request
    /// timeout. Past it, the implementation stops and answers
    /// [`StoryLlmError::DeadlineExceeded`].
    pub deadline: Option<Instant>,
    pub job: JobInfo,
}

impl StoryRequest {
    /// Keeps the earlier of the current deadline and `other`.
    pub fn tighten_deadline(&mut self, other: Option<Instant>) {
        self.deadline = storyreel_runtime::job::earliest(self.deadline, other);
    }
}

/// A finished story S^D.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    /// Exactly `n_scenes` scene texts, in order (scene `i` is `scenes[i]`).
    pub scenes: Vec<String>,
    pub model: ModelInfo,
    pub usage: TokenUsage,
    /// Seed of the attempt that produced these scenes: sent back as the request's seed,
    /// it reproduces them in one attempt.
    pub seed: u64,
    /// Attempts made, >= 1.
    pub attempts: u32,
    pub stats: StageStats,
}

/// One event of a streamed generation. Order within a successful stream: for each scene,
/// its [`StoryEvent::Token`]s, then [`StoryEvent::Scene`], then [`StoryEvent::Progress`];
/// when an attempt is discarded, the events of the next one carry a higher `attempt`
/// (clients start over); [`StoryEvent::Finished`] comes last, once.
#[derive(Debug, Clone, PartialEq)]
pub enum StoryEvent {
    Token(TokenPiece),
    Scene(SceneDone),
    Progress(StoryProgress),
    Finished(Story),
}

/// A decoded piece of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPiece {
    /// Generation attempt, starting at 1.
    pub attempt: u32,
    /// 0-based scene being written.
    pub scene_index: u32,
    pub token_id: u32,
    /// May be empty while a multi-byte character is incomplete.
    pub text: String,
}

/// A scene finished and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneDone {
    pub attempt: u32,
    pub index: u32,
    /// The final (parsed, trimmed) text.
    pub text: String,
}

/// Scenes done of the attempt under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryProgress {
    pub scenes_done: u32,
    pub n_scenes: u32,
    /// Short status, e.g. "scene 3 of 8".
    pub message: String,
}

/// A stream of events; an `Err` item ends it.
pub type StoryEventStream = BoxStream<'static, Result<StoryEvent, StoryLlmError>>;

/// Writes stories. Implementations are shared by all requests (`Arc<dyn StoryLlm>`).
///
/// Cancellation: dropping the future of [`StoryLlm::generate`], or the stream of
/// [`StoryLlm::generate_stream`], cancels the request; an implementation stops decoding
/// it within one decode step. Deadlines: past `request.deadline` an implementation
/// answers [`StoryLlmError::DeadlineExceeded`] (the gRPC adapter also enforces it).
#[async_trait::async_trait]
pub trait StoryLlm: Send + Sync + 'static {
    /// Streams the generation of a story; the last item is [`StoryEvent::Finished`] or an
    /// error. Errors known before the first event (validation, a full queue, no model)
    /// are returned directly.
    async fn generate_stream(&self, request: StoryRequest) -> Result<StoryEventStream, StoryLlmError>;

    /// The whole story at once. The default drains [`StoryLlm::generate_stream`].
    async fn generate(&self, request: StoryRequest) -> Result<Story, StoryLlmError> {
        let mut events = self.generate_stream(request).await?;
        while let Some(event) = events.next().await {
            if let StoryEvent::Finished(story) = event? {
                return Ok(story);
            }
        }
        Err(StoryLlmError::Internal(
            "the event stream ended without a finished story".into(),
        ))
    }

    /// The model's state; the server is ready exactly while it is [`ModelState::Ready`].
    /// Dropping the sender means the model is gone (not ready).
    fn model_state(&self) -> watch::Receiver<ModelState>;
}
