//! The batched generation loop: one prefill of the left-padded prompts, then one decode step
//! per token for every unfinished sequence; finished sequences leave the batch (their cache
//! rows are dropped), so a long request does not pay for short ones.

use super::{
    Detokenizer, FinishReason, GenerationError, GenerationOutput, GenerationRequest, TokenEvent, TokenSink,
    sampling::{Sampler, TokenHistory},
    text::IncrementalText,
};
use crate::llama::LlamaForCausalLM;
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
    if requests.is_empty() {
        return Err(GenerationError::Empty);
    }
    let config = model.config();
    for (i, r) in requests.iter().enumerate() {
        r.validate(i, config.vocab_size, config.max_context())?;
    }
    tch::no_grad(|| run(model, detokenizer, requests, sink))
}

struct Sequence<'r> {
    request: &'r GenerationRequest,
    pad: usize,
    tokens: Vec<u32>,
    sampler: Sampler,
    history: TokenHistory,
    text: IncrementalText,
    finish: Option<FinishReason>,
}

impl<'r> Sequence<'r> {
    fn new(request: &'r GenerationRequest, width: usize, vocab_size: usize) -> Self {
        let mut history = TokenHistory::new(vocab_size);
        if request.sampling.repetition_penalty != 1.0 {
            request.prompt_ids.iter().for_each(|&id| history.push(id));
        }
        Sequence {
            request,
            pad: width - request.prompt_ids.len(),
            tokens: Vec::with_capacity(request.max_new_tokens),
            sampler: Sampler::new(&request.sampling),
            history,
            text: IncrementalText::new(&request.prompt_ids, &request.stop_strings),
            finish: None,
        }
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
}

fn run(
    model: &LlamaForCausalLM,
    detok: &dyn Detokenizer,
    requests: &[GenerationRequest],
    sink: &mut dyn TokenSink,
) -> Result<Vec<GenerationOutput>, GenerationError> {
    let config = model.config();
    let device = model.device();
    let vocab = config.vocab_size;
    let width = requests.iter().map(|r| r.prompt_ids.len()).max().unwrap_or(0);
    let capacity = width + requests.iter().map(|r| r.max_new_tokens).max().unwrap_or(0);
    let pad_id = config
        .pad_token_id
        .filter(|&id| (id as usize) < vocab)
        .unwrap_or(0) as i64;

    let mut seqs: Vec<Sequence> = requests.iter().map(|r| Sequence::new(r, width, vocab)).collect();
    let mut ids = Vec::with_capacity(requests.len() * width);
    let mut mask = Vec::with_capacity(requests.len() * width);
    for s in &seqs {
        ids.extend(std::iter::repeat_n(pad_id, s.pad));
        ids.extend(s.request.prompt_ids.iter().map(|&id| id as i64));
        mask.extend(std::iter::repeat_n(0i64, s.pad));
        mask.extend(std::iter::repeat_n(1i64, s.request.prompt_ids.len()));
    }
    let n = requests.len() as i64;
    let ids = Tensor::from_slice(&ids).view([n, width as i64]).to_device(device);
    let mut mask = Tensor::from_slice(&mask)
        .view([n, width as i64])
        .to_device(device);
    let mut padded = seqs.iter().any(|s| s.pad > 0);

    let mut cache = model.new_cache(requests.len(), capacity);
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
            let token = seq.sampler.next_token(row_scores, &seq.history);
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
            padded = rows.iter().any(|&r| seqs[r].pad > 0);
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
        .map(|s| GenerationOutput {
            prompt_tokens: s.request.prompt_ids.len(),
            finish_reason: s.finish.unwrap_or(FinishReason::Length),
            token_ids: s.tokens,
            text: s.text.into_text(),
        })
        .collect())
}
