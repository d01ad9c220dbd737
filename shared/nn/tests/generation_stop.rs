//! Stopping and streaming: stop tokens, stop strings on the decoded text, max_new_tokens,
//! the model's context limit, streaming through a callback or a channel, and cancellation.
//!
//! Fixtures: `scripts/fixtures/llm.py` (torch 2.13.0, transformers 5.23.0) wrote the tiny
//! random Llama in `tests/fixtures/llama/tiny/` and its greedy continuation (transformers
//! `generate(do_sample=False)`), which these tests use as the known output to stop within.

use std::{collections::HashMap, path::PathBuf, sync::mpsc};
use storyreel_nn::{
    DType, DeviceSpec,
    generation::{
        Detokenizer, FinishReason, GenerationError, GenerationRequest, NoStream, TokenEvent, generate,
    },
    llama::LlamaForCausalLM,
};
use tch::Tensor;

fn reference() -> HashMap<String, Tensor> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama/tiny/reference.safetensors");
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn ids(t: &Tensor) -> Vec<u32> {
    Vec::<i64>::try_from(t.flatten(0, -1))
        .unwrap()
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

fn model() -> LlamaForCausalLM {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama/tiny");
    LlamaForCausalLM::load(dir, DeviceSpec::Cpu, DType::F32).unwrap()
}

/// Every id is the word `t{id} `.
struct Words;
impl Detokenizer for Words {
    fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        Ok(ids.iter().map(|i| format!("t{i} ")).collect())
    }
}

fn words(ids: &[u32]) -> String {
    Words.detokenize(ids).unwrap()
}

/// (prompt, its 20-token greedy continuation)
fn known() -> (Vec<u32>, Vec<u32>) {
    let r = reference();
    (ids(&r["single_input_ids"]), ids(&r["greedy_single"]))
}

#[test]
fn max_new_tokens_ends_with_length() {
    let (prompt, greedy) = known();
    let out = generate(
        &model(),
        &Words,
        &[GenerationRequest::new(prompt, 7)],
        &mut NoStream,
    )
    .unwrap();
    assert_eq!(out[0].token_ids, greedy[..7]);
    assert_eq!(out[0].finish_reason, FinishReason::Length);
    assert_eq!(out[0].text, words(&greedy[..7]));
    assert_eq!(out[0].prompt_tokens, 11);
}

#[test]
fn a_stop_token_ends_the_sequence_and_is_kept_out_of_the_text() {
    let (prompt, greedy) = known();
    // the first token that did not appear before it
    let at = (3..greedy.len())
        .find(|&i| !greedy[..i].contains(&greedy[i]))
        .unwrap();
    let stop = greedy[at];
    let req = GenerationRequest::new(prompt, 20).with_stop_tokens([stop]);
    let out = generate(&model(), &Words, &[req], &mut NoStream)
        .unwrap()
        .remove(0);
    assert_eq!(out.token_ids, greedy[..=at]);
    assert_eq!(out.finish_reason, FinishReason::StopToken(stop));
    assert_eq!(out.text, words(&greedy[..at]));
}

#[test]
fn a_stop_string_across_tokens_cuts_the_text_and_is_never_streamed() {
    let (prompt, greedy) = known();
    // ends inside token 7: "{digits of 6} t{7}"
    let stop = format!("{} t{}", greedy[6], greedy[7]);
    let full = words(&greedy);
    let cut = full.find(&stop).unwrap();
    let req = GenerationRequest::new(prompt, 20).with_stop_strings([stop.clone(), "never".into()]);
    let mut streamed = String::new();
    let mut events = 0;
    let out = generate(&model(), &Words, &[req], &mut |e: TokenEvent| {
        streamed += &e.text;
        events += 1;
        true
    })
    .unwrap()
    .remove(0);
    assert_eq!(out.finish_reason, FinishReason::StopString(stop));
    assert_eq!(out.text, full[..cut]);
    assert_eq!(streamed, out.text);
    assert_eq!(out.token_ids, greedy[..out.token_ids.len()]);
    assert!(
        out.token_ids.len() <= 8,
        "stopped at token {}",
        out.token_ids.len()
    );
    assert_eq!(events, out.token_ids.len());
}

