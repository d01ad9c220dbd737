//! Sampling: the logits processors against transformers, and seeded, batch-independent
//! sampling on a tiny random Llama.
//!
//! Fixtures: `scripts/fixtures/llm.py` (torch 2.13.0, transformers 5.23.0) wrote
//! `tests/fixtures/llama/logits_processors.safetensors` (transformers'
//! RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
//! TopPLogitsWarper and their chain on random scores) and `tests/fixtures/llama/tiny/`
//! (weights; `generate(do_sample=False)` continuations with and without
//! `repetition_penalty=1.3`).

use std::{collections::HashMap, path::PathBuf};
use storyreel_nn::{
    DType, DeviceSpec,
    generation::{
        Detokenizer, GenerationOutput, GenerationRequest, NoStream, SamplingParams, generate,
        sampling::{apply_repetition_penalty, apply_temperature, top_k_filter, top_p_filter},
    },
    llama::LlamaForCausalLM,
};
use tch::Tensor;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama")
}

fn read(path: PathBuf) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

fn ids(t: &Tensor) -> Vec<u32> {
    Vec::<i64>::try_from(t.flatten(0, -1))
        .unwrap()
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

struct Words;
impl Detokenizer for Words {
    fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        Ok(ids.iter().map(|i| format!("t{i} ")).collect())
    }
}

fn model() -> LlamaForCausalLM {
    LlamaForCausalLM::load(fixtures().join("tiny"), DeviceSpec::Cpu, DType::F32).unwrap()
}

fn prompt() -> Vec<u32> {
    ids(&read(fixtures().join("tiny/reference.safetensors"))["single_input_ids"])
}

fn run(model: &LlamaForCausalLM, requests: &[GenerationRequest]) -> Vec<GenerationOutput> {
    generate(model, &Words, requests, &mut NoStream).unwrap()
}

