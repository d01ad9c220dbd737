//! The batched generation loop: one prefill of the left-padded prompts, then one decode step
//! per token for every unfinished sequence; finished sequences leave the batch (their cache
//! rows are dropped), so a long request does not pay for short ones.
//!
//! With prefix reuse ([`generate_reusing`]) a row starts from the keys and values of an
//! earlier call and prefills only the rest of its prompt. The cache then has two padded
//! regions, each right-aligned: reused positions (`past_width` columns), then the new
//! prompt tails (`width` columns); the attention mask hides the gaps and the positions
//! (cumulative sum of the mask) stay each token's own.

use super::{
    CachedPrefix, Detokenizer, FinishReason, GenerationError, GenerationOutput, GenerationRequest,
    TokenEvent, TokenSink,
    sampling::{Sampler, TokenHistory},
    text::IncrementalText,
};
use crate::llama::{KvCache, LlamaForCausalLM};
use tch::{Device, Kind, Tensor};

/// Generates a continuation for each request, all in one batch, streaming every token to
/// `sink`. Requests are validated first (a bad parameter, or a prompt plus `max_new_tokens`
/// longer than the model's context, is an error before any compute). The outputs are in
/// request order.
pub fn generate(
    model: &LlamaForCausalLM,
    detokenizer: &dyn Detokenizer,
    requests: &[GenerationRequest],
    sink: &mut dyn TokenSink,
) -> Result<Vec<GenerationOutput>, GenerationError> {
    let prefixes = vec![None; requests.len()];
    let outputs = checked_run(model, detokenizer, requests, &prefixes, false, sink)?;
    Ok(outputs.into_iter().map(|o| o.output).collect())
}

/// One sequence of [`generate_reusing`]: its output, how many prompt tokens came from the
/// given prefix, and the KV cache it leaves (prompt and output, the last output token
/// excepted, which was never fed back).
#[derive(Debug)]
pub struct ReusingOutput {
    pub output: GenerationOutput,
    pub reused_prompt_tokens: usize,
    pub cache: CachedPrefix,
}

/// [`generate`] where request `i` may start from `prefixes[i]`, a [`CachedPrefix`] an
/// earlier call of the same model returned: the longest common prefix of its tokens and the
/// prompt (at most all but the prompt's last token) is not computed again. Each output
/// carries its own cache, for the next call.
pub fn generate_reusing(
    model: &LlamaForCausalLM,
    detokenizer: &dyn Detokenizer,
    requests: &[GenerationRequest],
    prefixes: &[Option<&CachedPrefix>],
    sink: &mut dyn TokenSink,
) -> Result<Vec<ReusingOutput>, GenerationError> {
    if prefixes.len() != requests.len() {
        return Err(GenerationError::invalid(
            0,
            "prefixes",
            format!(
                "must hold one entry per request ({}), got {}",
                requests.len(),
                prefixes.len()
            ),
        ));
    }
    checked_run(model, detokenizer, requests, prefixes, true, sink)
}

struct Finished {
    output: GenerationOutput,
    reused: usize,
    cache: Option<CachedPrefix>,
}

fn checked_run(
    model: &LlamaForCausalLM,
    detokenizer: &dyn Detokenizer,
    requests: &[GenerationRequest],
    prefixes: &[Option<&CachedPrefix>],
    keep_caches: bool,
    sink: &mut dyn TokenSink,
) -> Result<Vec<ReusingOutput>, GenerationError> {
    if requests.is_empty() {
        return Err(GenerationError::Empty);
    }
    let config = model.config();
    for (i, r) in requests.iter().enumerate() {
        r.validate(i, config.vocab_size, config.max_context())?;
    }
    let finished = tch::no_grad(|| run(model, detokenizer, requests, prefixes, keep_caches, sink))?;
    Ok(finished
        .into_iter()
        .map(|f| ReusingOutput {
            output: f.output,
            reused_prompt_tokens: f.reused,
            cache: f.cache.unwrap_or_else(|| CachedPrefix {
                token_ids: Vec::new(),
                keys: Vec::new(),
                values: Vec::new(),
            }),
        })
        .collect())
}

struct Sequence<'r> {
    request: &'r GenerationRequest,
    /// Leading prompt tokens taken from a cached prefix.
    reused: usize,
    /// Padding columns before the new prompt tail.
    pad: usize,
    tokens: Vec<u32>,
    /// [`GenerationOutput::token_logprobs`] so far.
    logprobs: Vec<f32>,
    sampler: Sampler,
    history: TokenHistory,
    text: IncrementalText,
    finish: Option<FinishReason>,
    cache: Option<CachedPrefix>,
}

