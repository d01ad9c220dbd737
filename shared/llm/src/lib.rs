//! What the language-model services (story-llm, prompt-rewriter) share:
//!
//! - [`worker`]: the model on its own thread, static batching, cancellation, deadlines;
//! - [`prefix_store`]: KV caches kept between the items of a request (prefix reuse);
//! - [`worker_config`]: the model location and batching keys of a service's config;
//! - [`chat`]: chat turns and pre-filled answers ([`ChatPrompt`]);
//! - [`sampling`]: `SamplingParams` limits, server defaults and validation;
//! - [`output_cache`]: finished outputs in the stage cache ([`OutputCache`]);
//! - [`error`]: the worker's error, [`WorkerError`].

pub mod chat;
/// Request seeds (`storyreel_runtime::seed`), as every stage chooses them.
pub use storyreel_runtime::seed;
pub mod error;
pub mod output_cache;
pub mod prefix_store;
pub mod sampling;
pub mod worker;
pub mod worker_config;

pub use chat::{ChatMessage, ChatPrompt, Role};
pub use error::WorkerError;
pub use output_cache::OutputCache;
pub use sampling::{GenerationDefaults, Sampling};
pub use worker::{CancelOnDrop, JobSampling, LlmJob, LlmOutput, ModelWorker, WorkerEvent, WorkerStats};
pub use worker_config::{BatchingConfig, WorkerSettings};

use storyreel_proto::common;

/// Tokens processed by a request, over all its attempts (common.proto `TokenUsage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// Of `prompt_tokens`, those reused from a cached prefix.
    pub reused_prompt_tokens: u64,
}

impl TokenUsage {
    /// Adds one decoded item.
    pub fn add(&mut self, output: &LlmOutput) {
        self.prompt_tokens += output.prompt_tokens as u64;
        self.generated_tokens += output.generated_tokens as u64;
        self.reused_prompt_tokens += output.reused_prompt_tokens as u64;
    }
}

impl From<TokenUsage> for common::TokenUsage {
    fn from(u: TokenUsage) -> Self {
        common::TokenUsage {
            prompt_tokens: u.prompt_tokens,
            generated_tokens: u.generated_tokens,
            reused_prompt_tokens: u.reused_prompt_tokens,
        }
    }
}

impl JobSampling {
    /// A request's sampling for one item, seeded with `seed`.
    pub fn new(sampling: &Sampling, seed: u64) -> Self {
        Self {
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            top_k: sampling.top_k,
            repetition_penalty: sampling.repetition_penalty,
            seed,
            max_new_tokens: sampling.max_new_tokens as usize,
        }
    }
}
