//! What a caller asks for (a [`GenerationRequest`] with its [`SamplingParams`]) and what it
//! gets back (a [`GenerationOutput`] with its [`FinishReason`]), and their validation.

use super::GenerationError;
use serde::{Deserialize, Serialize};

/// Token selection. With `do_sample = false` decoding is greedy: the argmax after the
/// repetition penalty, and `temperature`, `top_k` and `top_p` are ignored (as in
/// transformers). With sampling, the logits go through repetition penalty, temperature, top-k
/// and top-p in that order (transformers' processor order), then one token is drawn with a
/// ChaCha20 generator seeded from `seed`, one generator per sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingParams {
    pub do_sample: bool,
    /// > 0; 1.0 leaves the logits as they are.
    pub temperature: f32,
    /// Keep the `k` most likely tokens (ties with the k-th kept). None: off.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p`, in (0, 1].
    /// None: off.
    pub top_p: Option<f32>,
    /// transformers' `RepetitionPenaltyLogitsProcessor`: the logit of every token already in
    /// the prompt or the output is divided by the penalty when positive and multiplied when
    /// negative. 1.0: off.
    pub repetition_penalty: f32,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams::greedy()
    }
}

impl SamplingParams {
    pub fn greedy() -> Self {
        SamplingParams {
            do_sample: false,
            temperature: 1.0,
            top_k: None,
            top_p: None,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }

    /// Sampling at `temperature` with `seed`, no top-k/top-p/penalty.
    pub fn sampled(temperature: f32, seed: u64) -> Self {
        SamplingParams {
            do_sample: true,
            temperature,
            seed,
            ..SamplingParams::greedy()
        }
    }

    pub(crate) fn validate(&self, request: usize) -> Result<(), GenerationError> {
        let invalid = |field, message: String| Err(GenerationError::invalid(request, field, message));
        if self.do_sample && !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return invalid(
                "temperature",
                format!("must be > 0 when sampling, got {}", self.temperature),
            );
        }
        if self.top_k == Some(0) {
            return invalid("top_k", "must be >= 1 (or unset), got 0".into());
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return invalid("top_p", format!("must be > 0.0 and <= 1.0 (or unset), got {p}"));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return invalid(
                "repetition_penalty",
                format!("must be > 0 (1.0 = off), got {}", self.repetition_penalty),
            );
        }
        Ok(())
    }
}

/// One sequence to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    /// The tokenised prompt (chat template already applied), at least one token.
    pub prompt_ids: Vec<u32>,
    /// At least 1; prompt + max_new_tokens must fit the model's context.
    pub max_new_tokens: usize,
    pub sampling: SamplingParams,
    /// Generation stops after any of these ids (which is kept in `token_ids`, not in `text`).
    pub stop_token_ids: Vec<u32>,
    /// Generation stops once the decoded output contains any of these; the output text ends
    /// before it.
    pub stop_strings: Vec<String>,
}

impl GenerationRequest {
    /// Greedy, no stop conditions.
    pub fn new(prompt_ids: Vec<u32>, max_new_tokens: usize) -> Self {
        GenerationRequest {
            prompt_ids,
            max_new_tokens,
            sampling: SamplingParams::greedy(),
            stop_token_ids: vec![],
            stop_strings: vec![],
        }
    }

    pub fn with_sampling(mut self, sampling: SamplingParams) -> Self {
        self.sampling = sampling;
        self
    }

    pub fn with_stop_tokens(mut self, ids: impl IntoIterator<Item = u32>) -> Self {
        self.stop_token_ids.extend(ids);
        self
    }

    pub fn with_stop_strings<S: Into<String>>(mut self, stops: impl IntoIterator<Item = S>) -> Self {
        self.stop_strings.extend(stops.into_iter().map(Into::into));
        self
    }

    pub(crate) fn validate(
        &self,
        request: usize,
        vocab_size: usize,
        max_context: usize,
    ) -> Result<(), GenerationError> {
        if self.prompt_ids.is_empty() {
            return Err(GenerationError::invalid(
                request,
                "prompt_ids",
                "must hold at least one token",
            ));
        }
        if let Some(id) = self.prompt_ids.iter().find(|&&id| id as usize >= vocab_size) {
            return Err(GenerationError::invalid(
                request,
                "prompt_ids",
                format!("token id {id} is outside the vocabulary of {vocab_size}"),
            ));
        }
        if let Some(id) = self.stop_token_ids.iter().find(|&&id| id as usize >= vocab_size) {
            return Err(GenerationError::invalid(
                request,
                "stop_token_ids",
                format!("token id {id} is outside the vocabulary of {vocab_size}"),
            ));
        }
        if self.stop_strings.iter().any(String::is_empty) {
            return Err(GenerationError::invalid(
                request,
                "stop_strings",
                "must not contain an empty string",
            ));
        }
        if self.max_new_tokens == 0 {
            return Err(GenerationError::invalid(
                request,
                "max_new_tokens",
                "must be >= 1, got 0",
            ));
        }
        if self.prompt_ids.len() + self.max_new_tokens > max_context {
            return Err(GenerationError::ContextExceeded {
                request,
                prompt_tokens: self.prompt_ids.len(),
                max_new_tokens: self.max_new_tokens,
                max_context,
            });
        }
        self.sampling.validate(request)
    }
}

/// Why a sequence stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// `max_new_tokens` were generated.
    Length,
    /// This stop token was generated.
    StopToken(u32),
    /// The output contained this stop string.
    StopString(String),
    /// The token sink returned false.
    Cancelled,
}

/// One finished sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationOutput {
    /// Every generated id, a final stop token included.
    pub token_ids: Vec<u32>,
    /// The natural log of each generated id's probability under the model's own
    /// distribution (before repetition penalty, temperature and filtering), one per id of
    /// `token_ids`: what a caller ranks candidate outputs by.
    pub token_logprobs: Vec<f32>,
    /// The decoded output (special tokens skipped), ending before a matched stop string.
    pub text: String,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
}