impl<'r> Sequence<'r> {
    fn new(request: &'r GenerationRequest, reused: usize, width: usize, vocab_size: usize) -> Self {
        let mut history = TokenHistory::new(vocab_size);
        if request.sampling.repetition_penalty != 1.0 {
            request.prompt_ids.iter().for_each(|&id| history.push(id));
        }
        Sequence {
            request,
            reused,
            pad: width - (request.prompt_ids.len() - reused),
            tokens: Vec::with_capacity(request.max_new_tokens),
            logprobs: Vec::with_capacity(request.max_new_tokens),
            sampler: Sampler::new(&request.sampling),
            history,
            text: IncrementalText::new(&request.prompt_ids, &request.stop_strings),
            finish: None,
            cache: None,
        }
    }

    /// The new prompt tail, which the prefill computes.
    fn tail(&self) -> &[u32] {
        &self.request.prompt_ids[self.reused..]
    }

    /// Records a chosen token and decides whether the sequence is finished.
    fn push(&mut self, token: u32, detok: &dyn Detokenizer) -> Result<(), GenerationError> {
        self.tokens.push(token);
        if self.request.sampling.repetition_penalty != 1.0 {
            self.history.push(token);
        }
        let stop_string =
            |text: &IncrementalText, i: usize| FinishReason::StopString(text.stop_string(i).into());
        self.finish = if self.request.stop_token_ids.contains(&token) {
            self.text.flush(detok)?;
            Some(FinishReason::StopToken(token))
        } else if let Some(i) = self.text.push(detok, token)? {
            Some(stop_string(&self.text, i))
        } else if self.tokens.len() >= self.request.max_new_tokens {
            Some(match self.text.flush(detok)? {
                Some(i) => stop_string(&self.text, i),
                None => FinishReason::Length,
            })
        } else {
            None
        };
        Ok(())
    }

    /// The position id of the last token.
    fn last_position(&self) -> i64 {
        (self.request.prompt_ids.len() + self.tokens.len()) as i64 - 1
    }

    /// Copies this sequence's keys and values out of `row` of the batch cache: the reused
    /// part, the prompt tail and every output token fed back so far.
    fn keep_cache(&mut self, cache: &KvCache, row: usize, past_width: usize, width: usize) {
        let fed = self.tokens.len() - 1;
        let columns: Vec<i64> = (past_width - self.reused..past_width)
            .chain(past_width + self.pad..past_width + width + fed)
            .map(|c| c as i64)
            .collect();
        let index = Tensor::from_slice(&columns).to_device(cache.device());
        let (keys, values) = cache.gather_row(row, &index);
        let mut token_ids = self.request.prompt_ids.clone();
        token_ids.extend_from_slice(&self.tokens[..fed]);
        self.cache = Some(CachedPrefix {
            token_ids,
            keys,
            values,
        });
    }
}

