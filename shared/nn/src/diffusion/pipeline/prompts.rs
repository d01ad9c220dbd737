//! Prompt conditioning as diffusers' `encode_prompt`: each prompt and negative prompt is
//! tokenised to the tokenizer's full length (padded, truncated) and encoded by the CLIP
//! text encoder without an attention mask; `clip_skip` takes an earlier layer.

use tch::Tensor;

use crate::{
    clip_text::{ClipTextModel, ClipTokenizer},
    diffusion::DiffusionError,
};

/// A CLIP tokenizer and text encoder.
#[derive(Debug)]
pub struct PromptEncoder {
    pub tokenizer: ClipTokenizer,
    pub text_encoder: ClipTextModel,
    pub clip_skip: usize,
}

impl PromptEncoder {
    /// (N, max_length, hidden) text states of `texts`.
    pub fn encode<S: AsRef<str>>(&self, texts: &[S]) -> Result<Tensor, DiffusionError> {
        if texts.is_empty() {
            return Err(DiffusionError::input("prompts", "must not be empty"));
        }
        let tokens = self.tokenizer.encode(texts)?;
        Ok(self
            .text_encoder
            .prompt_embeds(&tokens.input_ids, self.clip_skip)?)
    }

    /// The states of `prompts` and of their negative prompts (one per prompt; an empty
    /// list means "" for each, as diffusers).
    pub fn encode_pair<S: AsRef<str>>(
        &self,
        prompts: &[S],
        negative: &[S],
    ) -> Result<(Tensor, Tensor), DiffusionError> {
        let cond = self.encode(prompts)?;
        let uncond = if negative.is_empty() {
            self.encode(&vec![""; prompts.len()])?
        } else if negative.len() == prompts.len() {
            self.encode(negative)?
        } else {
            return Err(DiffusionError::input(
                "negative_prompts",
                format!(
                    "must be empty or one per prompt ({}), got {}",
                    prompts.len(),
                    negative.len()
                ),
            ));
        };
        Ok((cond, uncond))
    }
}