#[test]
fn tokens_stream_through_a_channel_in_order_with_the_finish_reason_last() {
    let (prompt, greedy) = known();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let mut tx = tx;
        let requests = [
            GenerationRequest::new(prompt, 20),
            GenerationRequest::new(vec![5, 6, 7], 4),
        ];
        generate(&model(), &Words, &requests, &mut tx).unwrap()
    });
    let events: Vec<TokenEvent> = rx.iter().collect();
    let outputs = worker.join().unwrap();
    for (request, output) in outputs.iter().enumerate() {
        let mine: Vec<&TokenEvent> = events.iter().filter(|e| e.request == request).collect();
        assert_eq!(
            mine.iter().map(|e| e.token_id).collect::<Vec<_>>(),
            output.token_ids
        );
        assert!(mine.iter().enumerate().all(|(i, e)| e.index == i));
        let (last, rest) = mine.split_last().unwrap();
        assert!(rest.iter().all(|e| e.finish_reason.is_none()));
        assert_eq!(last.finish_reason, Some(FinishReason::Length));
        assert_eq!(
            mine.iter().map(|e| e.text.as_str()).collect::<String>(),
            output.text
        );
    }
    assert_eq!(outputs[0].token_ids, greedy);
    assert_eq!(outputs[1].token_ids.len(), 4);
}

#[test]
fn cancellation_stops_that_request_within_one_step() {
    let (prompt, greedy) = known();
    let requests = [
        GenerationRequest::new(prompt.clone(), 20),
        GenerationRequest::new(prompt, 20),
    ];
    let mut seen = [0usize; 2];
    let out = generate(&model(), &Words, &requests, &mut |e: TokenEvent| {
        seen[e.request] += 1;
        !(e.request == 0 && e.index == 4)
    })
    .unwrap();
    assert_eq!(seen, [5, 20], "no event after the cancelling one");
    assert_eq!(out[0].finish_reason, FinishReason::Cancelled);
    assert_eq!(out[0].token_ids, greedy[..5]);
    assert_eq!(out[1].finish_reason, FinishReason::Length);
    assert_eq!(out[1].token_ids, greedy);

    // a dropped receiver cancels everything after the first token
    let (tx, rx) = mpsc::channel::<TokenEvent>();
    drop(rx);
    let mut tx = tx;
    let out = generate(&model(), &Words, &requests, &mut tx).unwrap();
    assert!(
        out.iter()
            .all(|o| o.finish_reason == FinishReason::Cancelled && o.token_ids.len() == 1)
    );
}

#[test]
fn the_model_context_is_enforced_with_a_clear_error() {
    let model = model();
    let max = model.config().max_context();
    assert_eq!(max, 2048);
    let prompt: Vec<u32> = (0..11).map(|i| 3 + i).collect();
    let fits = GenerationRequest::new(prompt.clone(), max - 11);
    let too_long = GenerationRequest::new(prompt, max - 10);
    let err = generate(&model, &Words, &[fits, too_long], &mut NoStream).unwrap_err();
    assert!(
        matches!(err, GenerationError::ContextExceeded { request: 1, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "request 1: the prompt (11 tokens) plus max_new_tokens (2038) exceeds the model's context of 2048 tokens"
    );
}

#[test]
fn invalid_requests_name_the_field() {
    let model = model();
    let err = |req: GenerationRequest| {
        generate(&model, &Words, &[req], &mut NoStream)
            .unwrap_err()
            .to_string()
    };
    assert!(err(GenerationRequest::new(vec![], 5)).contains("`prompt_ids` must hold at least one token"));
    assert!(
        err(GenerationRequest::new(vec![300], 5)).contains("token id 300 is outside the vocabulary of 256")
    );
    assert!(err(GenerationRequest::new(vec![3], 0)).contains("`max_new_tokens` must be >= 1"));
    assert!(err(GenerationRequest::new(vec![3], 5).with_stop_strings([""])).contains("`stop_strings`"));
    assert!(err(GenerationRequest::new(vec![3], 5).with_stop_tokens([256])).contains("`stop_token_ids`"));
    let none = generate(&model, &Words, &[], &mut NoStream).unwrap_err();
    assert!(matches!(none, GenerationError::Empty));
}
