//! Text generation with the Llama-family LM: batched prefill and decode of several prompts at
//! once, sampling, stop conditions and streaming. Independent of gRPC: a service's model
//! worker thread calls [`generate`] with a batch of [`GenerationRequest`]s and a
//! [`TokenSink`] (a closure or an `mpsc::Sender`) that forwards tokens and can cancel.
//!
//! - Batching: prompts are left-padded to the longest; the attention mask and per-token
//!   positions make each row compute what it would alone (up to float rounding). Finished
//!   rows leave the batch.
//! - Sampling ([`sampling`]): greedy, or repetition penalty → temperature → top-k → top-p →
//!   a draw from a per-request ChaCha20 generator seeded by `SamplingParams::seed`, so a
//!   request's output does not depend on the rest of the batch.
//! - Stopping: stop token ids, stop strings matched on the decoded text (never streamed,
//!   cut from the output), `max_new_tokens`; prompt + `max_new_tokens` beyond the model's
//!   context is an error up front. Each output has its [`FinishReason`].
//! - Prefix reuse ([`generate_reusing`], [`prefix`]): a request may start from the KV cache
//!   an earlier call left, so a prompt that extends an earlier one prefills only its tail.

mod error;
mod generate;
pub mod prefix;
mod request;
pub mod sampling;
mod stream;
mod text;

pub use error::GenerationError;
pub use generate::{ReusingOutput, generate, generate_reusing};
pub use prefix::CachedPrefix;
pub use request::{FinishReason, GenerationOutput, GenerationRequest, SamplingParams};
pub use sampling::{Sampler, TokenHistory};
pub use stream::{NoStream, TokenEvent, TokenSink};
pub use text::Detokenizer;