/// Same finite values and the same -inf positions.
fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if w.is_infinite() {
            assert_eq!(g, w, "{what}: index {i}");
        } else {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{what}: index {i}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn logits_processors_match_transformers() {
    let r = read(fixtures().join("logits_processors.safetensors"));
    for row in 0..2 {
        let scores = floats(&r["scores"].get(row));
        let mut history: Vec<u32> = ids(&r["input_ids"].get(row));
        history.sort_unstable();
        history.dedup();
        let want = |name: &str| floats(&r[name].get(row));

        let mut s = scores.clone();
        apply_repetition_penalty(&mut s, &history, 1.3);
        assert_same(&s, &want("repetition_penalty"), "repetition penalty");
        let changed = s.iter().zip(&scores).filter(|(a, b)| a != b).count();
        assert_eq!(changed, history.len(), "the penalty touches exactly the seen ids");

        let mut s = scores.clone();
        apply_temperature(&mut s, 0.7);
        assert_same(&s, &want("temperature"), "temperature");

        let mut s = scores.clone();
        top_k_filter(&mut s, 5);
        assert_same(&s, &want("top_k"), "top-k");

        let mut s = scores.clone();
        top_p_filter(&mut s, 0.8);
        assert_same(&s, &want("top_p"), "top-p");

        let mut s = scores.clone();
        apply_repetition_penalty(&mut s, &history, 1.3);
        apply_temperature(&mut s, 0.7);
        top_k_filter(&mut s, 50);
        top_p_filter(&mut s, 0.9);
        assert_same(&s, &want("chain"), "chain");
    }
}

#[test]
fn greedy_with_repetition_penalty_matches_transformers() {
    let model = model();
    let r = read(fixtures().join("tiny/reference.safetensors"));
    let sampling = SamplingParams {
        repetition_penalty: 1.3,
        ..SamplingParams::greedy()
    };
    let out = run(
        &model,
        &[GenerationRequest::new(prompt(), 20).with_sampling(sampling)],
    );
    assert_eq!(out[0].token_ids, ids(&r["greedy_penalty"]));
    assert_ne!(
        out[0].token_ids,
        ids(&r["greedy_single"]),
        "the penalty must change something"
    );
}

#[test]
fn seeded_sampling_is_reproducible_and_seed_dependent() {
    let model = model();
    let req = |seed| GenerationRequest::new(prompt(), 20).with_sampling(SamplingParams::sampled(1.0, seed));
    let a = run(&model, &[req(7)]);
    let b = run(&model, &[req(7)]);
    let c = run(&model, &[req(8)]);
    assert_eq!(a[0].token_ids, b[0].token_ids);
    assert_ne!(a[0].token_ids, c[0].token_ids);
}

#[test]
fn a_request_samples_the_same_alone_and_in_any_batch() {
    let model = model();
    let sampling = SamplingParams {
        top_k: Some(40),
        top_p: Some(0.95),
        repetition_penalty: 1.1,
        ..SamplingParams::sampled(0.9, 42)
    };
    let target = GenerationRequest::new(prompt(), 20).with_sampling(sampling);
    let alone = run(&model, std::slice::from_ref(&target));
    let other = |seed, len: usize| {
        GenerationRequest::new((10..10 + len as u32).collect(), 5)
            .with_sampling(SamplingParams::sampled(1.0, seed))
    };
    // shorter and longer neighbours (padding on either side), one finishing early
    let batch = run(&model, &[other(1, 3), target.clone(), other(2, 16)]);
    assert_eq!(batch[1].token_ids, alone[0].token_ids);
    assert_eq!(batch[0].token_ids.len(), 5);
    // the same seed in two rows gives the same tokens
    let twice = run(&model, &[target.clone(), target]);
    assert_eq!(twice[0].token_ids, alone[0].token_ids);
    assert_eq!(twice[1].token_ids, alone[0].token_ids);
}

#[test]
fn top_k_1_and_a_tiny_top_p_equal_greedy() {
    let model = model();
    let greedy = run(&model, &[GenerationRequest::new(prompt(), 20)]);
    let top_k = SamplingParams {
        top_k: Some(1),
        ..SamplingParams::sampled(1.5, 3)
    };
    let top_p = SamplingParams {
        top_p: Some(1e-6),
        ..SamplingParams::sampled(1.5, 4)
    };
    let out = run(
        &model,
        &[
            GenerationRequest::new(prompt(), 20).with_sampling(top_k),
            GenerationRequest::new(prompt(), 20).with_sampling(top_p),
        ],
    );
    assert_eq!(out[0].token_ids, greedy[0].token_ids, "top_k = 1");
    assert_eq!(out[1].token_ids, greedy[0].token_ids, "top_p = 1e-6");
}

#[test]
fn invalid_sampling_parameters_name_the_field_and_the_limit() {
    let model = model();
    let err = |sampling: SamplingParams| {
        let req = GenerationRequest::new(prompt(), 5).with_sampling(sampling);
        generate(&model, &Words, &[req], &mut NoStream)
            .unwrap_err()
            .to_string()
    };
    let e = err(SamplingParams::sampled(0.0, 1));
    assert!(e.contains("`temperature` must be > 0"), "{e}");
    let e = err(SamplingParams {
        top_p: Some(0.0),
        ..SamplingParams::sampled(1.0, 1)
    });
    assert!(e.contains("`top_p` must be > 0.0 and <= 1.0"), "{e}");
    let e = err(SamplingParams {
        top_k: Some(0),
        ..SamplingParams::sampled(1.0, 1)
    });
    assert!(e.contains("`top_k` must be >= 1"), "{e}");
    let e = err(SamplingParams {
        repetition_penalty: -1.0,
        ..SamplingParams::greedy()
    });
    assert!(e.contains("`repetition_penalty` must be > 0"), "{e}");
}

/// Each output token's log-probability is that of the model's own distribution at its
/// position (log-softmax of one full forward pass over prompt + output), not of the
/// penalised or tempered scores the sampler drew from.
#[test]
fn token_logprobs_are_the_models_own_log_softmax() {
    let model = model();
    let prompt = prompt();
    let sampling = SamplingParams {
        repetition_penalty: 1.3,
        ..SamplingParams::sampled(0.7, 11)
    };
    let out = run(
        &model,
        &[GenerationRequest::new(prompt.clone(), 12).with_sampling(sampling)],
    );
    let tokens = &out[0].token_ids;
    assert_eq!(out[0].token_logprobs.len(), tokens.len());
    let all: Vec<i64> = prompt.iter().chain(tokens).map(|&i| i64::from(i)).collect();
    let input = Tensor::from_slice(&all).view([1, -1]);
    let logits = model.forward(&input, None, None, None).unwrap();
    let logprobs = logits.log_softmax(-1, tch::Kind::Float);
    for (i, (&token, &got)) in tokens.iter().zip(&out[0].token_logprobs).enumerate() {
        let position = (prompt.len() + i - 1) as i64;
        let want = logprobs.get(0).get(position).double_value(&[i64::from(token)]) as f32;
        assert!(got <= 0.0, "token {i}: {got}");
        assert!((got - want).abs() <= 1e-4, "token {i}: {got} vs {want}");
    }
}