fn run(
    model: &LlamaForCausalLM,
    detok: &dyn Detokenizer,
    requests: &[GenerationRequest],
    prefixes: &[Option<&CachedPrefix>],
    keep_caches: bool,
    sink: &mut dyn TokenSink,
) -> Result<Vec<Finished>, GenerationError> {
    let config = model.config();
    let device = model.device();
    let vocab = config.vocab_size;
    // At least the last prompt token is always computed: its logits start the output.
    let reused: Vec<usize> = requests
        .iter()
        .zip(prefixes)
        .map(|(r, p)| p.map_or(0, |p| p.common_prefix(&r.prompt_ids).min(r.prompt_ids.len() - 1)))
        .collect();
    let past_width = reused.iter().copied().max().unwrap_or(0);
    let width = requests
        .iter()
        .zip(&reused)
        .map(|(r, &u)| r.prompt_ids.len() - u)
        .max()
        .unwrap_or(0);
    let capacity = past_width + width + requests.iter().map(|r| r.max_new_tokens).max().unwrap_or(0);
    let pad_id = config
        .pad_token_id
        .filter(|&id| (id as usize) < vocab)
        .unwrap_or(0) as i64;

    let mut seqs: Vec<Sequence> = requests
        .iter()
        .zip(&reused)
        .map(|(r, &u)| Sequence::new(r, u, width, vocab))
        .collect();
    let mut cache = model.new_cache(requests.len(), capacity);
    let mut ids = Vec::with_capacity(requests.len() * width);
    let mut mask = Vec::with_capacity(requests.len() * (past_width + width));
    for (row, s) in seqs.iter().enumerate() {
        if let Some(prefix) = prefixes[row].filter(|_| s.reused > 0) {
            let keys: Vec<Tensor> = prefix
                .keys
                .iter()
                .map(|k| k.narrow(2, 0, s.reused as i64))
                .collect();
            let values: Vec<Tensor> = prefix
                .values
                .iter()
                .map(|v| v.narrow(2, 0, s.reused as i64))
                .collect();
            cache
                .write_row(row, past_width, &keys, &values)
                .map_err(|message| GenerationError::invalid(row, "prefixes", message))?;
        }
        mask.extend(std::iter::repeat_n(0i64, past_width - s.reused));
        mask.extend(std::iter::repeat_n(1i64, s.reused));
        mask.extend(std::iter::repeat_n(0i64, s.pad));
        mask.extend(std::iter::repeat_n(1i64, s.tail().len()));
        ids.extend(std::iter::repeat_n(pad_id, s.pad));
        ids.extend(s.tail().iter().map(|&id| id as i64));
    }
    cache
        .set_len(past_width)
        .map_err(|message| GenerationError::invalid(0, "prefixes", message))?;
    let n = requests.len() as i64;
    let ids = Tensor::from_slice(&ids).view([n, width as i64]).to_device(device);
    let mut padded = mask.contains(&0);
    let mut mask = Tensor::from_slice(&mask)
        .view([n, (past_width + width) as i64])
        .to_device(device);

    let mut rows: Vec<usize> = (0..requests.len()).collect();
    let mut logits = model.forward_last(&ids, padded.then_some(&mask), None, Some(&mut cache))?;
    loop {
        let flat = logits
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .view([-1]);
        let mut scores = Vec::<f32>::try_from(&flat)?;
        let mut keep = Vec::with_capacity(rows.len());
        for (row, (&req, row_scores)) in rows.iter().zip(scores.chunks_exact_mut(vocab)).enumerate() {
            let seq = &mut seqs[req];
            // The sampler rewrites the row in place: keep the model's own scores.
            let log_normaliser = log_sum_exp(row_scores);
            let raw = row_scores.to_vec();
            let token = seq.sampler.next_token(row_scores, &seq.history);
            seq.logprobs.push(raw[token as usize] - log_normaliser);
            seq.push(token, detok)?;
            let finished = seq.finish.is_some();
            let event = TokenEvent {
                request: req,
                token_id: token,
                index: seq.tokens.len() - 1,
                text: seq.text.take_streamable(finished),
                finish_reason: seq.finish.clone(),
            };
            if !sink.on_token(event) && !finished {
                seq.text.flush(detok)?;
                seq.finish = Some(FinishReason::Cancelled);
            }
            if seq.finish.is_none() {
                keep.push(row);
            } else if keep_caches {
                seq.keep_cache(&cache, row, past_width, width);
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < rows.len() {
            cache.retain_rows(&keep);
            if padded {
                let index: Vec<i64> = keep.iter().map(|&r| r as i64).collect();
                mask = mask.index_select(0, &Tensor::from_slice(&index).to_device(device));
            }
            rows = keep.iter().map(|&r| rows[r]).collect();
            padded = rows
                .iter()
                .any(|&r| seqs[r].pad > 0 || seqs[r].reused < past_width);
        }

        let b = rows.len() as i64;
        let next: Vec<i64> = rows
            .iter()
            .map(|&r| *seqs[r].tokens.last().unwrap() as i64)
            .collect();
        let positions: Vec<i64> = rows.iter().map(|&r| seqs[r].last_position()).collect();
        let next = Tensor::from_slice(&next).view([b, 1]).to_device(device);
        let positions = Tensor::from_slice(&positions).view([b, 1]).to_device(device);
        if padded {
            mask = Tensor::cat(&[&mask, &Tensor::ones([b, 1], (Kind::Int64, device))], 1);
        }
        logits = model.forward_last(&next, padded.then_some(&mask), Some(&positions), Some(&mut cache))?;
    }

    Ok(seqs
        .into_iter()
        .map(|s| Finished {
            output: GenerationOutput {
                prompt_tokens: s.request.prompt_ids.len(),
                finish_reason: s.finish.unwrap_or(FinishReason::Length),
                token_ids: s.tokens,
                token_logprobs: s.logprobs,
                text: s.text.into_text(),
            },
            reused: s.reused,
            cache: s.cache,
        })
        .collect())
}

/// `ln(sum(exp(x)))`, computed stably (the maximum is taken out first).
fn log_sum_exp(scores: &[f32]) -> f32 {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = scores.iter().map(|&x| f64::from(x - max).exp()).sum();
    max + sum.ln() as f32
}
